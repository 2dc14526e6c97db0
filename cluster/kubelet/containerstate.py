"""What the kubelet knows about one container of a pod, and the pure rules about one container.

``ContainerState`` lives across the container's restarts: its instances,
restart count, current and last termination, waiting reason, back-off and
probe results. The rules: restart policy (``should_restart``), Kubernetes'
restart back-off (``ContainerState.backoff_wait``), probe timings and
thresholds (``ProbeTiming``, ``ContainerState.probe_result``), readiness
(``started``, ``ready``, ``succeeded``), and what each step of starting an
instance and its exit do to the container (the ``on_*`` methods, called by
``podstate.PodState`` with the events of ``podevents``; they return actions).

Nothing here does I/O or reads a clock: times (``Now``) come in as
arguments. The async side (``pods.PodWorker``) owns the processes; this
record only knows whether an instance runs.

Concurrency: plain data owned by one pod worker on one asyncio loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.timestamps import rfc3339
from ..runtime.interface import ExitStatus
from .podevents import Action, CancelProbes, EmitEvent, Now, StartProbes, Wake

MIN_GRACE_SECONDS = 2.0  # the kubelet's minimumGracePeriodInSeconds
# (kind, field of the container spec), in the order the kubelet starts probe workers
PROBE_KINDS = (("startup", "startupProbe"), ("liveness", "livenessProbe"), ("readiness", "readinessProbe"))
PROBE_FIELDS = dict(PROBE_KINDS)


def should_restart(policy: str, terminated: dict[str, Any] | None) -> bool:
    """Whether an exited container starts again under the pod's ``restartPolicy``."""
    if terminated is None:
        return True
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return terminated.get("exitCode") != 0
    return False


@dataclass(frozen=True)
class ProbeTiming:
    """A probe's timings and thresholds, with Kubernetes' defaults and minimums."""

    delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, probe: dict[str, Any]) -> "ProbeTiming":
        return cls(
            delay=float(probe.get("initialDelaySeconds") or 0),
            period=max(1.0, float(probe.get("periodSeconds") or 10)),
            timeout=max(1.0, float(probe.get("timeoutSeconds") or 1)),
            success_threshold=max(1, int(probe.get("successThreshold") or 1)),
            failure_threshold=max(1, int(probe.get("failureThreshold") or 3)),
        )


