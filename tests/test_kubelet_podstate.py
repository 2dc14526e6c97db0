"""Unit tests of the kubelet's pure pod core (``cluster.kubelet.podstate`` and friends): no processes, no network.

The pod's state machine is driven through ``podstate_fixtures.FakeWorker``,
which answers its actions in memory; time is a number the test advances.
"""

from __future__ import annotations

from typing import Any

import pytest
from podstate_fixtures import NODE_IP, POD_IP, WALL0, FakeWorker, ctr, mkpod, started

from cluster.api.resources import pod_requests
from cluster.kubelet.admission import admission_rejection
from cluster.kubelet.containerstate import ProbeTiming, should_restart
from cluster.kubelet.podevents import (
    Admit,
    CancelProbes,
    CleanupPod,
    DeletePodObject,
    KillContainer,
    Now,
    PodDeleted,
    PodObjectDeleted,
    PodUpdated,
    PrepareSandbox,
    ProbeResult,
    PublishStatus,
    ReleaseNetwork,
    StartProbes,
    StatusRejected,
    StopContainers,
    Sync,
    Wake,
)
from cluster.kubelet.podstate import PodState


# ------------------------------------------------------------ start, phases
def test_admit_sandbox_start_running_and_conditions() -> None:
    w = FakeWorker(mkpod([ctr("a"), ctr("b")]))
    w.sync()
    assert isinstance(w.actions[0], Admit)
    assert started(w) == ["a", "b"]
    st = w.status
    assert st["phase"] == "Running" and st["podIP"] == POD_IP and st["hostIP"] == NODE_IP
    assert st["startTime"] and st["podIPs"] == [{"ip": POD_IP}]
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "PodScheduled": "True",
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    cs = w.cstatus("a")
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["containerID"] == "raykube://a-0" and cs["imageID"].startswith("raykube-builtin://")
    assert w.reasons() == ["Pulled", "Created", "Started"] * 2
    # Nothing changed: a resync writes nothing.
    n = len(w.published)
    w.advance(10)
    w.sync()
    assert len(w.published) == n and started(w) == []


def test_host_network_pod_uses_the_node_ip() -> None:
    w = FakeWorker(mkpod([ctr()], hostNetwork=True))
    w.sync()
    assert PrepareSandbox(network=False, previous_ip=None) in w.actions
    assert w.status["podIP"] == NODE_IP


def test_admission_rejection_fails_the_pod() -> None:
    w = FakeWorker(mkpod([ctr()]), rejection=("OutOfcpu", "Node didn't have enough resource: cpu"))
    w.sync()
    assert w.status["phase"] == "Failed" and w.status["reason"] == "OutOfcpu"
    assert w.reasons() == ["OutOfcpu"] and started(w) == []
    assert w.condition("Ready")["reason"] == "PodCompleted"


def test_network_failure_waits_for_the_sandbox() -> None:
    w = FakeWorker(mkpod([ctr()]))
    w.network_error = "no free pod IP left"
    w.sync()
    assert w.status["phase"] == "Pending" and w.status["reason"] == "NetworkNotReady"
    assert "FailedCreatePodSandBox" in w.reasons() and w.wakes[-1] == 5.0
    w.network_error = None
    w.sync()
    assert w.status["phase"] == "Running" and "reason" not in w.status


# ---------------------------------------------------------- restart policy
@pytest.mark.parametrize(
    "policy,code,restarts,phase",
    [
        ("Always", 0, True, "Running"),
        ("Always", 1, True, "Running"),
        ("OnFailure", 0, False, "Succeeded"),
        ("OnFailure", 3, True, "Running"),
        ("Never", 0, False, "Succeeded"),
        ("Never", 2, False, "Failed"),
    ],
)
def test_restart_policies(policy: str, code: int, restarts: bool, phase: str) -> None:
    w = FakeWorker(mkpod([ctr()], restartPolicy=policy))
    w.sync()
    w.take()
    w.advance(5)
    w.exit("c", code)
    w.sync()
    assert (started(w) == ["c"]) is restarts
    assert w.status["phase"] == phase
    cs = w.cstatus()
    if restarts:  # the first restart is immediate
        assert cs["restartCount"] == 1 and "running" in cs["state"]
        assert cs["lastState"]["terminated"]["exitCode"] == code
    else:
        assert cs["restartCount"] == 0 and cs["state"]["terminated"]["exitCode"] == code
        assert cs["state"]["terminated"]["reason"] == ("Completed" if code == 0 else "Error")
        assert w.condition("Ready")["status"] == "False" and w.condition("Ready")["reason"] == "PodCompleted"
        assert w.condition("PodReadyToStartContainers")["status"] == "False"
    assert should_restart(policy, {"exitCode": code}) is restarts


