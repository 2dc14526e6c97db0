"""List+watch informers with a local cache (client-go's SharedIndexInformer, for asyncio).

An ``Informer`` keeps ``store`` equal to the server's view of one resource
(optionally one namespace / label selector):

1. **list** (paginated) -> replace the cache; objects that disappeared since the
   last list are delivered as deletes, new ones as adds, changed ones as
   updates;
2. **watch** from the list's resourceVersion with bookmarks; every event
   updates the cache and then the handlers;
3. the watch ending (server timeout) or breaking (connection lost, API server
   restarted) -> re-watch from the last resourceVersion seen, with jittered
   back-off (100 ms doubling to 10 s, reset after a healthy watch);
   **410 Gone** (history compacted) -> back to 1 (re-list);
4. every ``resync_period`` seconds each cached object is re-delivered as an
   update (old is new), so level-triggered controllers re-check everything.

Handlers (``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``;
plain functions or coroutines) each get their own unbounded queue and task,
so a slow handler delays neither the cache nor the other handlers, and each
sees events in order. ``has_synced`` turns true after the first list has
been delivered to every handler registered before ``start``.

``store`` is a ``Store``: ``get(key)``, ``list()``, ``keys()``, indexes
(``by_index("namespace", "default")``; add more with ``add_index``). Cached
objects are shared: treat them as read-only (copy before mutating).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import random
from collections import deque
from typing import Any, Callable

from .clock import REAL_CLOCK, Clock
from .resources import Resource, key_of
from .rest import ApiError, Client, Unavailable, WatchDisconnected

log = logging.getLogger("raykube.informer")

Handler = Callable[..., Any]
IndexFunc = Callable[[dict[str, Any]], list[str]]


def namespace_index(obj: dict[str, Any]) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


class Store:
    """A thread-unsafe (asyncio-only) keyed cache with secondary indexes."""

    def __init__(self, key_func: Callable[[dict[str, Any]], str] = key_of) -> None:
        self.key_func = key_func
        self._items: dict[str, dict[str, Any]] = {}
        self._index_funcs: dict[str, IndexFunc] = {"namespace": namespace_index}
        self._indexes: dict[str, dict[str, set[str]]] = {"namespace": {}}

    def add_index(self, name: str, func: IndexFunc) -> None:
        self._index_funcs[name] = func
        idx: dict[str, set[str]] = {}
        for k, obj in self._items.items():
            for v in func(obj):
                idx.setdefault(v, set()).add(k)
        self._indexes[name] = idx

    def _unindex(self, key: str, obj: dict[str, Any]) -> None:
        for name, func in self._index_funcs.items():
            idx = self._indexes[name]
            for v in func(obj):
                s = idx.get(v)
                if s is not None:
                    s.discard(key)
                    if not s:
                        del idx[v]

    def _index(self, key: str, obj: dict[str, Any]) -> None:
        for name, func in self._index_funcs.items():
            for v in func(obj):
                self._indexes[name].setdefault(v, set()).add(key)

    def put(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        key = self.key_func(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        self._index(key, obj)
        return old

    def remove(self, key: str) -> dict[str, Any] | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def get(self, key: str) -> dict[str, Any] | None:
        return self._items.get(key)

    def get_by(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[dict[str, Any]]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        return [self._items[k] for k in self._indexes[index].get(value, ())]

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items


class _Listener:
    """One handler set with its own queue and task (client-go's processorListener)."""

    def __init__(self, on_add: Handler | None, on_update: Handler | None, on_delete: Handler | None, name: str) -> None:
        self.on_add, self.on_update, self.on_delete = on_add, on_update, on_delete
        self.name = name
        self.pending: deque[tuple[str, tuple[Any, ...]]] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.delivered = 0

    def push(self, kind: str, *args: Any) -> None:
        self.pending.append((kind, args))
        self.wake.set()

    async def run(self) -> None:
        while True:
            while not self.pending:
                self.wake.clear()
                await self.wake.wait()
            kind, args = self.pending.popleft()
            fn = {"add": self.on_add, "update": self.on_update, "delete": self.on_delete}[kind]
            if fn is not None:
                try:
                    res = fn(*args)
                    if inspect.isawaitable(res):
                        await res
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one handler error must not stop delivery
                    log.exception("%s: %s handler failed", self.name, kind)
            self.delivered += 1

    @property
    def idle(self) -> bool:
        return not self.pending


class Informer:
    def __init__(
        self,
        client: Client,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float = 0.0,
        page_size: int = 500,
        watch_timeout: int = 300,
        clock: Clock = REAL_CLOCK,
        name: str | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace if resource.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.clock = clock
        self.name = name or f"informer/{resource}" + (f"/{namespace}" if namespace else "")
        self.store = Store()
        self.last_resource_version = ""
        self.stats = {"lists": 0, "watches": 0, "relists_gone": 0, "watch_errors": 0, "events": 0, "resyncs": 0}
        self._listeners: list[_Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._resp: Any = None
        self._stopped = False

    # --------------------------------------------------------------- API
    def add_event_handler(
        self, on_add: Handler | None = None, on_update: Handler | None = None, on_delete: Handler | None = None
    ) -> None:
        lst = _Listener(on_add, on_update, on_delete, self.name)
        self._listeners.append(lst)
        if self._task is not None:
            # A late handler first hears about everything already cached (as client-go does).
            for obj in self.store.list():
                lst.push("add", obj)
            lst.task = asyncio.get_running_loop().create_task(lst.run())

    def start(self) -> "Informer":
        loop = asyncio.get_running_loop()
        for lst in self._listeners:
            if lst.task is None:
                lst.task = loop.create_task(lst.run())
        self._task = loop.create_task(self._run(), name=self.name)
        if self.resync_period > 0:
            self._resync_task = loop.create_task(self._resync_loop())
        return self

    async def stop(self) -> None:
        self._stopped = True
        tasks = [t for t in [self._task, self._resync_task, *(lst.task for lst in self._listeners)] if t]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set() and all(lst.idle for lst in self._listeners)

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        while not all(lst.idle for lst in self._listeners):
            await asyncio.sleep(0.005)
        return True

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every handler has processed everything queued so far (tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(lst.idle for lst in self._listeners):
            if loop.time() > deadline:
                raise TimeoutError(f"{self.name}: handlers not idle after {timeout} s")
            await asyncio.sleep(0.005)

    def disconnect(self) -> None:
        """Break the current watch connection (fault injection); the informer resumes by itself."""
        if self._resp is not None:
            self._resp.close()

    # ---------------------------------------------------------- internals
    def _notify(self, kind: str, *args: Any) -> None:
        for lst in self._listeners:
            lst.push(kind, *args)

    async def _list(self) -> None:
        items, rv = await self.client.list_all(
            self.resource,
            self.namespace,
            all_namespaces=self.namespace is None,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            page_size=self.page_size,
        )
        self.stats["lists"] += 1
        seen: set[str] = set()
        for obj in items:
            key = self.store.key_func(obj)
            seen.add(key)
            old = self.store.put(obj)
            if old is None:
                self._notify("add", obj)
            elif (old.get("metadata") or {}).get("resourceVersion") != (obj.get("metadata") or {}).get(
                "resourceVersion"
            ):
                self._notify("update", old, obj)
        for key in [k for k in self.store.keys() if k not in seen]:
            old = self.store.remove(key)
            if old is not None:
                self._notify("delete", old)  # client-go would wrap it as DeletedFinalStateUnknown
        self.last_resource_version = rv
        self._synced.set()

    def _apply(self, etype: str, obj: dict[str, Any]) -> None:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if etype == "BOOKMARK":
            if rv:
                self.last_resource_version = str(rv)
            return
        self.stats["events"] += 1
        if etype in ("ADDED", "MODIFIED"):
            old = self.store.put(obj)
            if old is None:
                self._notify("add", obj)
            else:
                self._notify("update", old, obj)
        elif etype == "DELETED":
            self.store.remove(self.store.key_func(obj))
            self._notify("delete", obj)
        if rv:
            self.last_resource_version = str(rv)

    def _keep_response(self, resp: Any) -> None:
        self._resp = resp

    async def _run(self) -> None:
        backoff = 0.1
        need_list = True
        while not self._stopped:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                self.stats["watches"] += 1
                # Randomised like client-go (timeout in [watch_timeout, 2*watch_timeout)) so that
                # informers of many components don't all re-watch at the same moment.
                timeout = int(self.watch_timeout * (1 + random.random())) if self.watch_timeout else None
                got_event = False
                started = self.clock.now()
                async for ev in self.client.watch(
                    self.resource,
                    self.namespace,
                    all_namespaces=self.namespace is None,
                    resource_version=self.last_resource_version,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    allow_bookmarks=True,
                    timeout_seconds=timeout,
                    on_response=self._keep_response,
                ):
                    self._apply(ev.type, ev.object)
                    if not got_event:
                        got_event = True
                        backoff = 0.1
                self._resp = None
                if got_event or self.clock.now() - started > 1.0:
                    backoff = 0.1
                    continue  # normal end of a watch (server timeout): re-watch at once
                # A watch that ended at once without an event: don't spin.
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                self._resp = None
                if exc.gone:
                    self.stats["relists_gone"] += 1
                    log.info("%s: %s; re-listing", self.name, exc.message)
                    need_list = True
                    continue
                self.stats["watch_errors"] += 1
                if not isinstance(exc, Unavailable):
                    log.warning("%s: %s", self.name, exc)
            except (WatchDisconnected, OSError, asyncio.TimeoutError) as exc:
                self._resp = None
                self.stats["watch_errors"] += 1
                log.debug("%s: watch broke (%r); resuming from %s", self.name, exc, self.last_resource_version)
            except Exception:  # noqa: BLE001 - the informer must outlive any surprise
                self._resp = None
                self.stats["watch_errors"] += 1
                log.exception("%s: unexpected error", self.name)
            await self.clock.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(backoff * 2, 10.0)

    async def _resync_loop(self) -> None:
        while True:
            await self.clock.sleep(self.resync_period)
            if not self._synced.is_set():
                continue
            self.stats["resyncs"] += 1
            for obj in self.store.list():
                self._notify("update", obj, obj)


def deep_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """Copy a cached object before changing it."""
    return copy.deepcopy(obj)
