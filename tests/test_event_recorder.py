"""cluster.client.EventRecorder against a fake client (no API server)."""

from __future__ import annotations

import copy
from typing import Any

from cluster.client import EVENTS, ApiError, EventRecorder


class FakeEventsClient:
    """Keeps created Events by (namespace, name); records every call."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail = False

    async def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        assert res is EVENTS
        self.calls.append(("create", body["metadata"]["name"]))
        if self.fail:
            raise ApiError(500, "InternalError", "boom")
        self.events[(namespace or "", body["metadata"]["name"])] = copy.deepcopy(body)
        return body

    async def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        assert res is EVENTS
        self.calls.append(("patch", name))
        ev = self.events.get((namespace or "", name))
        if ev is None:
            raise ApiError(404, "NotFound", f"events {name!r} not found")
        ev.update(body)
        return ev


POD = {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "prod", "uid": "u1", "resourceVersion": "7"}}
NODE = {"kind": "Node", "metadata": {"name": "n1", "uid": "n1", "namespace": "default"}}


async def test_repeat_within_window_patches_count_and_other_message_creates() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "kubelet", "n1", host="n1")  # type: ignore[arg-type]
    rec.start()
    try:
        rec.event(POD, "Warning", "BackOff", "back-off", field_path="spec.containers{app}")
        await rec.flush()
        rec.event(POD, "Warning", "BackOff", "back-off", field_path="spec.containers{app}")
        await rec.flush()
        assert [c for c, _ in client.calls] == ["create", "patch"]
        (ns, name), ev = next(iter(client.events.items()))
        assert ns == "prod" and name.startswith("web-1.")
        assert ev["count"] == 2 and ev["firstTimestamp"] <= ev["lastTimestamp"]
        assert ev["involvedObject"] == {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": "web-1",
            "namespace": "prod",
            "uid": "u1",
            "resourceVersion": "7",
            "fieldPath": "spec.containers{app}",
        }
        assert ev["source"] == {"component": "kubelet", "host": "n1"}
        assert (ev["reportingComponent"], ev["reportingInstance"]) == ("kubelet", "n1")

        rec.event(POD, "Warning", "BackOff", "back-off again")  # another message: another Event
        rec.event(NODE, "Normal", "Starting", "Starting kubelet.")
        await rec.flush()
        assert [c for c, _ in client.calls] == ["create", "patch", "create", "create"]
        node_ev = client.events[("default", client.calls[-1][1])]
        assert "namespace" not in node_ev["involvedObject"] and "fieldPath" not in node_ev["involvedObject"]
        assert rec.emitted == 4 and rec.dropped == 0
    finally:
        await rec.stop()


async def test_aggregation_window_and_deleted_event() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "scheduler", aggregate_seconds=0.0)  # type: ignore[arg-type]
    rec.start()
    try:
        rec.event(POD, "Normal", "Scheduled", "bound")
        rec.event(POD, "Normal", "Scheduled", "bound")  # outside a zero window: a new Event
        await rec.flush()
        assert [c for c, _ in client.calls] == ["create", "create"]
        assert client.events[next(iter(client.events))]["source"] == {"component": "scheduler"}

        rec.aggregate_seconds = 600.0
        client.events.clear()  # the Event expired: the PATCH gets 404 and a new one is created
        rec.event(POD, "Normal", "Scheduled", "bound")
        await rec.flush()
        assert [c for c, _ in client.calls[2:]] == ["patch", "create"]
        assert rec.emitted == 3 and rec.dropped == 0
    finally:
        await rec.stop()


async def test_full_backlog_and_api_errors_drop_and_count() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "controller-manager", max_backlog=2, concurrency=8)  # type: ignore[arg-type]
    for i in range(5):  # not started yet: the backlog fills
        rec.event(POD, "Normal", "SuccessfulCreate", f"Created pod: p{i}", kind="ReplicaSet")
    assert rec.dropped == 3
    client.fail = True
    rec.start()
    try:
        await rec.flush()
        assert rec.emitted == 0 and rec.dropped == 5 and len(client.calls) == 2
    finally:
        await rec.stop()


async def test_disabled_queues_nothing() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "kubelet", "n1", enabled=False)  # type: ignore[arg-type]
    rec.start()
    rec.event(POD, "Normal", "Pulled", "present")
    assert rec._queue.qsize() == 0 and not rec._tasks
    await rec.flush(0.1)
    enabled = EventRecorder(client, "kubelet", "n1")  # type: ignore[arg-type]
    enabled.start()
    enabled.enabled = False  # the kubelet's power-off
    enabled.event(POD, "Normal", "Pulled", "present")
    await enabled.flush()
    await enabled.stop()
    assert client.calls == [] and rec.dropped == enabled.dropped == 0