def test_crash_loop_back_off_doubles_caps_and_resets() -> None:
    w = FakeWorker(mkpod([ctr()]), base=1.0, cap=8.0)
    w.sync()
    w.take()
    w.exit("c", 1)
    w.sync()
    assert started(w) == ["c"]  # the first restart is immediate
    waits = []
    for _ in range(6):
        w.exit("c", 1)
        w.wakes.clear()
        w.sync()
        assert started(w) == []
        cs = w.cstatus()
        assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert cs["lastState"]["terminated"]["exitCode"] == 1 and w.status["phase"] == "Running"
        wait = min(w.wakes)
        waits.append(wait)
        assert cs["state"]["waiting"]["message"].startswith(f"back-off {wait:g}s restarting failed container=c ")
        w.advance(wait / 2)
        w.sync()
        assert started(w) == []  # still backing off
        w.advance(wait / 2)
        w.sync()
        assert started(w) == ["c"]
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert w.reasons().count("BackOff") == 6
    # Running longer than 2 * cap without a restart: the back-off starts over.
    w.advance(17)
    w.exit("c", 1)
    w.sync()
    assert started(w) == ["c"]
    w.exit("c", 1)
    w.wakes.clear()
    w.sync()
    assert min(w.wakes) == 1.0


def test_start_error_and_image_pull_back_off() -> None:
    w = FakeWorker(mkpod([ctr("bad"), ctr("noimg")]))
    w.start_errors["bad"] = 'exec: "x": executable file not found in $PATH'
    w.missing_images.add("noimg")
    w.sync()
    cs = w.cstatus("bad")
    assert cs["state"]["terminated"]["reason"] == "StartError" and cs["state"]["terminated"]["exitCode"] == 128
    assert cs["state"]["terminated"]["message"].startswith("exec:")
    pull = w.cstatus("noimg")["state"]["waiting"]
    assert pull["reason"] == "ErrImagePull" and "catalog" in pull["message"]
    assert w.status["phase"] == "Pending"
    w.sync()  # retried too soon: ImagePullBackOff
    assert w.cstatus("noimg")["state"]["waiting"]["reason"] == "ImagePullBackOff"
    failed = [e.message for e in w.events if e.reason == "Failed"]
    # the pull failure is reported once; the start error at each attempt (the first restart is immediate)
    assert sum("catalog" in m for m in failed) == 1 and sum(m.startswith("Error: exec:") for m in failed) == 2


# ---------------------------------------------------------- init containers
def test_init_containers_run_one_at_a_time_then_the_containers() -> None:
    w = FakeWorker(mkpod([ctr("main")], init=[ctr("one"), ctr("two")]))
    w.sync()
    assert started(w) == ["one"]
    assert w.status["phase"] == "Pending" and w.condition("Initialized")["status"] == "False"
    assert w.condition("Initialized")["message"] == "containers with incomplete status: [one two]"
    w.sync()
    assert started(w) == []
    w.exit("one", 0)
    w.sync()
    assert started(w) == ["two"]
    w.exit("two", 0)
    w.sync()
    assert started(w) == ["main"]
    assert w.status["phase"] == "Running" and w.condition("Initialized")["status"] == "True"
    ics = w.status["initContainerStatuses"]
    assert [c["state"]["terminated"]["reason"] for c in ics] == ["Completed", "Completed"]
    assert all(c["ready"] for c in ics) and "started" not in ics[0]


@pytest.mark.parametrize("policy,phase,restarts", [("Never", "Failed", False), ("Always", "Pending", True)])
def test_failed_init_container(policy: str, phase: str, restarts: bool) -> None:
    w = FakeWorker(mkpod([ctr("main")], init=[ctr("one")], restartPolicy=policy))
    w.sync()
    w.take()
    w.exit("one", 1)
    w.sync()
    assert started(w) == (["one"] if restarts else [])
    assert w.status["phase"] == phase


