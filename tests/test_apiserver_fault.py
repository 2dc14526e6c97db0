"""Fault: an API watch opened before the raftstore leader is SIGKILLed sees
every later change exactly once and in order, and writes resume. Its own
cluster and API server (module-scoped fixture), killed by PID afterwards."""

from __future__ import annotations

import json
import threading
import time

from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)

NS = "/api/v1/namespaces/fault"
CM = f"{NS}/configmaps"


def _write(api: Env, i: int, deadline: float) -> str:
    """Create config map i; retry through failover. Returns its resourceVersion."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i:03d}"}, "data": {"i": str(i)}}
    while True:
        try:
            r = api.request("POST", CM, body, timeout=20)
        except OSError:
            r = None
        if r is not None and r.status == 201:
            return r.json["metadata"]["resourceVersion"]
        if r is not None and r.status == 409:  # an earlier attempt whose answer was lost did apply
            return api.request("GET", f"{CM}/c{i:03d}").json["metadata"]["resourceVersion"]
        assert time.monotonic() < deadline, (
            f"write {i} did not succeed: {r.status if r else 'no answer'} {r.body[:300] if r else ''}"
        )
        time.sleep(0.1)


def test_watch_survives_raftstore_leader_sigkill(api: Env) -> None:
    assert (
        api.request(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fault"}}
        ).status
        == 201
    )
    rv = api.request("GET", CM).json["metadata"]["resourceVersion"]
    conn = api.connection(120)
    conn.request(
        "GET",
        f"{CM}?watch=1&resourceVersion={rv}&timeoutSeconds=120",
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    events: list[dict] = []

    def reader() -> None:
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    events.append(json.loads(line))
        except Exception:  # the test closed the connection
            return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    written: list[tuple[int, str]] = []
    for i in range(15):
        written.append((i, _write(api, i, deadline)))
    leader = api.leader()
    api.cluster.kill(leader)
    killed_at = time.monotonic()
    first_after: float | None = None
    for i in range(15, 40):
        written.append((i, _write(api, i, deadline)))
        if first_after is None:
            first_after = time.monotonic() - killed_at
    # Updates after the failover are delivered too.
    r = api.request("PATCH", f"{CM}/c000", {"data": {"i": "updated"}}, content_type="application/merge-patch+json")
    assert r.status == 200
    last_rv = r.json["metadata"]["resourceVersion"]
    wait_until = time.monotonic() + 30
    while time.monotonic() < wait_until:
        if events and events[-1]["object"]["metadata"]["resourceVersion"] == last_rv:
            break
        time.sleep(0.05)
    try:
        conn.sock.shutdown(2)  # type: ignore[union-attr]
    except OSError:
        pass
    conn.close()
    assert all(e["type"] in ("ADDED", "MODIFIED") for e in events), [e["type"] for e in events]
    got = [(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]["resourceVersion"]) for e in events]
    want = [("ADDED", f"c{i:03d}", rv_) for i, rv_ in written] + [("MODIFIED", "c000", last_rv)]
    assert got == want, f"watch saw {len(got)} events, expected {len(want)}"
    revs = [int(e[2]) for e in got]
    assert revs == sorted(revs) and len(set(revs)) == len(revs)
    assert first_after is not None and first_after < 15, f"writes resumed only after {first_after:.1f}s"
    print(f"first write after the leader SIGKILL took {first_after:.2f}s; {len(events)} events checked")
    api.cluster.start_member(leader)
