"""What goes into a pod's state machine (events) and what comes out (actions).

``podstate.PodState.handle(event, now)`` returns a list of actions; the pod
worker (``pods.PodWorker``) carries them out in order against the runtime,
the pod network and the API, and feeds what came of them back in as events
(``StartContainer`` -> ``ImageReady`` / ``ImagePullFailed``,
``ContainerConfigFailed``, ``InstanceCreated``, ``ContainerStarted`` /
``ContainerStartFailed``; ``StopContainers`` -> ``ContainersStopping``,
``ContainerExited``..., ``ContainersStopped``; and so on). Events that finish
a step of the pod's sync answer with the rest of it.

All of them are frozen dataclasses of plain data.

Concurrency: immutable values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..runtime.interface import ExitStatus

# What a StopContainers continues with once the containers are down.
AfterStop = Literal["terminate", "terminal", "deadline"]


@dataclass(frozen=True)
class Now:
    """The clocks, read by the worker: ``mono`` for durations, ``wall`` for timestamps (epoch s)."""

    mono: float
    wall: float


# ------------------------------------------------------------------ events
@dataclass(frozen=True)
class Sync:
    """Woken (an informer event, a container exit, a timer, the resync period): look at everything."""


@dataclass(frozen=True)
class PodUpdated:
    pod: dict[str, Any]


@dataclass(frozen=True)
class PodDeleted:
    """Gone from the API (the informer saw the delete); ``pod`` is its last state, if known."""

    pod: dict[str, Any] | None = None


@dataclass(frozen=True)
class AdmissionDecided:
    rejection: tuple[str, str] | None  # (reason, message), or None: admitted


@dataclass(frozen=True)
class SandboxReady:
    ip: str | None  # None: the pod uses the node's network


@dataclass(frozen=True)
class SandboxFailed:
    message: str


@dataclass(frozen=True)
class ImagePullFailed:
    name: str
    message: str


@dataclass(frozen=True)
class ImageReady:
    name: str
    image_id: str
    origin: str  # where the image already is, for the Pulled event


@dataclass(frozen=True)
class ContainerConfigFailed:
    """The container's env, command or args could not be built (CreateContainerConfigError)."""

    name: str
    message: str


@dataclass(frozen=True)
class InstanceCreated:
    """A new instance is about to start (its log file and ID are chosen)."""

    name: str
    container_id: str
    log_path: str


@dataclass(frozen=True)
class ContainerStartFailed:
    name: str
    message: str


@dataclass(frozen=True)
class ContainerStarted:
    name: str
    pid: int
    started_at: float  # wall clock


@dataclass(frozen=True)
class ContainerExited:
    name: str
    exit: ExitStatus
    log_tail: str = ""  # the log's end, for terminationMessagePolicy FallbackToLogsOnError


@dataclass(frozen=True)
class ProbeResult:
    name: str
    kind: str  # startup | liveness | readiness
    ok: bool
    message: str


@dataclass(frozen=True)
class PreStopHookFailed:
    name: str
    message: str


@dataclass(frozen=True)
class ContainersStopping:
    """The preStop hooks are done (or the grace ran out); SIGTERM follows."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class ContainersStopped:
    names: tuple[str, ...]
    then: AfterStop


@dataclass(frozen=True)
class StatusPublished:
    text: str  # the status as sent (to skip sending it again)
    pod: dict[str, Any]  # the pod the API server returned


@dataclass(frozen=True)
class StatusRejected:
    gone: bool  # the pod (this UID) no longer exists


@dataclass(frozen=True)
class PodObjectDeleted:
    ok: bool  # False: try again later


Event = (
    Sync
    | PodUpdated
    | PodDeleted
    | AdmissionDecided
    | SandboxReady
    | SandboxFailed
    | ImagePullFailed
    | ImageReady
    | ContainerConfigFailed
    | InstanceCreated
    | ContainerStartFailed
    | ContainerStarted
    | ContainerExited
    | ProbeResult
    | PreStopHookFailed
    | ContainersStopping
    | ContainersStopped
    | StatusPublished
    | StatusRejected
    | PodObjectDeleted
)


# ----------------------------------------------------------------- actions
@dataclass(frozen=True)
class Wake:
    """Sync the pod again ``after`` seconds from now (0: as soon as possible)."""

    after: float = 0.0


@dataclass(frozen=True)
class EmitEvent:
    type: str  # Normal | Warning
    reason: str
    message: str
    field_path: str | None = None


@dataclass(frozen=True)
class Admit:
    """Ask the kubelet whether the node can take the pod (answer: AdmissionDecided)."""


@dataclass(frozen=True)
class PrepareSandbox:
    """The pod's directory, and its network unless it uses the node's (answer: SandboxReady / SandboxFailed)."""

    network: bool
    previous_ip: str | None


@dataclass(frozen=True)
class ReleaseNetwork:
    pass


@dataclass(frozen=True)
class StartContainer:
    name: str


@dataclass(frozen=True)
class KillContainer:
    """Stop the running instance in the background (a failed probe); its exit comes as usual."""

    name: str
    grace: float
    reason: str


@dataclass(frozen=True)
class StopContainers:
    """Run preStop hooks (if ``run_hooks``) within ``grace``, then SIGTERM, the rest of the grace, SIGKILL;
    answer ContainersStopping, the exits, then ContainersStopped(``then``)."""

    names: tuple[str, ...]
    grace: float
    run_hooks: bool
    then: AfterStop


@dataclass(frozen=True)
class StartProbes:
    name: str


@dataclass(frozen=True)
class CancelProbes:
    name: str


@dataclass(frozen=True)
class PublishStatus:
    """Write the pod's status as it is when this runs, if it changed (answer: StatusPublished / StatusRejected)."""


@dataclass(frozen=True)
class DeletePodObject:
    """Delete the pod object (grace 0, UID precondition) (answer: PodObjectDeleted)."""


@dataclass(frozen=True)
class CleanupPod:
    """Remove the pod's directory; the worker is done."""


Action = (
    Wake
    | EmitEvent
    | Admit
    | PrepareSandbox
    | ReleaseNetwork
    | StartContainer
    | KillContainer
    | StopContainers
    | StartProbes
    | CancelProbes
    | PublishStatus
    | DeletePodObject
    | CleanupPod
)
