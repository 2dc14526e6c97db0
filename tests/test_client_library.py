"""cluster.client: REST client and informers
(integration: a real 3-member raftstore and real API servers in this process, over TLS).

Fault injection for the informer: ``Informer.disconnect()`` (breaks the live
watch connection), an API server stopped while another replica keeps taking
writes, and the same plus a raftstore compaction so that the resume gets
410 Gone and the informer must re-list.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from client_fixtures import Env, Recorder, _free_port, cm, converged, env, make_ns, serving  # noqa: F401

from cluster.client import (
    CONFIGMAPS,
    NAMESPACES,
    ApiError,
    Client,
    Informer,
    Unavailable,
    key_of,
)
from cluster.pki import ensure_pki
from raftstore.client import RaftstoreClient


async def test_rest_crud_conflict_and_errors(env: Env) -> None:
    async with serving(env) as srv:
        async with env.client(srv._port) as c:
            ns = await make_ns(c, "crud")
            created = await c.create(CONFIGMAPS, cm("a", x="1"), ns)
            assert created["metadata"]["uid"] and created["kind"] == "ConfigMap"
            got = await c.get(CONFIGMAPS, "a", ns)
            got["data"]["x"] = "2"
            updated = await c.update(CONFIGMAPS, got)
            assert updated["data"]["x"] == "2"
            with pytest.raises(ApiError) as ei:
                await c.update(CONFIGMAPS, got)  # stale resourceVersion
            assert ei.value.code == 409 and ei.value.conflict
            with pytest.raises(ApiError) as ei:
                await c.create(CONFIGMAPS, cm("a"), ns)
            assert ei.value.already_exists
            patched = await c.patch(CONFIGMAPS, "a", {"data": {"y": "3"}}, ns)
            assert patched["data"] == {"x": "2", "y": "3"}
            lst = await c.list(CONFIGMAPS, ns, label_selector="app=t")
            assert [o["metadata"]["name"] for o in lst["items"]] == ["a"]
            await c.delete(CONFIGMAPS, "a", ns)
            with pytest.raises(ApiError) as ei:
                await c.get(CONFIGMAPS, "a", ns)
            assert ei.value.not_found and ei.value.reason == "NotFound"
            async with Client(c.server, ca_data=env.pki.ca_pem()) as anon:
                with pytest.raises(ApiError) as ei:
                    await anon.list(CONFIGMAPS, ns)
                assert ei.value.code == 401


async def test_rest_pagination_and_watch(env: Env) -> None:
    async with serving(env) as srv:
        async with env.client(srv._port) as c:
            ns = await make_ns(c, "pages")
            for i in range(7):
                await c.create(CONFIGMAPS, cm(f"p{i}"), ns)
            items, rv = await c.list_all(CONFIGMAPS, ns, page_size=3)
            assert sorted(o["metadata"]["name"] for o in items) == [f"p{i}" for i in range(7)] and int(rv) > 0
            got: list[tuple[str, str]] = []

            async def watch() -> None:
                async for ev in c.watch(CONFIGMAPS, ns, resource_version=rv):
                    if ev.type != "BOOKMARK":
                        got.append((ev.type, ev.object["metadata"]["name"]))
                    if len(got) == 3:
                        return

            t = asyncio.create_task(watch())
            await asyncio.sleep(0.2)
            await c.create(CONFIGMAPS, cm("w"), ns)
            await c.patch(CONFIGMAPS, "w", {"data": {"a": "b"}}, ns)
            await c.delete(CONFIGMAPS, "w", ns)
            await asyncio.wait_for(t, 10)
            assert got == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_rest_client_reconnects_across_server_restart(env: Env) -> None:
    port = _free_port()
    async with env.client(port, retry_deadline=20) as c:
        async with serving(env, port):
            ns = await make_ns(c, "restart")
            await c.create(CONFIGMAPS, cm("before"), ns)

        # Server down: a read and a write both wait (retrying connects) and succeed once it is back.
        async def restart_later() -> Any:
            await asyncio.sleep(1.0)
            from cluster.apiserver.server import APIServer

            s = APIServer(env.config(port))
            await s.start()
            return s

        starter = asyncio.create_task(restart_later())
        got = await c.get(CONFIGMAPS, "before", ns)
        created = await c.create(CONFIGMAPS, cm("after"), ns)
        server = await starter
        try:
            assert got["metadata"]["name"] == "before" and created["metadata"]["name"] == "after"
            assert c.stats["reconnects"] >= 1
        finally:
            await server.stop()
    async with env.client(_free_port(), retry_deadline=0.5) as dead:
        with pytest.raises(Unavailable):
            await dead.list(CONFIGMAPS, "default")


async def test_informer_converges_after_create_update_delete(env: Env) -> None:
    async with serving(env) as srv:
        async with env.client(srv._port) as c:
            ns = await make_ns(c, "inf1")
            await c.create(CONFIGMAPS, cm("pre"), ns)
            inf = Informer(c, CONFIGMAPS, ns)
            rec = Recorder()
            inf.add_event_handler(rec.add, rec.update, rec.delete)
            inf.start()
            try:
                assert await inf.wait_for_sync(10)
                assert inf.has_synced and inf.store.keys() == [f"{ns}/pre"]
                for i in range(10):
                    await c.create(CONFIGMAPS, cm(f"c{i}", v="0"), ns)
                for i in range(0, 10, 2):
                    await c.patch(CONFIGMAPS, f"c{i}", {"data": {"v": "1"}}, ns)
                for i in range(0, 10, 3):
                    await c.delete(CONFIGMAPS, f"c{i}", ns)
                await c.delete(CONFIGMAPS, "pre", ns)
                await converged(inf, c, ns)
                assert rec.kinds(f"{ns}/c0") == ["add", "update", "delete"]
                assert rec.kinds(f"{ns}/c1") == ["add"]
                assert rec.kinds(f"{ns}/c2") == ["add", "update"]
                assert rec.kinds(f"{ns}/pre") == ["add", "delete"]
                assert [o["metadata"]["name"] for o in inf.store.by_index("namespace", ns)]
                assert inf.stats["lists"] == 1
            finally:
                await inf.stop()


async def test_informer_converges_after_forced_watch_disconnect(env: Env) -> None:
    async with serving(env) as srv:
        async with env.client(srv._port) as c:
            ns = await make_ns(c, "inf2")
            inf = Informer(c, CONFIGMAPS, ns)
            rec = Recorder()
            inf.add_event_handler(rec.add, rec.update, rec.delete)
            inf.start()
            try:
                assert await inf.wait_for_sync(10)
                for round_ in range(3):
                    inf.disconnect()
                    for i in range(5):
                        await c.create(CONFIGMAPS, cm(f"r{round_}-{i}"), ns)
                    await c.delete(CONFIGMAPS, f"r{round_}-0", ns)
                    await converged(inf, c, ns)
                assert inf.stats["watches"] >= 3 and inf.stats["lists"] == 1, inf.stats
                # each object was added exactly once: no duplicates after resuming
                adds = [k for kind, k, _ in rec.events if kind == "add"]
                assert len(adds) == len(set(adds)) == 15
            finally:
                await inf.stop()


async def test_informer_resumes_after_apiserver_restart_and_relists_on_410(env: Env) -> None:
    port_a = _free_port()
    async with serving(env) as b:  # another replica that keeps taking writes
        async with env.client(b._port) as cb, env.client(port_a, retry_deadline=30) as ca:
            ns = await make_ns(cb, "inf3")
            for i in range(4):
                await cb.create(CONFIGMAPS, cm(f"k{i}"), ns)
            inf = Informer(ca, CONFIGMAPS, ns)
            rec = Recorder()
            inf.add_event_handler(rec.add, rec.update, rec.delete)
            try:
                async with serving(env, port_a):
                    inf.start()
                    assert await inf.wait_for_sync(10)
                    await converged(inf, ca, ns)
                # A is down: changes happen on B; the informer's watch is broken.
                await cb.delete(CONFIGMAPS, "k0", ns)
                await cb.create(CONFIGMAPS, cm("k9"), ns)
                async with serving(env, port_a):
                    await converged(inf, ca, ns)
                    assert inf.stats["relists_gone"] == 0 and inf.stats["lists"] == 1, inf.stats
                    assert "delete" in rec.kinds(f"{ns}/k0")
                # A down again; this time history is compacted, so resuming gets 410 Gone -> re-list.
                await cb.delete(CONFIGMAPS, "k1", ns)
                await cb.patch(CONFIGMAPS, "k2", {"data": {"z": "1"}}, ns)
                await cb.create(CONFIGMAPS, cm("k10"), ns)
                async with RaftstoreClient(env.cluster.endpoints) as rs:
                    st = await rs.wait_for_leader()
                    await rs.compact(int(st["revision"]))
                async with serving(env, port_a):
                    await converged(inf, ca, ns, timeout=20)
                    assert inf.stats["relists_gone"] >= 1 and inf.stats["lists"] >= 2, inf.stats
                    assert rec.kinds(f"{ns}/k1")[-1] == "delete", "vanished during the gap: delivered as delete"
                    assert rec.kinds(f"{ns}/k2")[-1] == "update"
                    assert rec.kinds(f"{ns}/k10") == ["add"]
            finally:
                await inf.stop()


async def test_informer_resync_and_late_handler(env: Env) -> None:
    async with serving(env) as srv:
        async with env.client(srv._port) as c:
            ns = await make_ns(c, "inf4")
            await c.create(CONFIGMAPS, cm("s"), ns)
            inf = Informer(c, CONFIGMAPS, ns, resync_period=0.2)
            resyncs: list[str] = []
            inf.add_event_handler(on_update=lambda old, new: resyncs.append(key_of(new)) if old is new else None)
            inf.start()
            try:
                assert await inf.wait_for_sync(10)
                await asyncio.sleep(0.7)
                assert resyncs.count(f"{ns}/s") >= 2
                late: list[str] = []
                inf.add_event_handler(on_add=lambda o: late.append(key_of(o)))
                await inf.wait_idle()
                assert late == [f"{ns}/s"]
            finally:
                await inf.stop()


async def test_kubeconfig_roundtrip_and_pki_reuse(env: Env, tmp_path: Any) -> None:
    from cluster import kubeconfig

    again = ensure_pki(env.pki.dir)
    assert again.ca_pem() == env.pki.ca_pem(), "the CA is made once and reused"
    async with serving(env) as srv:
        path = kubeconfig.write(str(tmp_path / "kc"), srv.url, env.pki.ca_pem(), "admin", env.admin)
        assert os.stat(path).st_mode & 0o077 == 0
        kc = kubeconfig.load(path)
        assert kc.server == srv.url and kc.token == env.admin and kc.ca_data == env.pki.ca_pem()
        async with Client.from_kubeconfig(path) as c:
            assert c.namespace == "default"
            names = {o["metadata"]["name"] for o in (await c.list(NAMESPACES))["items"]}
            assert {"default", "kube-system"} <= names
        # a client that does not trust the CA refuses the server
        async with Client(srv.url, token=env.admin, retry_deadline=30) as untrusting:
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(Unavailable, match="TLS verification"):
                await untrusting.list(NAMESPACES)
            assert asyncio.get_running_loop().time() - t0 < 5, "a certificate error is not retried"


async def test_requests_share_a_bounded_pool_and_watches_do_not_take_from_it(env: Env) -> None:
    """``max_connections`` bounds the connections requests use (a burst queues instead of opening one
    TLS connection per call), and watches have their own connections, so three open watches cannot
    starve a client whose request pool has room for one."""
    import psutil

    async with serving(env) as srv:
        async with env.client(srv._port, max_connections=1) as c:
            ns = await make_ns(c, "pool")
            watches = [asyncio.create_task(_drain_watch(c, ns)) for _ in range(3)]
            try:
                await asyncio.sleep(0.3)
                got = await asyncio.wait_for(c.list(CONFIGMAPS, ns), 10)  # would hang if watches held the pool
                assert got["items"] == []
                await asyncio.wait_for(asyncio.gather(*(c.create(CONFIGMAPS, cm(f"b{i}"), ns) for i in range(20))), 30)
                mine = [
                    k
                    for k in psutil.Process().net_connections("tcp")
                    if k.raddr and k.raddr.port == srv._port and k.status == psutil.CONN_ESTABLISHED
                ]
                assert len(mine) <= 3 + 1, f"3 watches + 1 pooled request connection, got {len(mine)}"
            finally:
                for w in watches:
                    w.cancel()
                await asyncio.gather(*watches, return_exceptions=True)


async def _drain_watch(c: Client, ns: str) -> None:
    async for _ in c.watch(CONFIGMAPS, ns, resource_version="0"):
        pass


async def test_update_fast_path_trusts_the_watch_cache_only_as_a_guess(env: Env) -> None:
    """An update starts from the value the API server's watch hub saw last, instead of a Raft read; a stale
    guess (hub lagging) must never decide the outcome: a lost compare, a no-op and a resourceVersion
    precondition are all settled again on a live read."""
    async with serving(env) as srv:
        reg = srv.registry
        async with env.client(srv._port) as c:
            ns = await make_ns(c, "fastpath")
            key = f"/registry/configmaps/{ns}/a"
            first = await c.create(CONFIGMAPS, cm("a", x="1"), ns)
            await _until(lambda: key in reg.latest)
            v1 = reg.latest[key]
            assert v1[0] == int(first["metadata"]["resourceVersion"])

            reads = 0
            real_get = reg.store.get

            async def counting_get(k: str) -> Any:
                nonlocal reads
                reads += 1
                return await real_get(k)

            reg.store.get = counting_get  # type: ignore[method-assign]
            try:
                second = await c.patch(CONFIGMAPS, "a", {"data": {"x": "2"}}, ns)
                assert second["data"] == {"x": "2"} and reads == 0, "a fresh guess needs no read"
                await _until(lambda: reg.latest[key][0] == int(second["metadata"]["resourceVersion"]))

                # 1. a stale guess loses the compare: the patch lands on the current object
                reg.latest[key] = v1
                third = await c.patch(CONFIGMAPS, "a", {"data": {"y": "3"}}, ns)
                assert third["data"] == {"x": "2", "y": "3"} and reads == 1
                await _until(lambda: reg.latest[key][0] == int(third["metadata"]["resourceVersion"]))

                # 2. a no-op against the stale guess is a real change against the current object
                reg.latest[key] = v1
                fourth = await c.patch(CONFIGMAPS, "a", {"data": {"x": "1", "y": None}}, ns)
                assert fourth["data"] == {"x": "1"}
                assert (await c.get(CONFIGMAPS, "a", ns))["data"] == {"x": "1"}
                await _until(lambda: reg.latest[key][0] == int(fourth["metadata"]["resourceVersion"]))

                # 3. a client's resourceVersion precondition is checked against the live object, not the guess
                reg.latest[key] = v1
                cur = await c.get(CONFIGMAPS, "a", ns)
                cur["data"] = {"z": "4"}
                fifth = await c.update(CONFIGMAPS, cur)
                assert fifth["data"] == {"z": "4"}
                with pytest.raises(ApiError) as ei:  # and a really stale one is still a 409
                    await c.update(CONFIGMAPS, cur)
                assert ei.value.code == 409
            finally:
                reg.store.get = real_get  # type: ignore[method-assign]
            assert reg.update_stats["cached_stale"] >= 3


async def _until(cond: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_default_toleration_seconds_admission_uses_the_servers_setting(env: Env) -> None:
    """DefaultTolerationSeconds: new pods get not-ready/unreachable tolerations with the API server's
    configured seconds (the launcher passes its timing profile's: 0 in demo); a pod's own stay."""
    from dataclasses import replace

    from cluster.apiserver.server import APIServer
    from cluster.client import PODS

    port = _free_port()
    server = APIServer(replace(env.config(port), default_toleration_seconds=7))
    await server.start()
    try:
        async with env.client(port) as c:
            ns = await make_ns(c, "tolerations")
            spec = {"containers": [{"name": "c", "image": "raykube/web"}]}
            plain = await c.create(PODS, {"metadata": {"name": "plain"}, "spec": spec}, ns)
            assert {(t["key"], t["tolerationSeconds"]) for t in plain["spec"]["tolerations"]} == {
                ("node.kubernetes.io/not-ready", 7),
                ("node.kubernetes.io/unreachable", 7),
            }
            own = await c.create(
                PODS,
                {
                    "metadata": {"name": "own"},
                    "spec": {
                        **spec,
                        "tolerations": [
                            {
                                "key": "node.kubernetes.io/unreachable",
                                "operator": "Exists",
                                "effect": "NoExecute",
                                "tolerationSeconds": 300,
                            }
                        ],
                    },
                },
                ns,
            )
            assert {(t["key"], t["tolerationSeconds"]) for t in own["spec"]["tolerations"]} == {
                ("node.kubernetes.io/not-ready", 7),
                ("node.kubernetes.io/unreachable", 300),
            }
    finally:
        await server.stop()