# ------------------------------------------------------ probes, readiness
def test_readiness_probe_flips_ready_without_restart() -> None:
    probe = {"httpGet": {"path": "/readyz", "port": 8080}, "failureThreshold": 2, "successThreshold": 1}
    w = FakeWorker(mkpod([ctr(readinessProbe=probe)]))
    w.sync()
    assert StartProbes("c") in w.actions
    assert w.condition("Ready")["status"] == "False"
    assert w.condition("Ready")["message"] == "containers with unready status: [c]"
    w.feed(ProbeResult("c", "readiness", True, ""))
    assert w.wakes[-1] == 0.0
    w.sync()
    assert w.condition("Ready")["status"] == "True" and w.cstatus()["ready"]
    w.feed(ProbeResult("c", "readiness", False, "HTTP probe failed with statuscode: 503"))
    w.sync()
    assert w.condition("Ready")["status"] == "True"  # one failure of two
    w.feed(ProbeResult("c", "readiness", False, "HTTP probe failed with statuscode: 503"))
    w.sync()
    assert w.condition("ContainersReady")["status"] == "False" and w.cstatus()["restartCount"] == 0
    assert w.reasons().count("Unhealthy") == 2 and not any(isinstance(a, KillContainer) for a in w.actions)


def test_liveness_failure_kills_with_probe_grace_and_restarts() -> None:
    probe = {"exec": {"command": ["true"]}, "failureThreshold": 1, "terminationGracePeriodSeconds": 3}
    w = FakeWorker(mkpod([ctr(livenessProbe=probe)], terminationGracePeriodSeconds=30))
    w.sync()
    assert w.st.container("c").results == {"liveness": True}  # liveness starts as passing
    w.feed(ProbeResult("c", "liveness", False, "command exited with 1"))
    assert "Killing" in w.reasons() and w.st.container("c").probe_done("liveness")
    w.sync()
    kills = [a for a in w.take() if isinstance(a, KillContainer)]
    assert kills == [KillContainer("c", 3.0, "liveness probe failed 1 times: command exited with 1")]
    w.sync()
    assert not any(isinstance(a, KillContainer) for a in w.take())  # one kill per instance
    w.exit("c", 137, signal=9, message="terminated by signal SIGKILL")
    assert CancelProbes("c") in w.actions
    w.sync()
    assert started(w) == ["c"]
    last = w.cstatus()["lastState"]["terminated"]
    assert last["message"] == "liveness probe failed 1 times: command exited with 1; terminated by signal SIGKILL"
    assert last["signal"] == 9 and w.cstatus()["restartCount"] == 1


def test_startup_probe_gates_started_and_kills_after_threshold() -> None:
    probe = {"tcpSocket": {"port": 8080}, "failureThreshold": 2}
    w = FakeWorker(mkpod([ctr(startupProbe=probe, livenessProbe={"tcpSocket": {"port": 8080}})]))
    w.sync()
    assert w.cstatus()["started"] is False and w.cstatus()["ready"] is False
    w.feed(ProbeResult("c", "startup", True, ""))
    assert w.st.container("c").probe_done("startup")
    w.sync()
    assert w.cstatus()["started"] is True and w.cstatus()["ready"] is True
    # a new instance that never starts: killed after failureThreshold failures
    w.exit("c", 1)
    w.sync()
    w.feed(ProbeResult("c", "startup", False, "refused"))
    assert not w.st.container("c").kill_reason
    w.feed(ProbeResult("c", "startup", False, "refused"))
    assert w.st.container("c").kill_reason == "startup probe failed 2 times: refused"


def test_timings_defaults() -> None:
    assert ProbeTiming.of({}) == ProbeTiming(0.0, 10.0, 1.0, 1, 3)
    assert ProbeTiming.of({"periodSeconds": 0.5, "initialDelaySeconds": 2, "failureThreshold": 1}).period == 1.0


