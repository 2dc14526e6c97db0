"""A pod's status as the kubelet reports it: phase, conditions, container statuses.

- ``derive_phase``: Pending / Running / Succeeded / Failed from the containers
  and the restart policy (a terminal phase is then kept for good by the caller).
- ``container_status``: one entry of ``containerStatuses`` /
  ``initContainerStatuses`` (state, lastState, ready, started, restartCount).
- ``ConditionClock``: the kubelet's conditions (PodReadyToStartContainers,
  Initialized, ContainersReady, Ready with readiness gates) with
  ``lastTransitionTime`` kept while a status does not change.

Pure: the wall clock comes in as an argument, nothing is read or written.

Concurrency: plain functions and data owned by one pod worker.
"""

from __future__ import annotations

from typing import Any

from ..api.conditions import get_condition
from ..api.pods import TERMINAL_PHASES
from ..api.timestamps import rfc3339
from .containerstate import ContainerState

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def derive_phase(policy: str, init: list[ContainerState], main: list[ContainerState]) -> str:
    """The pod phase the containers add up to (``podutil``'s ``getPhase``)."""
    if init and not all(c.succeeded for c in init):
        if policy == "Never" and any(
            c.terminated and c.terminated.get("exitCode") != 0 and not c.running for c in init
        ):
            return "Failed"
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for c in main:
        if c.running:
            running += 1
        elif c.terminated is not None and (c.waiting is None or c.waiting[0] == "CrashLoopBackOff"):
            stopped += 1
            if c.terminated.get("exitCode") == 0:
                succeeded += 1
        elif c.waiting is not None and c.last_state is None and c.terminated is None:
            waiting += 1
        else:
            stopped += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped == len(main) and main:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def container_status(c: ContainerState, pod_terminal: bool, wall: float) -> dict[str, Any]:
    """``c`` as a ``ContainerStatus``; in a terminal pod an ended container shows its termination."""
    cs: dict[str, Any] = {
        "name": c.name,
        "image": c.spec.get("image", ""),
        "imageID": c.image_id or "",
        "ready": c.ready,
        "restartCount": c.restart_count,
    }
    if not c.init:
        cs["started"] = c.started
    if c.container_id and (c.running or c.terminated):
        cs["containerID"] = c.container_id
    last: dict[str, Any] | None
    if c.running:
        cs["state"] = {"running": {"startedAt": rfc3339(c.started_wall if c.started_wall is not None else wall)}}
        last = c.last_state
    elif c.waiting is not None:
        reason, message = c.waiting
        w: dict[str, Any] = {"reason": reason}
        if message:
            w["message"] = message
        cs["state"] = {"waiting": w}
        last = c.terminated if reason == "CrashLoopBackOff" else c.last_state
    elif c.terminated is not None:
        cs["state"] = {"terminated": c.terminated}
        last = c.last_state
    else:
        cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        last = None
    if pod_terminal and not c.running and c.terminated is not None:
        cs["state"] = {"terminated": c.terminated}
        last = c.last_state
    cs["lastState"] = {"terminated": last} if last else {}
    return cs


class ConditionClock:
    """The kubelet's pod conditions, each with the time its status last changed."""

    def __init__(self) -> None:
        self.times: dict[str, tuple[str, str]] = {}  # type -> (status, lastTransitionTime)

    def condition(
        self, old_status: dict[str, Any], ctype: str, ok: bool, wall: float, reason: str = "", message: str = ""
    ) -> dict[str, Any]:
        """A condition; its transition time is kept from the pod's current status when the status is the
        same (a restarted kubelet), else it is ``wall`` the first time it takes this status."""
        status = "True" if ok else "False"
        prev = self.times.get(ctype)
        if prev is None:
            existing = get_condition(old_status, ctype)
            if existing and existing.get("status") == status and existing.get("lastTransitionTime"):
                prev = (status, existing["lastTransitionTime"])
        if prev is None or prev[0] != status:
            prev = (status, rfc3339(wall))
        self.times[ctype] = prev
        c: dict[str, Any] = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": prev[1]}
        if reason and not ok:
            c["reason"] = reason
        if message and not ok:
            c["message"] = message
        return c

    def kubelet_conditions(
        self,
        pod: dict[str, Any],
        phase: str,
        has_ip: bool,
        init: list[ContainerState],
        main: list[ContainerState],
        wall: float,
    ) -> list[dict[str, Any]]:
        """The conditions the kubelet owns, after the ones it leaves alone (PodScheduled first)."""
        st_old = pod.get("status") or {}
        init_ok = all(c.succeeded for c in init)
        unready = [c.name for c in main if not c.ready]
        terminal = phase in TERMINAL_PHASES
        conds = [self.condition(st_old, "PodReadyToStartContainers", has_ip and not terminal, wall)]
        incomplete = [c.name for c in init if not c.succeeded]
        conds.append(
            self.condition(
                st_old,
                "Initialized",
                init_ok,
                wall,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(incomplete)}]",
            )
        )
        ready = not unready and not terminal and init_ok
        reason = "PodCompleted" if terminal else "ContainersNotReady"
        msg = "" if terminal else f"containers with unready status: [{' '.join(unready)}]"
        gates = [g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or []]
        conds.append(self.condition(st_old, "ContainersReady", ready, wall, reason, msg))
        gate_ok = all(
            any(c.get("type") == g and c.get("status") == "True" for c in st_old.get("conditions") or []) for g in gates
        )
        conds.append(
            self.condition(
                st_old,
                "Ready",
                ready and gate_ok,
                wall,
                reason if not (ready and not gate_ok) else "ReadinessGatesNotReady",
                msg,
            )
        )
        return conds


def other_conditions(pod: dict[str, Any], scheduled_since: str) -> list[dict[str, Any]]:
    """The pod's conditions the kubelet doesn't own, with PodScheduled added when missing."""
    others = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
    if not any(c.get("type") == "PodScheduled" for c in others):
        others.insert(
            0, {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": scheduled_since}
        )
    return others