class ContainerState:
    """One container of a pod (init or regular) across its restarts."""

    def __init__(self, spec: dict[str, Any], init: bool) -> None:
        self.spec = spec
        self.name: str = spec.get("name", "")
        self.init = init
        self.running = False  # an instance runs (started, exit not yet seen)
        self.container_id: str | None = None
        self.instances = 0  # instances created so far
        self.restart_count = 0
        self.started_wall: float | None = None
        self.terminated: dict[str, Any] | None = None  # the last termination (state or lastState)
        self.last_state: dict[str, Any] | None = None  # the termination before the current instance
        self.finished: float | None = None  # monotonic: when the last instance ended (or failed to start)
        self.waiting: tuple[str, str] | None = ("ContainerCreating", "")
        self.image_error = False
        self.backoff: float | None = None
        self.backoff_updated = 0.0
        self.retry_at: float | None = None  # monotonic: when a waiting container may be retried
        self.results: dict[str, bool] = {}  # probe kind -> current result
        self.probe_counts: dict[str, tuple[int, int]] = {}  # probe kind -> (successes, failures) in a row
        self.kill_reason: str | None = None  # a failed liveness/startup probe: kill this instance
        self.kill_requested = False
        self.log_path: str | None = None
        self.prev_log_path: str | None = None
        self.image_id: str | None = None

    # ------------------------------------------------------------ views
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
        return (
            not self.running
            and self.terminated is not None
            and self.terminated.get("exitCode") == 0
            and self.waiting is None
        )

    @property
    def exited(self) -> bool:
        """Ended (and not waiting to be created): what the restart policy decides about."""
        return self.terminated is not None and (self.waiting is None or self.waiting[0] == "CrashLoopBackOff")

    @property
    def image(self) -> str:
        return str(self.spec.get("image") or "")

    @property
    def field_path(self) -> str:
        return f"spec.{'initContainers' if self.init else 'containers'}{{{self.name}}}"

    @property
    def next_restart_count(self) -> int:
        """The restart count the next instance will have (it names the instance's log file)."""
        return self.restart_count + (1 if self.instances > 0 else 0)

    def probes(self) -> list[tuple[str, dict[str, Any]]]:
        """(kind, probe) of every probe the container has."""
        return [(kind, self.spec[f]) for kind, f in PROBE_KINDS if isinstance(self.spec.get(f), dict)]

    def probe_done(self, kind: str) -> bool:
        """Whether a probe worker of the current instance may stop: startup passed, or the instance is
        being killed (the next instance gets new probe workers)."""
        return (kind == "startup" and self.results.get("startup", False)) or bool(self.kill_reason)

    # ------------------------------------------------------------ rules
    def clear_probes(self) -> None:
        self.results = {}
        self.probe_counts = {}

    def backoff_wait(self, now: float, base: float, cap: float) -> float:
        """Seconds the container must still wait before its next start (0 = start now, and step the back-off).

        The first start and the first restart are immediate; then each restart waits ``backoff`` after
        the previous end, doubling from ``base`` up to ``cap``; ``2 * cap`` without a restart resets it."""
        if self.backoff is not None and now - self.backoff_updated > 2 * cap:
            self.backoff = None
        if self.finished is None or self.instances == 0 and not self.image_error:
            return 0.0
        if self.backoff is not None:
            left = self.finished + self.backoff - now
            if left > 0:
                return left
        self.backoff = base if self.backoff is None else min(self.backoff * 2, cap)
        self.backoff_updated = now
        return 0.0

    def probe_result(self, kind: str, ok: bool, message: str) -> tuple[bool, str | None]:
        """Count one probe result; ``(changed, kill)``: whether the probe's result flipped, and the kill
        reason when a liveness or startup probe just failed ``failureThreshold`` times in a row."""
        timing = ProbeTiming.of(self.spec.get(PROBE_FIELDS[kind]) or {})
        succ, fail = self.probe_counts.get(kind, (0, 0))
        succ, fail = (succ + 1, 0) if ok else (0, fail + 1)
        self.probe_counts[kind] = (succ, fail)
        old = self.results.get(kind)
        new = old
        if ok and succ >= timing.success_threshold:
            new = True
        elif not ok and fail >= timing.failure_threshold:
            new = False
        if kind == "startup" and not ok and fail >= timing.failure_threshold:
            new = None  # startup failures kill the container even though the result was already "not yet"
        if new == old:
            return False, None
        self.results[kind] = bool(new)
        kill = None
        if not new and kind in ("liveness", "startup"):
            kill = self.kill_reason = f"{kind} probe failed {fail} times: {message}"[:500]
        return True, kill

    # ------------------------------------------------- starting and ending
    def on_image_pull_failed(self, message: str, now: Now, backoff_base: float) -> list[Action]:
        first = not self.image_error
        self.image_error = True
        self.waiting = ("ErrImagePull", message)
        self.finished = now.mono
        if self.backoff is None:
            self.backoff = backoff_base
            self.backoff_updated = self.finished
        out: list[Action] = []
        if first:
            out.append(
                EmitEvent("Warning", "Failed", f'Failed to pull image "{self.image}": {message}', self.field_path)
            )
        return out + [Wake(self.backoff or 1.0)]

    def on_image_ready(self, image_id: str, origin: str) -> list[Action]:
        out: list[Action] = []
        if self.image_error or self.instances == 0:
            out.append(
                EmitEvent(
                    "Normal",
                    "Pulled",
                    f'Container image "{self.image}" already present on machine ({origin})',
                    self.field_path,
                )
            )
        self.image_error = False
        self.image_id = image_id
        return out

    def on_config_failed(self, message: str, now: Now, backoff_base: float) -> list[Action]:
        self.waiting = ("CreateContainerConfigError", message)
        self.finished = now.mono
        return [EmitEvent("Warning", "Failed", f"Error: {message}", self.field_path), Wake(max(1.0, backoff_base))]

    def on_instance_created(self, container_id: str, log_path: str) -> list[Action]:
        if self.instances > 0:
            self.restart_count += 1
            self.last_state = self.terminated
        self.instances += 1
        self.prev_log_path, self.log_path = self.log_path, log_path
        self.terminated = None
        self.waiting = None
        self.container_id = container_id
        return []

    def on_start_failed(self, message: str, now: Now) -> list[Action]:
        self.terminated = {
            "exitCode": 128,
            "reason": "StartError",
            "message": message,
            "startedAt": rfc3339(0),
            "finishedAt": rfc3339(now.wall),
            "containerID": self.container_id,
        }
        self.finished = now.mono
        return [EmitEvent("Warning", "Failed", f"Error: {message}", self.field_path), Wake()]

    def on_started(self, pid: int, started_at: float, simulated: bool) -> list[Action]:
        """The instance runs; ``simulated``: nothing really does, so its probes pass without running."""
        self.running = True
        self.started_wall = started_at
        self.kill_reason = None
        self.kill_requested = False
        out: list[Action] = [
            EmitEvent("Normal", "Created", f"Created container {self.name}", self.field_path),
            EmitEvent("Normal", "Started", f"Started container {self.name} (pid {pid})", self.field_path),
        ]
        if self.init:
            return out
        if simulated:
            self.results = {"startup": True, "liveness": True, "readiness": True}
            return out
        for kind, _ in self.probes():
            self.results[kind] = kind == "liveness"  # where Kubernetes starts each probe's result
        return out + ([StartProbes(self.name)] if self.probes() else [])

    def on_exit(self, st: ExitStatus, log_tail: str, now: Now) -> list[Action]:
        """The instance ended: its termination (with the probe kill reason, or the log's tail for
        FallbackToLogsOnError, as message)."""
        self.clear_probes()
        term: dict[str, Any] = {
            "exitCode": st.exit_code,
            "reason": st.reason,
            "startedAt": rfc3339(self.started_wall if self.started_wall is not None else now.wall),
            "finishedAt": rfc3339(st.finished_at),
            "containerID": self.container_id,
        }
        if st.signal:
            term["signal"] = st.signal
        msg = st.message
        if self.kill_reason:
            msg = f"{self.kill_reason}; {msg}" if msg else self.kill_reason
        if not msg and st.exit_code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            msg = log_tail
        if msg:
            term["message"] = msg
        self.terminated = term
        self.finished = now.mono
        self.running = False
        self.kill_requested = False
        self.kill_reason = None
        self.waiting = None
        out: list[Action] = [CancelProbes(self.name)]
        if st.oom_killed:
            out.append(
                EmitEvent(
                    "Warning", "OOMKilled", f"Container {self.name} was OOM-killed: {st.message}", self.field_path
                )
            )
        return out

    def recover(self, cs: dict[str, Any], now: Now) -> None:
        """Take over from a previous kubelet's ``ContainerStatus``: the restart count, and the instance it
        ran as ended (lost with that kubelet if it was running)."""
        self.restart_count = int(cs.get("restartCount") or 0)
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated")
        if state.get("terminated"):
            self.terminated = dict(state["terminated"])
        elif state.get("running") or last:
            # The process died with the previous kubelet: report it as lost, restart it.
            self.terminated = (
                last
                if not state.get("running")
                else {
                    "exitCode": 137,
                    "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the kubelet restarted",
                    "startedAt": (state.get("running") or {}).get("startedAt"),
                    "finishedAt": rfc3339(now.wall),
                }
            )
        else:
            return
        self.last_state = last
        self.waiting = None
        self.instances = 1
        self.finished = now.mono