def test_readiness_gates() -> None:
    w = FakeWorker(mkpod([ctr()], readinessGates=[{"conditionType": "example.com/lb"}]))
    w.sync()
    assert w.condition("ContainersReady")["status"] == "True"
    ready = w.condition("Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"
    gate = {"type": "example.com/lb", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}
    pod = dict(w.st.pod, status=dict(w.st.pod["status"], conditions=w.st.pod["status"]["conditions"] + [gate]))
    w.feed(PodUpdated(pod))
    w.sync()
    assert w.condition("Ready")["status"] == "True" and w.condition("example.com/lb") == gate


def test_condition_transition_times_are_kept() -> None:
    w = FakeWorker(mkpod([ctr(readinessProbe={"exec": {"command": ["true"]}})]))
    w.sync()
    t0 = w.condition("Initialized")["lastTransitionTime"]
    w.advance(5)
    w.feed(ProbeResult("c", "readiness", True, ""))
    w.sync()
    assert w.condition("Initialized")["lastTransitionTime"] == t0
    assert w.condition("Ready")["lastTransitionTime"] > t0


# ---------------------------------------------------------------- deletion
def test_graceful_deletion_stops_then_writes_final_status_and_deletes() -> None:
    w = FakeWorker(mkpod([ctr("a"), ctr("b")], terminationGracePeriodSeconds=30))
    w.sync()
    w.take()
    pod = dict(
        w.st.pod,
        metadata=dict(w.st.pod["metadata"], deletionTimestamp="2024-01-01T00:00:00Z", deletionGracePeriodSeconds=5),
    )
    w.feed(PodUpdated(pod))
    w.sync()
    acts = w.take()
    assert StopContainers(("a", "b"), 5.0, True, "terminate") in acts
    kinds = [type(a) for a in acts]
    assert (
        kinds.index(StopContainers)
        < kinds.index(ReleaseNetwork)
        < kinds.index(PublishStatus)
        < kinds.index(DeletePodObject)
        < kinds.index(CleanupPod)
    )
    assert w.reasons().count("Killing") == 2 and w.st.terminating and w.st.done
    assert w.status["phase"] == "Succeeded"
    assert [cs["state"]["terminated"]["exitCode"] for cs in w.status["containerStatuses"]] == [0, 0]


def test_deletion_grace_minimum_and_failed_final_phase() -> None:
    w = FakeWorker(mkpod([ctr()], terminationGracePeriodSeconds=0))
    w.stop_code = 137
    w.sync()
    w.feed(PodUpdated(dict(w.st.pod, metadata=dict(w.st.pod["metadata"], deletionTimestamp="x"))))
    w.sync()
    assert StopContainers(("c",), 2.0, True, "terminate") in w.actions  # at least 2 s, as the kubelet
    assert w.status["phase"] == "Failed"


def test_deletion_before_start_ends_waiting_containers() -> None:
    w = FakeWorker(mkpod([ctr("a"), ctr("b")]))
    w.missing_images.add("b")
    w.sync()
    w.exit("a", 0)  # Always: it would restart, but the pod is going
    w.feed(
        PodUpdated(
            dict(w.st.pod, metadata=dict(w.st.pod["metadata"], deletionTimestamp="x", deletionGracePeriodSeconds=0))
        )
    )
    w.sync()
    b = w.cstatus("b")["state"]["terminated"]
    assert b["reason"] == "ContainerStatusUnknown" and b["exitCode"] == 1
    assert b["message"] == "The container was never started"
    assert w.status["phase"] == "Failed"


def test_force_deleted_pod_stops_at_once_and_writes_nothing() -> None:
    w = FakeWorker(mkpod([ctr()]))
    w.sync()
    n = len(w.published)
    w.feed(PodDeleted(None))
    w.sync()
    assert StopContainers(("c",), 2.0, True, "terminate") in w.actions
    assert len(w.published) == n and CleanupPod() in w.actions and DeletePodObject() not in w.actions
    assert w.st.done


def test_delete_retried_when_the_api_fails() -> None:
    w = FakeWorker(mkpod([ctr()], restartPolicy="Never"))
    w.sync()
    w.exit("c", 0)
    w.feed(PodUpdated(dict(w.st.pod, metadata=dict(w.st.pod["metadata"], deletionTimestamp="x"))))
    acts = w.st.handle(Sync(), w.now())
    assert acts[-2:] == [PublishStatus(), DeletePodObject()]
    assert w.st.handle(PodObjectDeleted(False), w.now()) == [Wake(1.0)] and not w.st.done


# ------------------------------------------------------- deadline, recovery
def test_active_deadline_fails_the_pod() -> None:
    w = FakeWorker(mkpod([ctr()], activeDeadlineSeconds=30))
    w.sync()
    assert 30.0 in w.wakes
    w.advance(31)
    w.sync()
    assert StopContainers(("c",), 30.0, False, "deadline") in w.actions
    assert w.status["phase"] == "Failed" and w.status["reason"] == "DeadlineExceeded"
    assert "DeadlineExceeded" in w.reasons()
    w.take()
    w.sync()  # terminal: the network goes, nothing restarts
    assert ReleaseNetwork() in w.take()


def test_restarted_kubelet_recovers_restart_counts_and_ip() -> None:
    status = {
        "phase": "Running",
        "podIP": "127.16.0.9",
        "startTime": "2024-01-01T00:00:00Z",
        "containerStatuses": [
            {"name": "c", "restartCount": 2, "state": {"running": {"startedAt": "t"}}, "lastState": {}}
        ],
    }
    w = FakeWorker(mkpod([ctr()], status=status))
    w.sync()
    assert PrepareSandbox(network=True, previous_ip="127.16.0.9") in w.actions
    assert started(w) == ["c"]
    cs = w.cstatus()
    assert cs["restartCount"] == 3 and cs["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert w.status["startTime"] == "2024-01-01T00:00:00Z"


def test_oom_and_fallback_to_logs_messages() -> None:
    w = FakeWorker(mkpod([ctr(terminationMessagePolicy="FallbackToLogsOnError")], restartPolicy="Never"))
    w.sync()
    w.exit("c", 3, log_tail="boom\ntraceback")
    w.sync()
    assert w.cstatus()["state"]["terminated"]["message"] == "boom\ntraceback"
    w2 = FakeWorker(mkpod([ctr()]))
    w2.sync()
    w2.exit("c", 137, signal=9, oom=True, message="memory limit 64Mi exceeded")
    w2.sync()
    last = w2.cstatus()["lastState"]["terminated"]
    assert last["reason"] == "OOMKilled" and "64Mi" in last["message"] and "OOMKilled" in w2.reasons()


def test_simulated_runtime_passes_probes() -> None:
    w = FakeWorker(mkpod([ctr(readinessProbe={"exec": {"command": ["false"]}})]), simulated=True)
    w.sync()
    assert not any(isinstance(a, StartProbes) for a in w.actions)
    assert w.condition("Ready")["status"] == "True"


def test_status_rejected_as_gone_marks_the_pod_deleted() -> None:
    st = PodState(mkpod([ctr()]), node_ip=NODE_IP, backoff_base=1, backoff_max=8)
    assert st.handle(StatusRejected(gone=False), Now(0, WALL0)) == [Wake(1.0)]
    assert st.handle(StatusRejected(gone=True), Now(0, WALL0)) == [Wake()] and st.deleted
    assert st.status_update(Now(0, WALL0)) is None


# ---------------------------------------------------------------- admission
def test_admission_fit_uses_the_scheduler_requests() -> None:
    cap = {"cpu": 3000, "memory": 6 * 2**30, "pods": 2}

    def req(cpu: str = "0", mem: str = "0", **spec: Any) -> Any:
        return pod_requests(mkpod([ctr(resources={"requests": {"cpu": cpu, "memory": mem}})], **spec))

    assert admission_rejection(req("1"), [req("1")], cap) is None
    assert admission_rejection(req("4"), [], cap) == (
        "OutOfcpu",
        "Node didn't have enough resource: cpu, requested: 4000m, used: 0m, capacity: 3000m",
    )
    assert admission_rejection(req("1", "4Gi"), [req("1", "3Gi")], cap) == (
        "OutOfmemory",
        f"Node didn't have enough resource: memory, requested: {4 * 2**30}, used: {3 * 2**30}, capacity: {6 * 2**30}",
    )
    assert admission_rejection(req(), [req(), req()], cap) == (
        "OutOfpods",
        "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2",
    )
    # init containers are a floor, overhead is added (as the scheduler counts)
    init = pod_requests(
        mkpod(
            [ctr(resources={"requests": {"cpu": "1"}})],
            init=[ctr("i", resources={"requests": {"cpu": "2500m"}})],
            overhead={"cpu": "600m"},
        )
    )
    assert admission_rejection(init, [], cap) == (
        "OutOfcpu",
        "Node didn't have enough resource: cpu, requested: 3100m, used: 0m, capacity: 3000m",
    )
