"""The pure core of a pod worker: a state machine that takes events and returns actions.

``PodState.handle(event, now) -> list[Action]`` (``podevents``). A ``Sync``
is one level-triggered pass over the pod, in this order:

1. deleted (``deletionTimestamp``, or gone from the API): stop every running
   container (preStop hooks, SIGTERM, grace, SIGKILL), end the containers that
   never ran, release the network, write the final status (Succeeded unless a
   container failed) and delete the pod object (grace 0, UID precondition);
2. terminal phase reached: stop what runs, release the network, write status;
3. not yet admitted: ask the kubelet (OutOfcpu / OutOfmemory / OutOfpods make
   the pod Failed);
4. no IP yet: prepare the sandbox (pod directory, network);
5. ``activeDeadlineSeconds`` passed: stop everything, phase Failed
   (DeadlineExceeded);
6. init containers one at a time, each to success (a failure under
   ``restartPolicy: Never`` fails the pod), then every container: start what
   should run, honouring the restart policy and the back-off (first restart at
   once, then ``base`` seconds after the previous end, doubling up to ``max``,
   reset after ``2*max`` without restarts; ``CrashLoopBackOff`` meanwhile), kill
   what failed its liveness or startup probe;
7. write the status if it changed.

A step that needs the outside world (admission, sandbox, stopping) returns
its action and the event that answers it continues the pass. Exits, probe
results and API answers update the state as they come. ``status_update``
builds the status (``podstatus``) to write.

Pure: no I/O, no clock reads (``now`` comes with every event), no randomness.

Concurrency: owned by one pod worker on one asyncio loop; every call runs to
completion without awaiting.
"""

from __future__ import annotations

import json
from typing import Any

from ..api.pods import TERMINAL_PHASES
from ..api.timestamps import rfc3339
from .containerstate import MIN_GRACE_SECONDS, ContainerState, should_restart
from .podevents import (
    Action,
    AdmissionDecided,
    Admit,
    AfterStop,
    CancelProbes,
    CleanupPod,
    ContainerConfigFailed,
    ContainerExited,
    ContainersStopped,
    ContainersStopping,
    ContainerStarted,
    ContainerStartFailed,
    DeletePodObject,
    EmitEvent,
    Event,
    ImagePullFailed,
    ImageReady,
    InstanceCreated,
    KillContainer,
    Now,
    PodDeleted,
    PodObjectDeleted,
    PodUpdated,
    PrepareSandbox,
    PreStopHookFailed,
    ProbeResult,
    PublishStatus,
    ReleaseNetwork,
    SandboxFailed,
    SandboxReady,
    StartContainer,
    StatusPublished,
    StatusRejected,
    StopContainers,
    Sync,
    Wake,
)
from .podstatus import ConditionClock, container_status, derive_phase, other_conditions

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


