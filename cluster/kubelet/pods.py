"""Pod workers: one asyncio task per pod that carries out what the pod's state machine decides.

A ``PodWorker`` owns one pod (by UID). It sleeps until woken - by an
informer event for its pod, a container process exiting, a probe result
flipping, a back-off timer, or the resync timer - and then syncs: it feeds
the exits it has seen and a ``Sync`` to its ``podstate.PodState`` and
carries out the actions that come back, in order (``podevents``): start a
container (image, env, files, ``runtime.start``), kill or stop containers
(preStop hooks, then ``runtime.stop``: SIGTERM, grace, SIGKILL), run probes,
prepare and release the pod's network (``cluster.network``), emit events,
write the pod's status (a JSON patch of ``pods/status`` that first tests the
pod's UID, only when it changed) and delete the pod object when it has
terminated. What comes of each action goes back to the state machine as an
event. Every decision - restart policy, back-off, phases, conditions,
probes' thresholds, grace periods - is in ``podstate`` and its helpers.

Errors: ``ErrImagePull``/``ImagePullBackOff`` for an image outside the
built-in catalog, ``CreateContainerConfigError`` for an env that cannot be
built, a ``terminated`` state with reason ``StartError`` (exit code 128) for
an executable that cannot be started.

Probes (one task per probe per container instance): startup gates liveness
and readiness; each result goes to the state machine, which flips the
container's ``ready``, or has it killed (liveness, startup) and restarted
under the restart policy.

Concurrency: everything runs on the kubelet's asyncio loop; the state
machine's calls never await, so a probe task and the sync task interleave
only between actions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from typing import TYPE_CHECKING, Any

from .. import images
from ..client import PODS, ApiError
from ..runtime.interface import ContainerInstance, Runtime, StartError
from ..runtime.probes import ProbeContext, run_probe
from . import podevents as pe
from .containerstate import ProbeTiming
from .envvars import EnvError
from .launch import (
    BUILTIN_ORIGIN,
    PodContext,
    build_launch,
    container_spec,
    log_tail,
    named_ports,
    prune_logs,
    resolve_image,
)
from .podstate import PodState

if TYPE_CHECKING:
    from .kubelet import Kubelet

log = logging.getLogger("raykube.kubelet.pods")


def clock() -> pe.Now:
    return pe.Now(time.monotonic(), time.time())


class PodWorker:
    def __init__(self, kubelet: "Kubelet", pod: dict[str, Any]) -> None:
        self.kl = kubelet
        cfg = kubelet.config
        assert kubelet.runtime is not None, "pod workers start after the runtime"
        self.runtime: Runtime = kubelet.runtime
        self.state = PodState(
            pod,
            node_ip=kubelet.node_ip,
            backoff_base=cfg.backoff_base or 0.0,
            backoff_max=cfg.backoff_max or 0.0,
            simulated=self.runtime.simulated,
        )
        st = self.state
        self.uid, self.namespace, self.name, self.key = st.uid, st.namespace, st.name, st.key
        self.pod_dir = os.path.join(cfg.state_dir, "pods", f"{self.namespace}_{self.name}_{self.uid}")
        self.procs: dict[str, ContainerInstance] = {}  # container name -> its current instance
        self.probe_tasks: dict[str, list[asyncio.Task[None]]] = {}
        self.kill_tasks: dict[str, asyncio.Task[Any]] = {}
        self.probe_ctx: dict[str, ProbeContext] = {}
        self.first_seen = time.monotonic()
        self.first_seen_wall = time.time()
        self.running_reported_at: float | None = None
        self._stopped = False
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def pod(self) -> dict[str, Any]:
        return self.state.pod

    @property
    def done(self) -> bool:
        return self._stopped or self.state.done

    @property
    def terminating(self) -> bool:
        return self.state.terminating

    # ------------------------------------------------------------ plumbing
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pod/{self.key}")
        self.wake()

    def update(self, pod: dict[str, Any]) -> None:
        self._apply_now(self.state.handle(pe.PodUpdated(pod), clock()))

    def mark_deleted(self, pod: dict[str, Any] | None) -> None:
        self._apply_now(self.state.handle(pe.PodDeleted(pod), clock()))

    def wake(self) -> None:
        self._wake.set()

    def wake_after(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        if self._timer is not None:
            if self._timer_when <= when:
                return
            self._timer.cancel()
        self._timer_when = when
        self._timer = loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.wake()

    async def _run(self) -> None:
        while not self.done:
            await self._wake.wait()
            self._wake.clear()
            if self.kl.powered_off:
                return
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a pod worker must survive anything; retry soon
                log.exception("sync of pod %s failed", self.key)
                self.wake_after(1.0)
            if not self.done:
                self.wake_after(self.kl.config.resync_seconds or 60.0)
        if self._timer is not None:
            self._timer.cancel()
        self.kl.worker_done(self)

    async def stop_now(self) -> None:
        """Kubelet shutdown: kill the containers at once, no API writes."""
        self._stopped = True
        for name in list(self.probe_tasks):
            self._cancel_probes(name)
        if self._task is not None:
            self._task.cancel()

    # ---------------------------------------------------------------- sync
    async def sync(self) -> None:
        await self._collect_exits()
        was_terminating = self.state.terminating
        actions = self.state.handle(pe.Sync(), clock())
        if self.state.terminating and not was_terminating:
            log.info("pod %s: terminating (grace %.0f s)", self.key, self.state.grace())
        await self._apply(actions)

    async def _feed(self, ev: pe.Event) -> None:
        await self._apply(self.state.handle(ev, clock()))

    def _apply_now(self, actions: list[pe.Action]) -> None:
        """Carry out actions that need no awaiting (from callbacks outside the sync task)."""
        for a in actions:
            assert isinstance(a, (pe.Wake, pe.EmitEvent, pe.CancelProbes)), a
            self._execute_now(a)

    def _execute_now(self, a: pe.Wake | pe.EmitEvent | pe.CancelProbes) -> None:
        match a:
            case pe.Wake(after=after):
                if after > 0:
                    self.wake_after(after)
                else:
                    self.wake()
            case pe.EmitEvent():
                self.kl.events.event(self.state.pod, a.type, a.reason, a.message, field_path=a.field_path)
            case pe.CancelProbes(name=name):
                self._cancel_probes(name)

    async def _apply(self, actions: list[pe.Action]) -> None:
        for a in actions:
            match a:
                case pe.Wake() | pe.EmitEvent() | pe.CancelProbes():
                    self._execute_now(a)
                case pe.Admit():
                    await self._feed(pe.AdmissionDecided(self.kl.admit(self)))
                case pe.PrepareSandbox():
                    await self._prepare_sandbox(a)
                case pe.ReleaseNetwork():
                    await self.kl.network.teardown(self.uid)
                case pe.StartContainer(name=name):
                    await self._start_container(name)
                case pe.KillContainer(name=name, grace=grace, reason=reason):
                    proc = self.procs.get(name)
                    if proc is not None:
                        self.kill_tasks[name] = asyncio.get_running_loop().create_task(
                            self.runtime.stop(proc, grace, reason=reason)
                        )
                case pe.StopContainers():
                    await self._stop_containers(a)
                case pe.StartProbes(name=name):
                    self._start_probes(name)
                case pe.PublishStatus():
                    await self._publish_status()
                case pe.DeletePodObject():
                    await self._delete_pod_object()
                case pe.CleanupPod():
                    shutil.rmtree(self.pod_dir, ignore_errors=True)

    async def _collect_exits(self) -> None:
        """Tell the state machine about every instance that has exited since it last heard."""
        for name, proc in list(self.procs.items()):
            if proc.running:
                continue
            del self.procs[name]
            self.kill_tasks.pop(name, None)
            st = proc.exited.result()
            # Read only for the containers that may need it: the state machine picks the message.
            fallback = self.state.container(name).spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
            tail = log_tail(proc.spec.log_path) if fallback and st.exit_code != 0 else ""
            await self._feed(pe.ContainerExited(name, st, tail))

    # ------------------------------------------------------------- actions
    async def _prepare_sandbox(self, a: pe.PrepareSandbox) -> None:
        ip: str | None = None
        if a.network:
            try:
                ip = await self.kl.network.setup(self.uid, a.previous_ip)
            except Exception as exc:  # noqa: BLE001 - any network failure leaves the pod NetworkNotReady
                await self._feed(pe.SandboxFailed(str(exc)))
                return
        os.makedirs(self.pod_dir, exist_ok=True)
        await self._feed(pe.SandboxReady(ip))

    async def _start_container(self, name: str) -> None:
        kl = self.kl
        c = self.state.container(name)
        try:
            img, image_id = resolve_image(c.spec.get("image") or "")
        except images.ImageNotFound as exc:
            await self._feed(pe.ImagePullFailed(name, str(exc)))
            return
        await self._feed(pe.ImageReady(name, image_id, BUILTIN_ORIGIN))
        workdir = os.path.join(self.pod_dir, "containers", name)
        ctx = PodContext(self.state.pod, self.state.pod_ip, kl.config.name, kl.node_ip)
        try:
            env, argv = await build_launch(ctx, c.spec, img, workdir, kl.allocatable, kl.lookup_config)
        except EnvError as exc:
            await self._feed(pe.ContainerConfigFailed(name, str(exc)))
            return
        log_dir = os.path.join(self.pod_dir, "logs", name)
        os.makedirs(log_dir, exist_ok=True)
        log_path = os.path.join(log_dir, f"{c.next_restart_count}.log")
        cspec = container_spec(
            instance_id=f"{self.uid[:8]}-{name}-{c.instances}",
            pod_key=self.key,
            pod_uid=self.uid,
            spec=c.spec,
            argv=argv,
            env=env,
            workdir=workdir,
            log_path=log_path,
            nice=kl.config.container_nice,
        )
        os.makedirs(workdir, exist_ok=True)
        await self._feed(pe.InstanceCreated(name, f"raykube://{uuid.uuid4().hex}", log_path))
        prune_logs(log_dir, keep={log_path, c.prev_log_path})
        try:
            proc = await self.runtime.start(cspec)
        except StartError as exc:
            await self._feed(pe.ContainerStartFailed(name, str(exc)))
            return
        self.procs[name] = proc
        self.probe_ctx[name] = ProbeContext(
            pod_ip=self.state.pod_ip or "127.0.0.1",
            env=env,
            cwd=cspec.cwd,
            ports=named_ports(c.spec),
            session=kl.http_session,
        )
        proc.exited.add_done_callback(lambda _f: self.wake())
        await self._feed(pe.ContainerStarted(name, proc.pid, proc.started_at))

    async def _stop_containers(self, a: pe.StopContainers) -> None:
        running = [(n, p) for n in a.names if (p := self.procs.get(n)) is not None and p.running]
        if running:
            t0 = time.monotonic()
            if a.run_hooks:
                await self._run_prestop_hooks(running, a.grace)
            left = max(0.0, a.grace - (time.monotonic() - t0))
            await self._feed(pe.ContainersStopping(tuple(n for n, _ in running)))
            await asyncio.gather(*(self.runtime.stop(p, left) for _, p in running), return_exceptions=True)
        await self._collect_exits()
        await self._feed(pe.ContainersStopped(a.names, a.then))

    async def _run_prestop_hooks(self, running: list[tuple[str, ContainerInstance]], grace: float) -> None:
        hooks = [(n, p, (self.state.container(n).spec.get("lifecycle") or {}).get("preStop")) for n, p in running]
        todo = [(n, p, h) for n, p, h in hooks if isinstance(h, dict)]
        if not todo:
            return

        async def hook(name: str, proc: ContainerInstance, h: dict[str, Any]) -> None:
            if "sleep" in h:
                await asyncio.sleep(min(grace, float((h["sleep"] or {}).get("seconds") or 0)))
                return
            ctx = ProbeContext(
                self.state.pod_ip or "127.0.0.1",
                proc.spec.env,
                proc.spec.cwd,
                named_ports(self.state.container(name).spec),
                self.kl.http_session,
            )
            ok, msg = await run_probe(h, ctx, grace)
            if not ok:
                await self._feed(pe.PreStopHookFailed(name, msg))

        try:
            await asyncio.wait_for(asyncio.gather(*(hook(n, p, h) for n, p, h in todo)), grace)
        except asyncio.TimeoutError:
            pass

    async def _publish_status(self) -> None:
        if self.kl.powered_off:
            return
        update = self.state.status_update(clock())
        if update is None:
            return
        status, text = update
        # A JSON patch: "test" the UID first, so a status meant for this pod never lands on a new pod that
        # took its name; then set each status field (fields the kubelet doesn't own are left alone).
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": self.uid}]
        ops += [{"op": "add", "path": f"/status/{k}", "value": v} for k, v in status.items()]
        try:
            out = await self.kl.client.patch(
                PODS, self.name, ops, self.namespace, patch_type="json", subresource="status"
            )
        except ApiError as exc:
            gone = exc.not_found or (exc.code in (409, 422) and "/metadata/uid" in exc.message)
            if not gone:
                log.warning("pod %s: status update failed: %s; retrying", self.key, exc)
            await self._feed(pe.StatusRejected(gone))
            return
        await self._feed(pe.StatusPublished(text, out))
        if status["phase"] == "Running" and self.running_reported_at is None:
            self.running_reported_at = time.monotonic()
            log.debug(
                "pod %s: Running reported %.0f ms after the kubelet first saw it (wall %.3f)",
                self.key,
                (self.running_reported_at - self.first_seen) * 1000,
                time.time(),
            )

    async def _delete_pod_object(self) -> None:
        try:
            await self.kl.client.delete(
                PODS, self.name, self.namespace, grace_period_seconds=0, preconditions={"uid": self.uid}
            )
        except ApiError as exc:
            if not (exc.not_found or exc.code == 409):
                log.warning("pod %s: delete failed: %s; retrying", self.key, exc)
                await self._feed(pe.PodObjectDeleted(False))
                return
        await self._feed(pe.PodObjectDeleted(True))

    # -------------------------------------------------------------- probes
    def _start_probes(self, name: str) -> None:
        proc, ctx = self.procs.get(name), self.probe_ctx.get(name)
        if proc is None or ctx is None:
            return
        loop = asyncio.get_running_loop()
        self.probe_tasks[name] = [
            loop.create_task(self._probe_loop(name, proc, kind, probe, ctx), name=f"probe/{self.key}/{name}/{kind}")
            for kind, probe in self.state.container(name).probes()
        ]

    def _cancel_probes(self, name: str) -> None:
        for t in self.probe_tasks.pop(name, []):
            t.cancel()

    async def _probe_loop(
        self, name: str, proc: ContainerInstance, kind: str, probe: dict[str, Any], ctx: ProbeContext
    ) -> None:
        timing = ProbeTiming.of(probe)
        await asyncio.sleep(max(0.0, proc.started_at + timing.delay - time.time()))
        c = self.state.container(name)
        while proc.running and self.procs.get(name) is proc:
            if kind != "startup" and not c.started:
                await asyncio.sleep(min(timing.period, 0.5))
                continue
            ok, msg = await run_probe(probe, ctx, timing.timeout)
            if not proc.running or self.procs.get(name) is not proc:
                return
            await self._feed(pe.ProbeResult(name, kind, ok, msg))
            if c.probe_done(kind):
                return
            await asyncio.sleep(timing.period)

    # ---------------------------------------------------------------- views
    def describe(self) -> dict[str, Any]:
        st = self.state
        out = []
        for c in st.containers():
            proc = self.procs.get(c.name)
            live = proc if proc is not None and proc.running else None
            out.append(
                {
                    "name": c.name,
                    "init": c.init,
                    "pid": live.pid if live else None,
                    "pgid": live.pgid if live else None,
                    "restartCount": c.restart_count,
                    "log": c.log_path,
                    "previousLog": c.prev_log_path,
                    "cgroup": live.cgroup_paths if live else None,
                    "ready": c.ready,
                    "started": c.started,
                    "waiting": list(c.waiting) if c.waiting else None,
                }
            )
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "podIP": st.pod_ip,
            "phase": st.terminal_phase or (st.pod.get("status") or {}).get("phase"),
            "containers": out,
        }

    def log_paths(self, container: str) -> tuple[str | None, str | None, bool]:
        """(current log, previous log, running) of a container."""
        c = self.state.find(container)
        if c is None:
            return None, None, False
        proc = self.procs.get(container)
        return c.log_path, c.prev_log_path, proc is not None and proc.running
