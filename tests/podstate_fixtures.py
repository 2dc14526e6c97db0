"""A fake pod worker for the unit tests of the kubelet's pure pod core (``cluster.kubelet.podstate``).

``FakeWorker`` carries out a ``PodState``'s actions the way ``PodWorker``
does, in memory: it admits, hands out an IP, "starts" containers (they run
until the test makes them exit), stops them, records events, wake-ups and the
statuses it would write. Time is a number the test advances.
"""

from __future__ import annotations

from typing import Any

from cluster.kubelet.podevents import (
    Action,
    AdmissionDecided,
    Admit,
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
    Now,
    PodObjectDeleted,
    PrepareSandbox,
    PublishStatus,
    SandboxFailed,
    SandboxReady,
    StartContainer,
    StatusPublished,
    StopContainers,
    Sync,
    Wake,
)
from cluster.kubelet.podstate import PodState
from cluster.runtime.interface import ExitStatus

NODE_IP = "127.1.0.1"
POD_IP = "127.16.0.2"
WALL0 = 1_700_000_000.0


def mkpod(
    containers: list[dict[str, Any]],
    init: list[dict[str, Any]] | None = None,
    *,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    s: dict[str, Any] = {"nodeName": "n1", "containers": containers, **spec}
    if init:
        s["initContainers"] = init
    pod: dict[str, Any] = {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1"}, "spec": s}
    if status is not None:
        pod["status"] = status
    return pod


def ctr(name: str = "c", **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": "raykube/web", **kw}


class FakeWorker:
    """Carries out a PodState's actions in memory, answering them as the pod worker would."""

    def __init__(
        self,
        pod: dict[str, Any],
        *,
        base: float = 1.0,
        cap: float = 8.0,
        simulated: bool = False,
        rejection: tuple[str, str] | None = None,
    ) -> None:
        self.st = PodState(pod, node_ip=NODE_IP, backoff_base=base, backoff_max=cap, simulated=simulated)
        self.t = 100.0
        self.rejection = rejection
        self.network_error: str | None = None
        self.missing_images: set[str] = set()
        self.start_errors: dict[str, str] = {}
        self.stop_code = 0
        self.pid = 1000
        self.actions: list[Action] = []
        self.events: list[EmitEvent] = []
        self.wakes: list[float] = []
        self.published: list[dict[str, Any]] = []

    # -- driving
    def now(self) -> Now:
        return Now(self.t, WALL0 + self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def feed(self, ev: Event) -> None:
        self.run(self.st.handle(ev, self.now()))

    def sync(self) -> None:
        self.feed(Sync())

    def exit(
        self,
        name: str,
        code: int = 0,
        *,
        signal: int | None = None,
        message: str = "",
        oom: bool = False,
        log_tail: str = "",
    ) -> None:
        self.feed(ContainerExited(name, ExitStatus(code, signal, oom, message, WALL0 + self.t), log_tail))

    def run(self, actions: list[Action]) -> None:
        for a in actions:
            self.actions.append(a)
            match a:
                case Wake(after=after):
                    self.wakes.append(after)
                case EmitEvent():
                    self.events.append(a)
                case Admit():
                    self.feed(AdmissionDecided(self.rejection))
                case PrepareSandbox(network=network):
                    if network and self.network_error:
                        self.feed(SandboxFailed(self.network_error))
                    else:
                        self.feed(SandboxReady(POD_IP if network else None))
                case StartContainer(name=name):
                    self._start(name)
                case StopContainers(names=names, then=then):
                    self.feed(ContainersStopping(names))
                    for name in names:
                        self.exit(name, self.stop_code)
                    self.feed(ContainersStopped(names, then))
                case PublishStatus():
                    update = self.st.status_update(self.now())
                    if update is not None:
                        self.published.append(update[0])
                        self.feed(StatusPublished(update[1], {**self.st.pod, "status": update[0]}))
                case DeletePodObject():
                    self.feed(PodObjectDeleted(True))

    def _start(self, name: str) -> None:
        if name in self.missing_images:
            self.feed(ImagePullFailed(name, f'image "{name}" is not in the catalog'))
            return
        self.feed(ImageReady(name, "raykube-builtin://raykube/web@sha256:x", "raykube built-in catalog"))
        c = self.st.container(name)
        self.feed(InstanceCreated(name, f"raykube://{name}-{c.instances}", f"/logs/{name}/{c.next_restart_count}.log"))
        if name in self.start_errors:
            self.feed(ContainerStartFailed(name, self.start_errors[name]))
            return
        self.pid += 1
        self.feed(ContainerStarted(name, self.pid, WALL0 + self.t))

    # -- looking
    @property
    def status(self) -> dict[str, Any]:
        return self.published[-1]

    def cstatus(self, name: str = "c") -> dict[str, Any]:
        st = self.status
        return next(cs for cs in st.get("initContainerStatuses", []) + st["containerStatuses"] if cs["name"] == name)

    def condition(self, ctype: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == ctype)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def take(self) -> list[Action]:
        out, self.actions = self.actions, []
        return out


def started(w: FakeWorker) -> list[str]:
    return [a.name for a in w.take() if isinstance(a, StartContainer)]