class PodState:
    """What the kubelet knows and decides about one pod (by UID)."""

    def __init__(
        self, pod: dict[str, Any], *, node_ip: str, backoff_base: float, backoff_max: float, simulated: bool = False
    ) -> None:
        """``simulated``: the runtime runs nothing, so probes are not run and pass."""
        self.pod = pod
        md = pod.get("metadata") or {}
        self.uid: str = md.get("uid", "")
        self.namespace: str = md.get("namespace") or "default"
        self.name: str = md.get("name", "")
        self.key = f"{self.namespace}/{self.name}"
        self.node_ip = node_ip
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.simulated = simulated
        spec = pod.get("spec") or {}
        self.init = [ContainerState(c, True) for c in spec.get("initContainers") or []]
        self.main = [ContainerState(c, False) for c in spec.get("containers") or []]
        self._by_name = {c.name: c for c in self.init + self.main}
        self.deleted = False  # gone from the API (informer delete)
        self.done = False
        self.pod_ip: str | None = None
        self.start_time: str | None = None
        self.start_mono: float | None = None
        self.terminal_phase: str | None = None
        self.phase_reason: tuple[str, str] | None = None
        self.deadline_exceeded = False
        self.terminating = False
        self.admitted = False
        self.recovered = False
        self.last_sent: str | None = None
        self.conditions = ConditionClock()

    # ---------------------------------------------------------------- views
    @property
    def spec(self) -> dict[str, Any]:
        return self.pod.get("spec") or {}

    @property
    def meta(self) -> dict[str, Any]:
        return self.pod.get("metadata") or {}

    @property
    def policy(self) -> str:
        return str(self.spec.get("restartPolicy", "Always"))

    def containers(self) -> list[ContainerState]:
        return self.init + self.main

    def find(self, name: str) -> ContainerState | None:
        return self._by_name.get(name)

    def container(self, name: str) -> ContainerState:
        return self._by_name[name]

    def running(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.containers() if c.running)

    def grace(self) -> float:
        """The termination grace period: ``deletionGracePeriodSeconds``, else the spec's, at least 2 s."""
        g = self.meta.get("deletionGracePeriodSeconds")
        if g is None:
            # Gone from the API without a graceful deletion: force-deleted (grace 0).
            g = (
                0
                if self.deleted and not self.meta.get("deletionTimestamp")
                else self.spec.get("terminationGracePeriodSeconds", 30)
            )
        try:
            return max(MIN_GRACE_SECONDS, float(g))
        except (TypeError, ValueError):
            return 30.0

    def probe_grace(self, c: ContainerState) -> float:
        """Grace for a container killed by its probe: the probe's own, else the pod's."""
        kind = c.kill_reason or ""
        probe = c.spec.get("livenessProbe" if kind.startswith("liveness") else "startupProbe") or {}
        g = probe.get("terminationGracePeriodSeconds")
        if g is None:
            g = self.spec.get("terminationGracePeriodSeconds", 30)
        return max(MIN_GRACE_SECONDS, float(g))

    # --------------------------------------------------------------- events
    def handle(self, ev: Event, now: Now) -> list[Action]:
        match ev:
            case Sync():
                return self._sync(now)
            case PodUpdated(pod=pod):
                self.pod = pod
                return [Wake()]
            case PodDeleted(pod=pod):
                if pod is not None:
                    self.pod = pod
                self.deleted = True
                return [Wake()]
            case AdmissionDecided():
                return self._admission_decided(ev, now)
            case SandboxReady(ip=ip):
                self.pod_ip = ip or self.node_ip
                if self.start_time is None:
                    self.start_time = rfc3339(now.wall)
                self.start_mono = now.mono
                return self._run(now)
            case SandboxFailed(message=msg):
                self.phase_reason = ("NetworkNotReady", msg)
                return [EmitEvent("Warning", "FailedCreatePodSandBox", msg), PublishStatus(), Wake(5.0)]
            case ImagePullFailed(name=name, message=msg):
                return self.container(name).on_image_pull_failed(msg, now, self.backoff_base)
            case ImageReady(name=name, image_id=image_id, origin=origin):
                return self.container(name).on_image_ready(image_id, origin)
            case ContainerConfigFailed(name=name, message=msg):
                return self.container(name).on_config_failed(msg, now, self.backoff_base)
            case InstanceCreated(name=name, container_id=cid, log_path=log_path):
                return self.container(name).on_instance_created(cid, log_path)
            case ContainerStartFailed(name=name, message=msg):
                return self.container(name).on_start_failed(msg, now)
            case ContainerStarted(name=name, pid=pid, started_at=started_at):
                return self.container(name).on_started(pid, started_at, self.simulated)
            case ContainerExited(name=name, exit=st, log_tail=tail):
                return self.container(name).on_exit(st, tail, now)
            case ProbeResult():
                return self._probe_result(ev)
            case PreStopHookFailed(name=name, message=msg):
                return [
                    EmitEvent(
                        "Warning", "FailedPreStopHook", f"PreStopHook failed: {msg}", self.container(name).field_path
                    )
                ]
            case ContainersStopping(names=names):
                out: list[Action] = []
                for name in names:
                    c = self.container(name)
                    c.clear_probes()
                    out += [
                        CancelProbes(name),
                        EmitEvent("Normal", "Killing", f"Stopping container {name}", c.field_path),
                    ]
                return out
            case ContainersStopped(names=names, then=then):
                if any(self.container(n).running for n in names):
                    return [Wake(1.0)]  # one survived SIGKILL (uninterruptible sleep): try again soon
                return self._after_stop(then, now)
            case StatusPublished(text=text, pod=pod):
                self.last_sent = text
                if (pod.get("metadata") or {}).get("uid") == self.uid:
                    self.pod = pod
                return []
            case StatusRejected(gone=gone):
                if gone:
                    self.deleted = True
                    return [Wake()]
                return [Wake(1.0)]
            case PodObjectDeleted(ok=ok):
                if not ok:
                    return [Wake(1.0)]
                self.done = True
                return [CleanupPod()]
        raise TypeError(f"not a pod event: {ev!r}")

    # ----------------------------------------------------------------- sync
    def _sync(self, now: Now) -> list[Action]:
        if not self.recovered:
            self._recover(now)
            self.recovered = True
        if self.deleted or self.meta.get("deletionTimestamp"):
            self.terminating = True
            return self._stop(self.running(), self.grace(), True, "terminate", now)
        if self.terminal_phase is not None:
            return self._stop(self.running(), 0.0, False, "terminal", now)
        if not self.admitted:
            return [Admit()]
        return self._after_admission(now)

    def _recover(self, now: Now) -> None:
        """A restarted kubelet finds pods it ran before: carry restart counts on, note lost containers."""
        st = self.pod.get("status") or {}
        if st.get("phase") in TERMINAL_PHASES:
            self.terminal_phase = st["phase"]
            self.pod_ip = st.get("podIP")
            self.start_time = st.get("startTime")
            self.last_sent = None
        for field, cs_list in (("initContainerStatuses", self.init), ("containerStatuses", self.main)):
            by_name = {cs.get("name"): cs for cs in st.get(field) or []}
            for c in cs_list:
                cs = by_name.get(c.name)
                if cs:
                    c.recover(cs, now)
        if st.get("startTime"):
            self.start_time = st["startTime"]

    def _admission_decided(self, ev: AdmissionDecided, now: Now) -> list[Action]:
        if ev.rejection is not None:
            self.terminal_phase = "Failed"
            self.phase_reason = ev.rejection
            return [EmitEvent("Warning", ev.rejection[0], ev.rejection[1]), PublishStatus()]
        self.admitted = True
        return self._after_admission(now)

    def _after_admission(self, now: Now) -> list[Action]:
        if self.pod_ip is None:
            host = bool(self.spec.get("hostNetwork"))
            old = None if host else (self.pod.get("status") or {}).get("podIP")
            return [PrepareSandbox(network=not host, previous_ip=old or None)]
        return self._run(now)

    def _run(self, now: Now) -> list[Action]:
        """Steps 5-7: the active deadline, the containers, the status."""
        out: list[Action] = []
        ads = self.spec.get("activeDeadlineSeconds")
        if isinstance(ads, int) and self.start_mono is not None:
            left = self.start_mono + ads - now.mono
            if left <= 0:
                self.deadline_exceeded = True
                self.phase_reason = ("DeadlineExceeded", DEADLINE_MESSAGE)
                out.append(EmitEvent("Normal", "DeadlineExceeded", DEADLINE_MESSAGE))
                return out + self._stop(self.running(), self.grace(), False, "deadline", now)
            out.append(Wake(left))
        if not self.deadline_exceeded:
            out += self._sync_containers(now)
        out.append(PublishStatus())
        return out

    def _stop(self, names: tuple[str, ...], grace: float, hooks: bool, then: AfterStop, now: Now) -> list[Action]:
        if names:
            return [StopContainers(names, grace, hooks, then)]
        return self._after_stop(then, now)

    def _after_stop(self, then: AfterStop, now: Now) -> list[Action]:
        release: list[Action] = [] if self.spec.get("hostNetwork") else [ReleaseNetwork()]
        if then == "terminal":
            return release + [PublishStatus()]
        if then == "deadline":
            return [PublishStatus()]
        for c in self.containers():
            if c.waiting is not None and c.terminated is None:
                c.terminated = {
                    "exitCode": 0 if not c.image_error else 1,
                    "reason": "ContainerStatusUnknown" if c.image_error else "Completed",
                    "message": "The container was never started" if c.instances == 0 else "",
                    "startedAt": None,
                    "finishedAt": rfc3339(now.wall),
                }
            c.waiting = None
        if self.deleted:
            self.done = True
            return release + [CleanupPod()]
        if self.terminal_phase is None:
            failed = any((c.terminated or {}).get("exitCode") not in (0, None) for c in self.main)
            self.terminal_phase = "Failed" if failed else "Succeeded"
        return release + [PublishStatus(), DeletePodObject()]

    # ----------------------------------------------------------- containers
    def _sync_containers(self, now: Now) -> list[Action]:
        for c in self.init:
            if c.succeeded:
                continue
            if c.running:
                return []
            if c.terminated is not None and c.terminated.get("exitCode") != 0 and self.policy == "Never":
                self.terminal_phase = "Failed"
                return []
            return self._maybe_start(c, now)
        out: list[Action] = []
        for c in self.main:
            if c.running:
                if c.kill_reason and not c.kill_requested:
                    c.kill_requested = True
                    out.append(KillContainer(c.name, self.probe_grace(c), c.kill_reason))
            elif not (c.exited and not should_restart(self.policy, c.terminated)):
                out += self._maybe_start(c, now)
        return out

    def _maybe_start(self, c: ContainerState, now: Now) -> list[Action]:
        wait = c.backoff_wait(now.mono, self.backoff_base, self.backoff_max)
        if wait <= 0:
            c.retry_at = None
            return [StartContainer(c.name)]
        out: list[Action] = []
        if c.image_error:
            c.waiting = ("ImagePullBackOff", f'Back-off pulling image "{c.spec.get("image")}"')
        elif c.waiting is None or c.waiting[0] != "CreateContainerConfigError":
            c.waiting = (
                "CrashLoopBackOff",
                f"back-off {c.backoff:g}s restarting failed container={c.name} "
                f"pod={self.name}_{self.namespace}({self.uid})",
            )
            if c.retry_at is None or c.retry_at < now.mono:
                out.append(
                    EmitEvent(
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {c.name} in pod "
                        f"{self.name}_{self.namespace}({self.uid})",
                        c.field_path,
                    )
                )
        c.retry_at = now.mono + wait
        out.append(Wake(wait))
        return out

    def _probe_result(self, ev: ProbeResult) -> list[Action]:
        c = self.container(ev.name)
        if not c.running:
            return []
        out: list[Action] = []
        if not ev.ok:
            out.append(
                EmitEvent("Warning", "Unhealthy", f"{ev.kind.capitalize()} probe failed: {ev.message}", c.field_path)
            )
        changed, kill = c.probe_result(ev.kind, ev.ok, ev.message)
        if kill:
            out.append(
                EmitEvent(
                    "Normal", "Killing", f"Container {c.name} failed {ev.kind} probe, will be restarted", c.field_path
                )
            )
        if changed:
            out.append(Wake())
        return out

    # --------------------------------------------------------------- status
    def status(self, wall: float) -> dict[str, Any]:
        """The status to report now; reaching Succeeded or Failed is for good."""
        if self.terminal_phase:
            phase = self.terminal_phase
        else:
            phase = "Failed" if self.deadline_exceeded else derive_phase(self.policy, self.init, self.main)
            if phase in TERMINAL_PHASES:
                self.terminal_phase = phase
        terminal = phase in TERMINAL_PHASES
        conds = self.conditions.kubelet_conditions(self.pod, phase, self.pod_ip is not None, self.init, self.main, wall)
        old = self.pod.get("status") or {}
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": other_conditions(self.pod, self.start_time or rfc3339(wall)) + conds,
            "hostIP": self.node_ip,
            "hostIPs": [{"ip": self.node_ip}],
            "startTime": self.start_time,
            "containerStatuses": [container_status(c, bool(self.terminal_phase), wall) for c in self.main],
        }
        if self.init:
            status["initContainerStatuses"] = [container_status(c, bool(self.terminal_phase), wall) for c in self.init]
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if self.phase_reason and (terminal or self.pod_ip is None):
            status["reason"], status["message"] = self.phase_reason
        if old.get("qosClass"):
            status["qosClass"] = old["qosClass"]
        return status

    def status_update(self, now: Now) -> tuple[dict[str, Any], str] | None:
        """(status, its JSON) to write, or None: the pod is gone or the status is what was last written."""
        if self.deleted:
            return None
        status = self.status(now.wall)
        text = json.dumps(status, sort_keys=True)
        if text == self.last_sent:
            return None
        return status, text
