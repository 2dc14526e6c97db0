"""raftstore_bench's load generator: the code that runs in each worker process.

``worker_entry`` is the target of every spawned load process: it builds a
backend (``kvbackends``), tells the parent it is ready, waits for the
common ("go", t_start, t_end) window, runs the cell's loops (put, get, or
a paced writer plus a watcher) and sends back its latencies and errors.

Concurrency: one process per worker (``multiprocessing`` spawn), each with
its own asyncio loop, so the load shares no GIL with the harness; the only
shared state is the ``counters`` array (one slot per worker, written by its
owner, read by the parent for the live rate) and the pipe.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import random
import signal
import time
import traceback
from typing import Any

VALUE_SIZE = 100


def worker_entry(kind: str, spec: dict[str, Any], params: dict[str, Any], conn: Any, counters: Any, idx: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and kills us by PID
    try:
        result = asyncio.run(_worker(kind, spec, params, conn, counters, idx))
        conn.send(("result", result))
    except BaseException as exc:  # noqa: BLE001 -- report, never hang the parent
        with contextlib.suppress(Exception):  # the parent may be gone already
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


class _Stats:
    def __init__(self) -> None:
        self.lat = array.array("d")
        self.errors = 0
        self.error_samples: list[str] = []
        self.last_done = 0.0
        self.max_gap = 0.0

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{type(exc).__name__}: {exc}"[:400])


async def _worker(
    kind: str, spec: dict[str, Any], params: dict[str, Any], conn: Any, counters: Any, idx: int
) -> dict[str, Any]:
    from kvbackends import make_backend

    conc = int(params["concurrency"])
    loop = asyncio.get_running_loop()
    backend = make_backend(spec, pool=max(conc, 1))
    await backend.start()
    extra: dict[str, Any] = {}
    watcher_backend = None
    if kind == "watch":
        watcher_backend = make_backend(spec, pool=1)
        await watcher_backend.start()

    conn.send(("ready", {"pid": os.getpid()}))
    msg = conn.recv()  # blocks until every worker is ready: ("go", t_start, t_end)
    assert msg[0] == "go", msg
    t_start, t_end = float(msg[1]), float(msg[2])
    mono = time.monotonic
    st = _Stats()
    st.last_done = t_start
    value = (os.urandom(VALUE_SIZE // 2).hex().encode())[:VALUE_SIZE]
    tag = f"w{idx}-{os.getpid()}"

    def done(s: float, e: float) -> None:
        counters[idx] += 1
        if s >= t_start and e <= t_end:
            st.lat.append(e - s)
            gap = e - st.last_done
            st.max_gap = max(st.max_gap, gap)
            st.last_done = e

    if kind == "put":
        prefix = params["prefix"].encode()

        async def put_loop(t: int) -> None:
            n = 0
            while True:
                s = mono()
                if s >= t_end:
                    return
                key = b"%s/%s-t%d-%08d" % (prefix, tag.encode(), t, n)
                n += 1
                try:
                    await backend.put(key, value)
                except Exception as exc:  # noqa: BLE001 -- counted and sampled; the loop goes on
                    st.error(exc)
                    await asyncio.sleep(0.01)
                    continue
                done(s, mono())

        tasks = [loop.create_task(put_loop(t)) for t in range(conc)]

    elif kind == "get":
        keys = [k.encode() for k in params["keys"]]
        rnd = random.Random(idx)

        async def get_loop(t: int) -> None:
            while True:
                s = mono()
                if s >= t_end:
                    return
                try:
                    v = await backend.get(rnd.choice(keys))
                    if v is None:
                        raise LookupError("preloaded key missing")
                except Exception as exc:  # noqa: BLE001 -- counted and sampled; the loop goes on
                    st.error(exc)
                    await asyncio.sleep(0.01)
                    continue
                done(s, mono())

        tasks = [loop.create_task(get_loop(t)) for t in range(conc)]

    elif kind == "watch":
        assert watcher_backend is not None
        prefix = params["prefix"].encode()
        rate = float(params["rate"])
        watch = await watcher_backend.watch(prefix + b"/")
        put_lat = array.array("d")
        started_in_window: set[bytes] = set()
        seen: set[bytes] = set()

        async def reader() -> None:
            async for ev in watch:
                r = mono()
                try:
                    s = float(ev.value.split(b" ", 1)[0])
                except ValueError:
                    continue
                seen.add(ev.key)
                if s >= t_start and s <= t_end:
                    counters[idx] += 1
                    st.lat.append(r - s)
                    gap = r - st.last_done
                    st.max_gap = max(st.max_gap, gap)
                    st.last_done = r

        async def one_put(i: int) -> None:
            s = mono()
            key = b"%s/%s-%08d" % (prefix, tag.encode(), i)
            v = (b"%.9f " % s).ljust(VALUE_SIZE, b"x")
            if t_start <= s <= t_end:
                started_in_window.add(key)
            try:
                await backend.put(key, v)
            except Exception as exc:  # noqa: BLE001 -- counted and sampled; the writer goes on
                st.error(exc)
                return
            e = mono()
            if t_start <= s and e <= t_end:
                put_lat.append(e - s)

        rtask = loop.create_task(reader())

        async def writer() -> None:
            t0 = mono()
            i = 0
            pending: set[asyncio.Task[None]] = set()
            while True:
                at = t0 + i / rate
                if at >= t_end:
                    break
                delay = at - mono()
                if delay > 0:
                    await asyncio.sleep(delay)
                tk = loop.create_task(one_put(i))
                pending.add(tk)
                tk.add_done_callback(pending.discard)
                i += 1
            if pending:
                await asyncio.wait(pending, timeout=float(params["op_timeout"]))
            # Grace for the last events to arrive.
            deadline = mono() + 2.0
            while mono() < deadline and not started_in_window <= seen:
                await asyncio.sleep(0.01)

        tasks = [loop.create_task(writer())]
        extra = {"put_latencies": put_lat, "rate": rate}

    else:
        raise ValueError(kind)

    # Wait for the loops to finish; stragglers past the op timeout are hangs.
    _, still = await asyncio.wait(tasks, timeout=max(0.0, t_end - mono()) + float(params["op_timeout"]) + 5.0)
    hung = len(still)
    for tk in still:
        tk.cancel()
    for tk in tasks:
        if tk.done() and not tk.cancelled() and tk.exception() is not None:
            st.error(tk.exception())  # type: ignore[arg-type]
    if kind == "watch":
        extra["missed_events"] = len(started_in_window - seen)
        extra["events_expected"] = len(started_in_window)
        rtask.cancel()
        with contextlib.suppress(Exception):  # the result is in: cancelling is a courtesy
            await watch.cancel()
        if rtask.done() and not rtask.cancelled() and rtask.exception() is not None:
            st.error(rtask.exception())  # type: ignore[arg-type]
    with contextlib.suppress(Exception):  # the process exits next: a failed close loses nothing
        await asyncio.wait_for(backend.close(), 5.0)
        if watcher_backend is not None:
            await asyncio.wait_for(watcher_backend.close(), 5.0)
    return {
        "latencies": st.lat,
        "errors": st.errors,
        "error_samples": st.error_samples,
        "hung": hung,
        "max_gap": st.max_gap if st.lat else None,
        **extra,
    }
