"""apiserver_bench's load: what runs in each spawned load process, and how they are run.

``proc_main`` is the target of every load process: a closed loop of one
verb at a given concurrency, the paced open-loop mutations, a group of
watchers, or the watch writer, each on its own ``cluster.client.Client``
and asyncio loop; ``run_procs`` starts a set of them and collects their
results.

Concurrency: one OS process per load process (``multiprocessing`` spawn),
so the load shares no GIL with the harness; results come back on a queue,
and every process is joined (killed by PID if need be) in ``finally``.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import sys
import time
from typing import Any

VALUE = "x" * 100
OBJECTS_FOR_READS = 100


def client_for(conn: dict[str, Any]) -> Any:
    from cluster.client import Client

    return Client(
        conn["url"],
        token=conn["token"],
        ca_data=conn["ca"].encode(),
        max_connections=0,
        retry_deadline=10.0,
        timeout=30.0,
    )


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def _closed_loop(
    conn: dict[str, Any], op: str, tasks: int, proc: int, start_at: float, warmup: float, duration: float, tag: str
) -> dict[str, Any]:
    from cluster.client import CONFIGMAPS, ApiError

    client = client_for(conn)
    lat: list[float] = []
    errors: dict[str, int] = {}
    try:
        # Per-task state (update: own object and its resourceVersion).
        own: dict[int, dict[str, Any]] = {}
        if op == "update":
            for t in range(tasks):
                name = f"u-{tag}-{proc}-{t}"
                own[t] = await client.create(CONFIGMAPS, cm(name, v=VALUE), "bench-upd")
        # a warm connection per task before the clock starts
        await asyncio.gather(*(client.get(CONFIGMAPS, "r-0", "bench-read") for _ in range(tasks)))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t_measure = time.time() + warmup
        t_end = t_measure + duration

        async def task(t: int) -> None:
            i = 0
            while True:
                now = time.time()
                if now >= t_end:
                    return
                i += 1
                t0 = time.perf_counter()
                try:
                    if op == "create":
                        await client.create(CONFIGMAPS, cm(f"c-{tag}-{proc}-{t}-{i}", v=VALUE), "bench-create")
                    elif op == "update":
                        obj = own[t]
                        obj["data"] = {"v": VALUE, "i": str(i)}
                        own[t] = await client.update(CONFIGMAPS, obj)
                    elif op == "get":
                        await client.get(CONFIGMAPS, f"r-{random.randrange(OBJECTS_FOR_READS)}", "bench-read")
                    elif op == "list":
                        await client.list(CONFIGMAPS, "bench-read")
                    else:
                        raise ValueError(op)
                except ApiError as exc:
                    errors[exc.reason] = errors.get(exc.reason, 0) + 1
                    if op == "update":
                        own[t] = await client.get(CONFIGMAPS, own[t]["metadata"]["name"], "bench-upd")
                    continue
                if now >= t_measure:
                    lat.append((time.perf_counter() - t0) * 1000.0)

        await asyncio.gather(*(task(t) for t in range(tasks)))
    finally:
        await client.close()
    return {"lat": lat, "errors": errors, "window": duration}


async def _paced(conn: dict[str, Any], rate: float, seconds: float, start_at: float, tag: str) -> dict[str, Any]:
    from cluster.client import CONFIGMAPS, ApiError

    client = client_for(conn)
    lat: dict[str, list[float]] = {"create": [], "update": [], "delete": []}
    errors: dict[str, int] = {}
    try:
        await client.get(CONFIGMAPS, "r-0", "bench-read")
        await asyncio.sleep(max(0.0, start_at - time.time()))
        n = int(rate * seconds)
        t0 = time.perf_counter()
        live: dict[int, dict[str, Any]] = {}
        pending: set[asyncio.Task[None]] = set()

        async def one(k: int, sched: float) -> None:
            verb = ("create", "update", "delete")[k % 3]
            obj_id = k // 3
            try:
                if verb == "create":
                    live[obj_id] = await client.create(CONFIGMAPS, cm(f"p-{tag}-{obj_id}", v=VALUE), "bench-paced")
                elif verb == "update":
                    obj = live.get(obj_id)
                    if obj is None:
                        return
                    obj["data"] = {"v": VALUE, "u": "1"}
                    live[obj_id] = await client.update(CONFIGMAPS, obj)
                else:
                    await client.delete(CONFIGMAPS, f"p-{tag}-{obj_id}", "bench-paced")
            except ApiError as exc:
                errors[exc.reason] = errors.get(exc.reason, 0) + 1
                return
            lat[verb].append((time.perf_counter() - sched) * 1000.0)

        for k in range(n):
            sched = t0 + k / rate
            delay = sched - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # updates/deletes follow their create (same object): wait for it, as a client would
            if k % 3 and pending:
                await asyncio.gather(*[p for p in pending if getattr(p, "obj", None) == k // 3])
            task = asyncio.ensure_future(one(k, sched))
            task.obj = k // 3  # type: ignore[attr-defined]
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    finally:
        await client.close()
    return {"lat": lat, "errors": errors}


async def _watchers(
    conn: dict[str, Any], n: int, rv: str, events: int, ready_q: Any, timeout: float, proc: int
) -> dict[str, Any]:
    import aiohttp

    from cluster.client import CONFIGMAPS

    client = client_for(conn)
    lat: list[float] = []
    counts = [0] * n
    order_ok = [True] * n
    dup = [0] * n
    opened = 0

    async def watch(i: int) -> None:
        nonlocal opened
        last_rv = -1
        seen: set[int] = set()

        def on_resp(_: Any) -> None:
            nonlocal opened
            opened += 1
            if opened == n:
                ready_q.put(proc)

        try:
            async for ev in client.watch(
                CONFIGMAPS, "bench-watch", resource_version=rv, allow_bookmarks=True, on_response=on_resp
            ):
                if ev.type != "ADDED":
                    continue
                now = time.time()
                data = ev.object.get("data") or {}
                seq = int(data["seq"])
                lat.append((now - float(data["ts"])) * 1000.0)
                if seq in seen:
                    dup[i] += 1
                seen.add(seq)
                rv_i = int(ev.object["metadata"]["resourceVersion"])
                if rv_i <= last_rv:  # events must arrive in resourceVersion (commit) order
                    order_ok[i] = False
                last_rv = rv_i
                counts[i] += 1
                if counts[i] >= events:
                    return
        except (aiohttp.ClientError, OSError) as exc:  # pragma: no cover - reported as missing events
            print(f"watcher {proc}/{i}: {exc!r}", file=sys.stderr)

    try:
        await asyncio.wait_for(asyncio.gather(*(watch(i) for i in range(n))), timeout)
    except TimeoutError:
        pass
    finally:
        await client.close()
    return {"lat": lat, "counts": counts, "in_order": all(order_ok), "duplicates": sum(dup)}


async def _watch_writer(conn: dict[str, Any], events: int, rate: float, start_at: float, tag: str) -> dict[str, Any]:
    from cluster.client import CONFIGMAPS

    client = client_for(conn)
    lat: list[float] = []
    try:
        await client.get(CONFIGMAPS, "r-0", "bench-read")
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(32)

        async def one(k: int) -> None:
            async with sem:
                s = time.perf_counter()
                await client.create(CONFIGMAPS, cm(f"w-{tag}-{k}", seq=str(k), ts=repr(time.time())), "bench-watch")
                lat.append((time.perf_counter() - s) * 1000.0)

        tasks = []
        for k in range(events):
            delay = t0 + k / rate - time.perf_counter() if rate > 0 else 0
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(k)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    finally:
        await client.close()
    return {"lat": lat, "elapsed": elapsed}


def proc_main(kind: str, args: tuple[Any, ...], out_q: Any) -> None:
    try:
        sys.setswitchinterval(0.001)
        if kind == "closed":
            res = asyncio.run(_closed_loop(*args))
        elif kind == "paced":
            res = asyncio.run(_paced(*args))
        elif kind == "watchers":
            res = asyncio.run(_watchers(*args))
        elif kind == "writer":
            res = asyncio.run(_watch_writer(*args))
        else:
            raise ValueError(kind)
        out_q.put(("ok", res))
    except BaseException as exc:  # noqa: BLE001
        import traceback

        out_q.put(("error", f"{exc!r}\n{traceback.format_exc()}"))


def run_procs(specs: list[tuple[str, tuple[Any, ...]]], timeout: float) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=proc_main, args=(kind, args, q), daemon=True) for kind, args in specs]
    for p in procs:
        p.start()
    results = []
    try:
        for _ in procs:
            status, res = q.get(timeout=timeout)
            if status != "ok":
                raise RuntimeError(f"load process failed: {res}")
            results.append(res)
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(2)
    return results
