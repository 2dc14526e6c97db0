"""Pod workers: one asyncio task per pod, level-triggered, with resync.

A ``PodWorker`` owns one pod (by UID). It sleeps until woken - by an
informer event for its pod, a container process exiting, a probe result
flipping, a back-off timer, or the resync timer - and then ``sync()``s:
it compares the pod's spec with what runs and acts, then computes the
pod's status and writes it (a JSON patch of ``pods/status`` that first tests
the pod's UID, only when it changed).

Containers (``ContainerRecord``): started in spec order once init containers
(run one at a time, each to success) are done; an exited container is
restarted according to ``restartPolicy`` (Always / OnFailure / Never) with
Kubernetes' back-off: the first restart is immediate, then ``base`` seconds
after the previous exit, doubling up to ``max`` (10 s -> 300 s upstream;
1 s -> 30 s in the demo profile), reset after ``2*max`` without restarts;
while it waits the container is ``waiting`` with reason
``CrashLoopBackOff``. An image outside the built-in catalog gives
``ErrImagePull`` then ``ImagePullBackOff``; an env that cannot be built
gives ``CreateContainerConfigError``; an executable that cannot be started
gives a ``terminated`` state with reason ``StartError`` (exit code 128).

Probes (``ProbeWorker``, one task per probe per container instance):
startup gates liveness and readiness; liveness or startup failing
``failureThreshold`` times in a row kills the container (SIGTERM, grace,
SIGKILL) and the restart policy applies; readiness flips the container's
``ready`` (and the pod's Ready/ContainersReady conditions) without a
restart. Initial results: liveness success, readiness and startup failure.

Termination: when the pod has a ``deletionTimestamp`` (or vanished from
the API), ``preStop`` hooks run, then every container gets SIGTERM, then
SIGKILL after the grace period (``deletionGracePeriodSeconds``, else
``terminationGracePeriodSeconds``; at least 2 s like the kubelet); the final
status is written and the pod object is deleted with grace 0 and a UID
precondition. ``activeDeadlineSeconds`` is enforced (phase Failed, reason
DeadlineExceeded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
import uuid
from typing import TYPE_CHECKING, Any

from .. import images
from ..api.quantity import int_value, milli_value
from ..api.timestamps import rfc3339
from ..client import PODS, ApiError
from ..runtime import ContainerInstance, ContainerSpec, ExitStatus, ProbeContext, StartError, run_probe
from .envvars import EnvError, build_env, expand

if TYPE_CHECKING:
    from .kubelet import Kubelet

log = logging.getLogger("raykube.kubelet.pods")

MIN_GRACE_SECONDS = 2.0        # the kubelet's minimumGracePeriodInSeconds
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


class ContainerRecord:
    """What the kubelet knows about one container of a pod across its restarts."""

    def __init__(self, spec: dict[str, Any], init: bool) -> None:
        self.spec = spec
        self.name: str = spec.get("name", "")
        self.init = init
        self.proc: ContainerInstance | None = None
        self.container_id: str | None = None
        self.instances = 0                       # processes started so far
        self.restart_count = 0
        self.started_wall: float | None = None
        self.terminated: dict[str, Any] | None = None      # the last termination (state or lastState)
        self.last_state: dict[str, Any] | None = None      # the termination before the current instance
        self.last_exit: ExitStatus | None = None
        self.finished_mono: float | None = None
        self.waiting: tuple[str, str] | None = ("ContainerCreating", "")
        self.image_error = False
        self.backoff: float | None = None
        self.backoff_updated = 0.0
        self.retry_at: float | None = None       # monotonic: when a waiting container may be retried
        self.probe_tasks: list[asyncio.Task[None]] = []
        self.results: dict[str, bool] = {}
        self.kill_task: asyncio.Task[Any] | None = None
        self.kill_reason: str | None = None
        self.log_path: str | None = None
        self.prev_log_path: str | None = None
        self.image_id: str | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.running

    @property
    def started(self) -> bool:
        if not self.running:
            return False
        return "startupProbe" not in self.spec or self.results.get("startup", False)

    @property
    def ready(self) -> bool:
        if self.init:
            return self.succeeded
        if not self.started:
            return False
        return "readinessProbe" not in self.spec or self.results.get("readiness", False)

    @property
    def succeeded(self) -> bool:
        return self.proc is None and self.terminated is not None and self.terminated.get("exitCode") == 0 \
            and self.waiting is None

    def cancel_probes(self) -> None:
        for t in self.probe_tasks:
            t.cancel()
        self.probe_tasks = []
        self.results = {}


class PodWorker:
    def __init__(self, kubelet: "Kubelet", pod: dict[str, Any]) -> None:
        self.kl = kubelet
        self.pod = pod
        md = pod.get("metadata") or {}
        self.uid: str = md.get("uid", "")
        self.namespace: str = md.get("namespace") or "default"
        self.name: str = md.get("name", "")
        self.key = f"{self.namespace}/{self.name}"
        self.deleted = False                 # gone from the API (informer delete)
        self.done = False
        self.pod_dir = os.path.join(kubelet.config.state_dir, "pods", f"{self.namespace}_{self.name}_{self.uid}")
        spec = pod.get("spec") or {}
        self.init_recs = [ContainerRecord(c, True) for c in spec.get("initContainers") or []]
        self.recs = [ContainerRecord(c, False) for c in spec.get("containers") or []]
        self.pod_ip: str | None = None
        self.start_time: str | None = None
        self.start_mono: float | None = None
        self.terminal_phase: str | None = None
        self.phase_reason: tuple[str, str] | None = None
        self.deadline_exceeded = False
        self.terminating = False
        self.last_sent: str | None = None
        self.last_sent_rv = 0
        self.cond_times: dict[str, tuple[str, str]] = {}     # type -> (status, lastTransitionTime)
        self.first_seen = time.monotonic()
        self.first_seen_wall = time.time()
        self.running_reported_at: float | None = None
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._task: asyncio.Task[None] | None = None
        self._recovered = False
        self.admitted = False

    # ------------------------------------------------------------ plumbing
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pod/{self.key}")
        self.wake()

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.wake()

    def mark_deleted(self, pod: dict[str, Any] | None) -> None:
        if pod is not None:
            self.pod = pod
        self.deleted = True
        self.wake()

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
                self.wake_after(self.kl.config.resync_seconds)
        if self._timer is not None:
            self._timer.cancel()
        self.kl.worker_done(self)

    async def stop_now(self) -> None:
        """Kubelet shutdown: kill the containers at once, no API writes."""
        self.done = True
        for rec in self.init_recs + self.recs:
            rec.cancel_probes()
        if self._task is not None:
            self._task.cancel()

    # ---------------------------------------------------------------- sync
    @property
    def spec(self) -> dict[str, Any]:
        return self.pod.get("spec") or {}

    @property
    def meta(self) -> dict[str, Any]:
        return self.pod.get("metadata") or {}

    def all_recs(self) -> list[ContainerRecord]:
        return self.init_recs + self.recs

    async def sync(self) -> None:
        if not self._recovered:
            self._recover_from_status()
            self._recovered = True
        for rec in self.all_recs():
            if rec.proc is not None and not rec.proc.running:
                self._record_exit(rec)
        if self.deleted or self.meta.get("deletionTimestamp"):
            await self._terminate()
            return
        if self.terminal_phase is not None:
            await self._stop_all(0.0)
            await self._release_network()
            await self._write_status()
            return
        if not self.admitted:
            rejection = self.kl.admit(self)
            if rejection is not None:
                self.terminal_phase = "Failed"
                self.phase_reason = rejection
                self.kl.events.event(self.pod, "Warning", rejection[0], rejection[1])
                await self._write_status()
                return
            self.admitted = True
        if self.pod_ip is None and not await self._setup_network():
            await self._write_status()
            self.wake_after(5.0)
            return
        ads = self.spec.get("activeDeadlineSeconds")
        if isinstance(ads, int) and self.start_mono is not None:
            left = self.start_mono + ads - time.monotonic()
            if left <= 0:
                self.deadline_exceeded = True
                self.phase_reason = ("DeadlineExceeded", "Pod was active on the node longer than the specified "
                                                         "deadline")
                self.kl.events.event(self.pod, "Normal", "DeadlineExceeded", self.phase_reason[1])
                await self._stop_all(self._grace())
                for rec in self.all_recs():
                    if rec.proc is not None:
                        self._record_exit(rec)
            else:
                self.wake_after(left)
        if not self.deadline_exceeded:
            if await self._sync_init():
                for rec in self.recs:
                    await self._sync_container(rec)
        await self._write_status()

    def _recover_from_status(self) -> None:
        """A restarted kubelet finds pods it ran before: carry restart counts on, note lost containers."""
        st = self.pod.get("status") or {}
        if st.get("phase") in ("Succeeded", "Failed"):
            self.terminal_phase = st["phase"]
            self.pod_ip = st.get("podIP")
            self.start_time = st.get("startTime")
            self.last_sent = None
        for field, recs in (("initContainerStatuses", self.init_recs), ("containerStatuses", self.recs)):
            by_name = {cs.get("name"): cs for cs in st.get(field) or []}
            for rec in recs:
                cs = by_name.get(rec.name)
                if not cs:
                    continue
                rec.restart_count = int(cs.get("restartCount") or 0)
                state = cs.get("state") or {}
                last = (cs.get("lastState") or {}).get("terminated")
                if state.get("terminated"):
                    rec.terminated = dict(state["terminated"])
                    rec.last_state = last
                    rec.waiting = None
                    rec.instances = 1
                    rec.finished_mono = time.monotonic()
                elif state.get("running") or last:
                    # The process died with the previous kubelet: report it as lost, restart it.
                    rec.terminated = last if not state.get("running") else {
                        "exitCode": 137, "reason": "ContainerStatusUnknown",
                        "message": "The container could not be located when the kubelet restarted",
                        "startedAt": (state.get("running") or {}).get("startedAt"), "finishedAt": rfc3339()}
                    rec.last_state = last
                    rec.waiting = None
                    rec.instances = 1
                    rec.finished_mono = time.monotonic()
        if st.get("startTime"):
            self.start_time = st["startTime"]

    async def _setup_network(self) -> bool:
        kl = self.kl
        if self.spec.get("hostNetwork"):
            self.pod_ip = kl.node_ip
        else:
            old = (self.pod.get("status") or {}).get("podIP")
            try:
                self.pod_ip = await kl.network.setup(self.uid, old or None)
            except Exception as exc:  # noqa: BLE001 - any network failure leaves the pod NetworkNotReady
                self.phase_reason = ("NetworkNotReady", str(exc))
                kl.events.event(self.pod, "Warning", "FailedCreatePodSandBox", str(exc))
                return False
        if self.start_time is None:
            self.start_time = rfc3339()
        self.start_mono = time.monotonic()
        os.makedirs(self.pod_dir, exist_ok=True)
        return True

    async def _release_network(self) -> None:
        if not self.spec.get("hostNetwork"):
            await self.kl.network.teardown(self.uid)

    def _grace(self) -> float:
        g = self.meta.get("deletionGracePeriodSeconds")
        if g is None:
            # Gone from the API without a graceful deletion: force-deleted (grace 0).
            g = 0 if self.deleted and not self.meta.get("deletionTimestamp") else \
                self.spec.get("terminationGracePeriodSeconds", 30)
        try:
            return max(MIN_GRACE_SECONDS, float(g))
        except (TypeError, ValueError):
            return 30.0

    # ------------------------------------------------------- containers
    async def _sync_init(self) -> bool:
        """Run init containers one at a time; True when all have succeeded."""
        policy = self.spec.get("restartPolicy", "Always")
        for rec in self.init_recs:
            if rec.succeeded:
                continue
            if rec.running:
                return False
            if rec.terminated is not None and rec.terminated.get("exitCode") != 0 and policy == "Never":
                self.terminal_phase = "Failed"
                return False
            await self._maybe_start(rec)
            return False
        return True

    async def _sync_container(self, rec: ContainerRecord) -> None:
        if rec.running:
            if rec.kill_task is None and rec.kill_reason:
                grace = self._probe_grace(rec)
                assert rec.proc is not None
                rec.kill_task = asyncio.get_running_loop().create_task(
                    self.kl.runtime.stop(rec.proc, grace, reason=rec.kill_reason))
            return
        exited = rec.terminated is not None and (rec.waiting is None or rec.waiting[0] == "CrashLoopBackOff")
        if exited and not self._should_restart(rec):
            return
        await self._maybe_start(rec)

    def _should_restart(self, rec: ContainerRecord) -> bool:
        policy = self.spec.get("restartPolicy", "Always")
        if rec.terminated is None:
            return True
        if policy == "Always":
            return True
        if policy == "OnFailure":
            return rec.terminated.get("exitCode") != 0
        return False

    def _probe_grace(self, rec: ContainerRecord) -> float:
        kind = rec.kill_reason or ""
        probe = rec.spec.get("livenessProbe" if kind.startswith("liveness") else "startupProbe") or {}
        g = probe.get("terminationGracePeriodSeconds")
        if g is None:
            g = self.spec.get("terminationGracePeriodSeconds", 30)
        return max(MIN_GRACE_SECONDS, float(g))

    def _backoff_wait(self, rec: ContainerRecord) -> float:
        """Seconds the container must still wait before its next start (0 = start now, and step the back-off)."""
        cfg = self.kl.config
        now = time.monotonic()
        if rec.backoff is not None and now - rec.backoff_updated > 2 * cfg.backoff_max:
            rec.backoff = None
        if rec.finished_mono is None or rec.instances == 0 and not rec.image_error:
            return 0.0
        if rec.backoff is not None:
            left = rec.finished_mono + rec.backoff - now
            if left > 0:
                return left
        rec.backoff = cfg.backoff_base if rec.backoff is None else min(rec.backoff * 2, cfg.backoff_max)
        rec.backoff_updated = now
        return 0.0

    async def _maybe_start(self, rec: ContainerRecord) -> None:
        wait = self._backoff_wait(rec)
        if wait > 0:
            if rec.image_error:
                rec.waiting = ("ImagePullBackOff", f'Back-off pulling image "{rec.spec.get("image")}"')
            elif rec.waiting is None or rec.waiting[0] != "CreateContainerConfigError":
                rec.waiting = ("CrashLoopBackOff", f"back-off {rec.backoff:g}s restarting failed "
                                                   f"container={rec.name} pod={self.name}_{self.namespace}"
                                                   f"({self.uid})")
                if rec.retry_at is None or rec.retry_at < time.monotonic():
                    self.kl.events.event(self.pod, "Warning", "BackOff", "Back-off restarting failed container "
                                         f"{rec.name} in pod {self.name}_{self.namespace}({self.uid})",
                                         field_path=self._field_path(rec))
            rec.retry_at = time.monotonic() + wait
            self.wake_after(wait)
            return
        rec.retry_at = None
        await self._start(rec)

    def _field_path(self, rec: ContainerRecord) -> str:
        return f"spec.{'initContainers' if rec.init else 'containers'}{{{rec.name}}}"

    async def _start(self, rec: ContainerRecord) -> None:
        kl = self.kl
        c = rec.spec
        image = c.get("image") or ""
        fp = self._field_path(rec)
        try:
            img = images.resolve(image)
        except images.ImageNotFound as exc:
            first = not rec.image_error
            rec.image_error = True
            rec.waiting = ("ErrImagePull", str(exc))
            rec.finished_mono = time.monotonic()
            if rec.backoff is None:
                rec.backoff = kl.config.backoff_base
                rec.backoff_updated = rec.finished_mono
            if first:
                kl.events.event(self.pod, "Warning", "Failed", f'Failed to pull image "{image}": {exc}',
                                field_path=fp)
            self.wake_after(rec.backoff or 1.0)
            return
        if rec.image_error or rec.instances == 0:
            kl.events.event(self.pod, "Normal", "Pulled", f'Container image "{image}" already present on machine '
                                                          f"(raykube built-in catalog)", field_path=fp)
        rec.image_error = False
        rec.image_id = f"raykube-builtin://{img.name}@{img.digest}"
        workdir = os.path.join(self.pod_dir, "containers", rec.name)
        base = self._base_env(rec, img, workdir)
        try:
            env = await build_env(self._pod_for_env(), c, base, kl.allocatable, kl.lookup_config)
            cmd = [expand(str(x), env) for x in c.get("command") or []]
            args = [expand(str(x), env) for x in c.get("args") or []]
            argv = (cmd + args) if cmd else img.entrypoint() + args
            if not argv:
                raise EnvError(f'no command specified: image "{image}" runs the container\'s command and args '
                               f"on the host, and the container has neither")
        except EnvError as exc:
            rec.waiting = ("CreateContainerConfigError", str(exc))
            rec.finished_mono = time.monotonic()
            kl.events.event(self.pod, "Warning", "Failed", f"Error: {exc}", field_path=fp)
            self.wake_after(max(1.0, kl.config.backoff_base))
            return
        restarting = rec.instances > 0
        log_dir = os.path.join(self.pod_dir, "logs", rec.name)
        os.makedirs(log_dir, exist_ok=True)
        n = rec.restart_count + (1 if restarting else 0)
        log_path = os.path.join(log_dir, f"{n}.log")
        res = c.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        cid = f"{self.uid[:8]}-{rec.name}-{rec.instances}"
        cspec = ContainerSpec(id=cid, pod_key=self.key, pod_uid=self.uid, name=rec.name, argv=argv, env=env,
                              cwd=c.get("workingDir") if c.get("workingDir") and os.path.isdir(c["workingDir"])
                              else workdir,
                              log_path=log_path, memory_limit=int_value(lim.get("memory")),
                              cpu_limit_millis=milli_value(lim.get("cpu")), cpu_request_millis=milli_value(req.get("cpu")),
                              nice=kl.config.container_nice)
        os.makedirs(workdir, exist_ok=True)
        if restarting:
            rec.restart_count += 1
            rec.last_state = rec.terminated
        rec.instances += 1
        rec.prev_log_path, rec.log_path = rec.log_path, log_path
        self._prune_logs(log_dir, keep={log_path, rec.prev_log_path})
        rec.terminated = None
        rec.waiting = None
        rec.container_id = f"raykube://{uuid.uuid4().hex}"
        try:
            proc = await kl.runtime.start(cspec)
        except StartError as exc:
            now = time.time()
            rec.terminated = {"exitCode": 128, "reason": "StartError", "message": str(exc),
                              "startedAt": rfc3339(0), "finishedAt": rfc3339(now), "containerID": rec.container_id}
            rec.finished_mono = time.monotonic()
            kl.events.event(self.pod, "Warning", "Failed", f"Error: {exc}", field_path=fp)
            self.wake()
            return
        rec.proc = proc
        rec.started_wall = proc.started_at
        rec.kill_reason = None
        rec.kill_task = None
        proc.exited.add_done_callback(lambda _f: self.wake())
        kl.events.event(self.pod, "Normal", "Created", f"Created container {rec.name}", field_path=fp)
        kl.events.event(self.pod, "Normal", "Started", f"Started container {rec.name} (pid {proc.pid})",
                        field_path=fp)
        if not rec.init:
            self._start_probes(rec, proc, env, cspec.cwd)

    @staticmethod
    def _log_tail(path: str | None, max_bytes: int = 2048, max_lines: int = 80) -> str:
        """Kubernetes' FallbackToLogsOnError: the last 80 lines / 2 KiB of the container's log."""
        if not path:
            return ""
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-max_lines:])

    def _prune_logs(self, log_dir: str, keep: set[str | None]) -> None:
        try:
            for f in os.listdir(log_dir):
                p = os.path.join(log_dir, f)
                if p not in keep:
                    os.unlink(p)
        except OSError:
            pass

    def _pod_for_env(self) -> dict[str, Any]:
        pod = dict(self.pod)
        st = dict(pod.get("status") or {})
        st["podIP"] = self.pod_ip
        st["podIPs"] = [{"ip": self.pod_ip}] if self.pod_ip else []
        st["hostIP"] = self.kl.node_ip
        st["hostIPs"] = [{"ip": self.kl.node_ip}]
        pod["status"] = st
        return pod

    def _base_env(self, rec: ContainerRecord, img: images.Image, workdir: str) -> dict[str, str]:
        kl = self.kl
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": workdir,
            "HOSTNAME": self.name,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "POD_NAME": self.name,
            "POD_NAMESPACE": self.namespace,
            "POD_UID": self.uid,
            "POD_IP": self.pod_ip or "",
            "NODE_NAME": kl.config.name,
            "HOST_IP": kl.node_ip,
        }
        if img.module:
            env["PYTHONUNBUFFERED"] = "1"
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env["PYTHONPATH"] = images.SOURCE_ROOT
            ports = [p.get("containerPort") for p in rec.spec.get("ports") or [] if p.get("containerPort")]
            if ports:
                env["PORT"] = str(ports[0])
        return env

    def _record_exit(self, rec: ContainerRecord) -> None:
        proc = rec.proc
        assert proc is not None and proc.exited.done()
        st = proc.exited.result()
        rec.cancel_probes()
        rec.last_exit = st
        term: dict[str, Any] = {"exitCode": st.exit_code, "reason": st.reason,
                                "startedAt": rfc3339(proc.started_at), "finishedAt": rfc3339(st.finished_at),
                                "containerID": rec.container_id}
        if st.signal:
            term["signal"] = st.signal
        msg = st.message
        if rec.kill_reason:
            msg = f"{rec.kill_reason}; {msg}" if msg else rec.kill_reason
        if not msg and st.exit_code != 0 and rec.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            msg = self._log_tail(rec.log_path)
        if msg:
            term["message"] = msg
        rec.terminated = term
        rec.finished_mono = time.monotonic()
        rec.proc = None
        rec.kill_task = None
        rec.kill_reason = None
        rec.waiting = None
        if st.oom_killed:
            self.kl.events.event(self.pod, "Warning", "OOMKilled",
                                 f"Container {rec.name} was OOM-killed: {st.message}",
                                 field_path=self._field_path(rec))

    # ------------------------------------------------------------- probes
    def _start_probes(self, rec: ContainerRecord, proc: ContainerInstance, env: dict[str, str], cwd: str) -> None:
        if self.kl.runtime is not None and self.kl.runtime.simulated:  # nothing runs, so every probe passes
            for kind in ("startup", "liveness", "readiness"):
                rec.results[kind] = True
            return
        ports = {p["name"]: p["containerPort"] for p in rec.spec.get("ports") or []
                 if p.get("name") and p.get("containerPort")}
        ctx = ProbeContext(pod_ip=self.pod_ip or "127.0.0.1", env=env, cwd=cwd, ports=ports,
                           session=self.kl.http_session)
        loop = asyncio.get_running_loop()
        for kind, field in (("startup", "startupProbe"), ("liveness", "livenessProbe"),
                            ("readiness", "readinessProbe")):
            probe = rec.spec.get(field)
            if isinstance(probe, dict):
                rec.results[kind] = kind == "liveness"
                rec.probe_tasks.append(loop.create_task(self._probe_loop(rec, proc, kind, probe, ctx),
                                                        name=f"probe/{self.key}/{rec.name}/{kind}"))

    async def _probe_loop(self, rec: ContainerRecord, proc: ContainerInstance, kind: str, probe: dict[str, Any],
                          ctx: ProbeContext) -> None:
        delay = float(probe.get("initialDelaySeconds") or 0)
        period = max(1.0, float(probe.get("periodSeconds") or 10))
        timeout = max(1.0, float(probe.get("timeoutSeconds") or 1))
        succ_needed = max(1, int(probe.get("successThreshold") or 1))
        fail_needed = max(1, int(probe.get("failureThreshold") or 3))
        await asyncio.sleep(max(0.0, proc.started_at + delay - time.time()))
        succ = fail = 0
        label = kind.capitalize()
        while proc.running and rec.proc is proc:
            if kind != "startup" and not rec.started:
                await asyncio.sleep(min(period, 0.5))
                continue
            ok, msg = await run_probe(probe, ctx, timeout)
            if not proc.running or rec.proc is not proc:
                return
            if ok:
                succ, fail = succ + 1, 0
            else:
                succ, fail = 0, fail + 1
                self.kl.events.event(self.pod, "Warning", "Unhealthy", f"{label} probe failed: {msg}",
                                     field_path=self._field_path(rec))
            old = rec.results.get(kind)
            new = old
            if ok and succ >= succ_needed:
                new = True
            elif not ok and fail >= fail_needed:
                new = False
            if kind == "startup" and not ok and fail >= fail_needed:
                new = None  # startup failures kill the container even though the result was already "not yet"
            if new != old:
                rec.results[kind] = bool(new)
                if not new and kind in ("liveness", "startup"):
                    rec.kill_reason = f"{kind} probe failed {fail} times: {msg}"[:500]
                    self.kl.events.event(self.pod, "Normal", "Killing",
                                         f"Container {rec.name} failed {kind} probe, will be restarted",
                                         field_path=self._field_path(rec))
                self.wake()
            if kind == "startup" and rec.results.get("startup"):
                return
            if rec.kill_reason:
                return  # this instance is being killed; the next one gets new probe workers
            await asyncio.sleep(period)

    # -------------------------------------------------------- termination
    async def _stop_all(self, grace: float, run_hooks: bool = False) -> None:
        running = [r for r in self.all_recs() if r.running]
        if not running:
            return
        t0 = time.monotonic()
        if run_hooks:
            hooks = [(r, (r.spec.get("lifecycle") or {}).get("preStop")) for r in running]
            hooks = [(r, h) for r, h in hooks if isinstance(h, dict)]
            if hooks:
                async def hook(r: ContainerRecord, h: dict[str, Any]) -> None:
                    if "sleep" in h:
                        await asyncio.sleep(min(grace, float((h["sleep"] or {}).get("seconds") or 0)))
                        return
                    ports = {p["name"]: p["containerPort"] for p in r.spec.get("ports") or []
                             if p.get("name") and p.get("containerPort")}
                    ok, msg = await run_probe(h, ProbeContext(self.pod_ip or "127.0.0.1",
                                                              r.proc.spec.env if r.proc else {},
                                                              r.proc.spec.cwd if r.proc else "/", ports,
                                                              self.kl.http_session), grace)
                    if not ok:
                        self.kl.events.event(self.pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {msg}",
                                             field_path=self._field_path(r))

                try:
                    await asyncio.wait_for(asyncio.gather(*(hook(r, h) for r, h in hooks)), grace)
                except asyncio.TimeoutError:
                    pass
        left = max(0.0, grace - (time.monotonic() - t0))
        for r in running:
            r.cancel_probes()
            self.kl.events.event(self.pod, "Normal", "Killing", f"Stopping container {r.name}",
                                 field_path=self._field_path(r))
        await asyncio.gather(*(self.kl.runtime.stop(r.proc, left) for r in running if r.proc is not None),
                             return_exceptions=True)

    async def _terminate(self) -> None:
        if not self.terminating:
            self.terminating = True
            log.info("pod %s: terminating (grace %.0f s)", self.key, self._grace())
        await self._stop_all(self._grace(), run_hooks=True)
        for rec in self.all_recs():
            if rec.proc is not None:
                self._record_exit(rec)
            if rec.waiting is not None and rec.terminated is None:
                rec.waiting = None
                rec.terminated = {"exitCode": 0 if not rec.image_error else 1,
                                  "reason": "ContainerStatusUnknown" if rec.image_error else "Completed",
                                  "message": "The container was never started" if rec.instances == 0 else "",
                                  "startedAt": None, "finishedAt": rfc3339()}
            elif rec.waiting is not None:
                rec.waiting = None
        await self._release_network()
        if not self.deleted:
            if self.terminal_phase is None:
                failed = any((r.terminated or {}).get("exitCode") not in (0, None) for r in self.recs)
                self.terminal_phase = "Failed" if failed else "Succeeded"
            await self._write_status(final=True)
            try:
                await self.kl.client.delete(PODS, self.name, self.namespace, grace_period_seconds=0,
                                            preconditions={"uid": self.uid})
            except ApiError as exc:
                if not (exc.not_found or exc.code == 409):
                    log.warning("pod %s: delete failed: %s; retrying", self.key, exc)
                    self.wake_after(1.0)
                    return
        self._cleanup_files()
        self.done = True

    def _cleanup_files(self) -> None:
        shutil.rmtree(self.pod_dir, ignore_errors=True)

    # -------------------------------------------------------------- status
    def _phase(self) -> str:
        if self.terminal_phase:
            return self.terminal_phase
        if self.deadline_exceeded:
            self.terminal_phase = "Failed"
            return "Failed"
        policy = self.spec.get("restartPolicy", "Always")
        if self.init_recs and not all(r.succeeded for r in self.init_recs):
            if policy == "Never" and any(r.terminated and r.terminated.get("exitCode") != 0 and not r.running
                                         for r in self.init_recs):
                self.terminal_phase = "Failed"
                return "Failed"
            return "Pending"
        running = waiting = stopped = succeeded = 0
        for r in self.recs:
            if r.running:
                running += 1
            elif r.terminated is not None and (r.waiting is None or r.waiting[0] == "CrashLoopBackOff"):
                stopped += 1
                if r.terminated.get("exitCode") == 0:
                    succeeded += 1
            elif r.waiting is not None and r.last_state is None and r.terminated is None:
                waiting += 1
            else:
                stopped += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped == len(self.recs) and self.recs:
            if policy == "Always":
                return "Running"
            if stopped == succeeded:
                self.terminal_phase = "Succeeded"
                return "Succeeded"
            if policy == "Never":
                self.terminal_phase = "Failed"
                return "Failed"
            return "Running"
        return "Pending"

    def _container_status(self, rec: ContainerRecord) -> dict[str, Any]:
        cs: dict[str, Any] = {"name": rec.name, "image": rec.spec.get("image", ""), "imageID": rec.image_id or "",
                              "ready": rec.ready, "restartCount": rec.restart_count}
        if not rec.init:
            cs["started"] = rec.started
        if rec.container_id and (rec.running or rec.terminated):
            cs["containerID"] = rec.container_id
        last: dict[str, Any] | None
        if rec.running:
            cs["state"] = {"running": {"startedAt": rfc3339(rec.started_wall)}}
            last = rec.last_state
        elif rec.waiting is not None:
            reason, message = rec.waiting
            w: dict[str, Any] = {"reason": reason}
            if message:
                w["message"] = message
            cs["state"] = {"waiting": w}
            last = rec.terminated if reason == "CrashLoopBackOff" else rec.last_state
        elif rec.terminated is not None:
            cs["state"] = {"terminated": rec.terminated}
            last = rec.last_state
        else:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
            last = None
        if self.terminal_phase and not rec.running and rec.terminated is not None:
            cs["state"] = {"terminated": rec.terminated}
            last = rec.last_state
        cs["lastState"] = {"terminated": last} if last else {}
        return cs

    def _condition(self, ctype: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        status = "True" if ok else "False"
        prev = self.cond_times.get(ctype)
        if prev is None:
            existing = next((c for c in (self.pod.get("status") or {}).get("conditions") or []
                             if c.get("type") == ctype), None)
            if existing and existing.get("status") == status and existing.get("lastTransitionTime"):
                prev = (status, existing["lastTransitionTime"])
        if prev is None or prev[0] != status:
            prev = (status, rfc3339())
        self.cond_times[ctype] = prev
        c: dict[str, Any] = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": prev[1]}
        if reason and not ok:
            c["reason"] = reason
        if message and not ok:
            c["message"] = message
        return c

    def build_status(self) -> dict[str, Any]:
        phase = self._phase()
        st_old = self.pod.get("status") or {}
        init_ok = all(r.succeeded for r in self.init_recs)
        unready = [r.name for r in self.recs if not r.ready]
        terminal = phase in ("Succeeded", "Failed")
        conds = []
        conds.append(self._condition("PodReadyToStartContainers", self.pod_ip is not None and not terminal))
        incomplete = [r.name for r in self.init_recs if not r.succeeded]
        conds.append(self._condition("Initialized", init_ok, "ContainersNotInitialized",
                                     f"containers with incomplete status: [{' '.join(incomplete)}]"))
        ready = not unready and not terminal and init_ok
        reason = "PodCompleted" if terminal else "ContainersNotReady"
        msg = "" if terminal else f"containers with unready status: [{' '.join(unready)}]"
        gates = [g.get("conditionType") for g in self.spec.get("readinessGates") or []]
        conds.append(self._condition("ContainersReady", ready, reason, msg))
        gate_ok = all(any(c.get("type") == g and c.get("status") == "True" for c in st_old.get("conditions") or [])
                      for g in gates)
        conds.append(self._condition("Ready", ready and gate_ok, reason if not (ready and not gate_ok)
                                     else "ReadinessGatesNotReady", msg))
        others = [c for c in st_old.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
        if not any(c.get("type") == "PodScheduled" for c in others):
            others.insert(0, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                              "lastTransitionTime": self.start_time or rfc3339()})
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": others + conds,
            "hostIP": self.kl.node_ip, "hostIPs": [{"ip": self.kl.node_ip}],
            "startTime": self.start_time,
            "containerStatuses": [self._container_status(r) for r in self.recs],
        }
        if self.init_recs:
            status["initContainerStatuses"] = [self._container_status(r) for r in self.init_recs]
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if self.phase_reason and (terminal or self.pod_ip is None):
            status["reason"], status["message"] = self.phase_reason
        if st_old.get("qosClass"):
            status["qosClass"] = st_old["qosClass"]
        return status

    async def _write_status(self, final: bool = False) -> None:
        if self.deleted or self.kl.powered_off:
            return
        status = self.build_status()
        text = json.dumps(status, sort_keys=True)
        if text == self.last_sent:
            return
        # A JSON patch: "test" the UID first, so a status meant for this pod never lands on a new pod that
        # took its name; then set each status field (fields the kubelet doesn't own are left alone).
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": self.uid}]
        ops += [{"op": "add", "path": f"/status/{k}", "value": v} for k, v in status.items()]
        try:
            out = await self.kl.client.patch(PODS, self.name, ops, self.namespace, patch_type="json",
                                             subresource="status")
        except ApiError as exc:
            if exc.not_found or (exc.code in (409, 422) and "/metadata/uid" in exc.message):
                self.mark_deleted(None)
                return
            log.warning("pod %s: status update failed: %s; retrying", self.key, exc)
            self.wake_after(1.0)
            return
        self.last_sent = text
        if (out.get("metadata") or {}).get("uid") == self.uid:
            self.pod = out
        if status["phase"] == "Running" and self.running_reported_at is None:
            self.running_reported_at = time.monotonic()
            log.debug("pod %s: Running reported %.0f ms after the kubelet first saw it (wall %.3f)", self.key,
                      (self.running_reported_at - self.first_seen) * 1000, time.time())

    # ---------------------------------------------------------------- views
    def describe(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace, "name": self.name, "uid": self.uid, "podIP": self.pod_ip,
            "phase": self.terminal_phase or (self.pod.get("status") or {}).get("phase"),
            "containers": [{"name": r.name, "init": r.init, "pid": r.proc.pid if r.running and r.proc else None,
                            "pgid": r.proc.pgid if r.running and r.proc else None,
                            "restartCount": r.restart_count, "log": r.log_path, "previousLog": r.prev_log_path,
                            "cgroup": r.proc.cgroup_paths if r.running and r.proc else None,
                            "ready": r.ready, "started": r.started,
                            "waiting": list(r.waiting) if r.waiting else None}
                           for r in self.all_recs()],
        }

    def log_paths(self, container: str) -> tuple[str | None, str | None, bool]:
        """(current log, previous log, running) of a container."""
        for r in self.all_recs():
            if r.name == container:
                return r.log_path, r.prev_log_path, r.running
        return None, None, False
