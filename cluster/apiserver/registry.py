"""Generic REST semantics over ``Store``: get, list, create, update, patch, apply, delete.

This is kube-apiserver's ``registry/generic`` store in small. Every kind
goes through the same steps (``lifecycle``: decoding, server-set metadata,
validation, deletion decisions); what is special about a kind comes from its
``Strategy`` (``strategies/<kind>.py``), keys it reserves beside the object
(service addresses) included. Around them the registry does the I/O:
NamespaceLifecycle admission (``admission``), optimistic concurrency (a
stale ``resourceVersion`` -> 409; without one, a lost compare is retried on
fresh data), create-on-update, server-side apply (``managedfields``),
graceful deletion with finalizers and propagation policy, TTLs, and lists
(``listing``). The subresources with endpoints of their own (binding,
eviction, scale) build on ``guaranteed_update`` (``subresources``).

Concurrency: every method is a coroutine on the API server's loop; writes are
compare-and-swap txns (see ``storage.py``). Two caches are fed by the watch
hub and only used as fast paths: the namespaces (a miss falls back to a live
read), and the latest value of every key the hub has seen change, which an
update tries first instead of a linearizable read, as kube-apiserver's
GuaranteedUpdate does with its watch-cache object: the compare on
``mod_revision`` makes a stale guess fail, and then (or when the guess makes
the update a no-op or an error) the update starts over from a live read. It
saves one Raft round per update (binding, status) on the hot path.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Awaitable, Callable

from . import errors
from .admission import NamespaceLifecycle
from .errors import APIError
from .lifecycle import (
    Decoded,
    ObjectCheck,
    apply_patch,
    before_update,
    body_metadata,
    check_preconditions,
    decode_body,
    delete_policy,
    dump,
    finalizers_for_policy,
    generate_name,
    mark_for_deletion,
    prepare_create,
    should_delete,
    validate,
)
from .listing import list_objects
from .managedfields import apply_entry, merge_applied
from .options import WriteOptions
from .resources import ResourceDef
from .selector import FieldSelector, LabelSelector
from .storage import Store, decode, decode_kv
from .strategies import build as build_strategies
from .strategy import Obj, Settings, Strategy
from .watch import WEvent

MAX_RETRIES = 20
MAX_LATEST_KEYS = 100_000  # the update fast path's cache of latest values (oldest entries dropped first)


class Registry:
    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        self.store = store
        settings = settings or Settings()
        self.strategies = build_strategies(settings)
        self.default_strategy = Strategy(settings)  # for a kind with nothing special
        self.namespace_lifecycle = NamespaceLifecycle(store)
        self._leases: dict[int, tuple[int, float]] = {}  # ttl -> (lease id, when granted)
        self.latest: dict[str, tuple[int, bytes]] = {}  # key -> (mod_revision, value), as the hub saw it
        self.update_stats = {"cached_first_try": 0, "cached_stale": 0}

    def strategy(self, rdef: ResourceDef) -> Strategy:
        return self.strategies.get(rdef.group_resource, self.default_strategy)

    def on_event(self, ev: WEvent) -> None:
        """Watch-hub listener: keeps the latest-value cache and the namespace cache current."""
        latest = self.latest
        if ev.type == "DELETE" or ev.value is None:
            latest.pop(ev.key, None)
        else:
            latest.pop(ev.key, None)  # re-insert at the end: the dict's order is the eviction order
            latest[ev.key] = (ev.revision, ev.value)
            if len(latest) > MAX_LATEST_KEYS:
                del latest[next(iter(latest))]
        self.namespace_lifecycle.on_event(ev)

    # ------------------------------------------------------------- reads

    async def get(self, rdef: ResourceDef, ns: str | None, name: str) -> Obj:
        kv = await self.store.get(rdef.key(ns, name))
        if kv is None:
            raise errors.not_found(rdef.plural, rdef.group, name)
        return decode_kv(kv)

    async def list(
        self,
        rdef: ResourceDef,
        ns: str | None,
        lsel: LabelSelector,
        fsel: FieldSelector,
        *,
        limit: int = 0,
        cont: str | None = None,
        rv: str | None = None,
        rv_match: str | None = None,
    ) -> tuple[list[Obj], dict[str, Any]]:
        return await list_objects(self.store, rdef, ns, lsel, fsel, limit=limit, cont=cont, rv=rv, rv_match=rv_match)

    # ------------------------------------------------------------ create

    async def create(
        self,
        rdef: ResourceDef,
        ns: str | None,
        body: Any,
        opts: WriteOptions,
        check: ObjectCheck = None,
        *,
        decoded: Decoded | None = None,
        managed: Obj | None = None,
    ) -> Obj:
        obj, causes = decoded if decoded is not None else decode_body(rdef, body, opts)
        md = obj["metadata"]
        if rdef.namespaced:
            bns = md.get("namespace")
            if bns and ns and bns != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if md.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        generated = not md.get("name") and bool(md.get("generateName"))
        strategy = self.strategy(rdef)
        prepare_create(rdef, strategy, obj)
        if managed is not None:
            md["managedFields"] = [managed]
        validate(rdef, strategy, obj, None, causes)
        if check is not None:
            check(None, obj)
        if rdef.namespaced and ns:
            await self.namespace_lifecycle.admit(rdef, ns, md.get("name"))
        for attempt in range(MAX_RETRIES):
            claims = strategy.reserve(obj, None, attempt)
            lease = 0
            if strategy.ttl_seconds and not opts.dry_run:
                lease = await self._lease(strategy.ttl_seconds)
            if opts.dry_run:
                return obj
            res = await self.store.create(
                rdef.key(ns, md["name"]), obj, extra_absent=[k for k, _ in claims], extra_puts=claims, lease=lease
            )
            if res.succeeded:
                md["resourceVersion"] = str(res.revision)
                return obj
            if res.current is not None:
                if generated:
                    md["name"] = generate_name(md["generateName"])
                    continue
                raise errors.already_exists(rdef.plural, rdef.group, md["name"])
            # a reserved key collided: the strategy picks again
        raise errors.internal(strategy.reservation_exhausted)

    async def _lease(self, ttl: int) -> int:
        # One lease a minute per TTL serves every object created in that minute: each expires between ttl
        # and ttl + 60 seconds after its creation, for one lease grant instead of one per object.
        lid, at = self._leases.get(ttl, (0, 0.0))
        if lid and time.monotonic() - at < 60:
            return lid
        lid = await self.store.lease_grant(ttl + 60)
        self._leases[ttl] = (lid, time.monotonic())
        return lid

    # ------------------------------------------------------------ update

    async def guaranteed_update(
        self,
        rdef: ResourceDef,
        ns: str | None,
        name: str,
        mutate: Callable[[Obj], Awaitable[Obj] | Obj],
        opts: WriteOptions,
        *,
        check: ObjectCheck = None,
        precondition: bool = False,
        create: Callable[[], Awaitable[Obj]] | None = None,
    ) -> Obj:
        """Read, mutate, compare-and-swap; retry on a lost race unless the caller pinned a resourceVersion.

        ``mutate`` gets a private copy of the stored object and returns the new
        one (or raises); it may raise 409 itself for a resourceVersion
        precondition. Returns the stored result (unchanged input = no write).
        """
        key = rdef.key(ns, name)
        strategy = self.strategy(rdef)
        # First try: the value the watch hub saw last (no read). Anything it can't settle on its own - a lost
        # compare, a no-op, an error - is decided again from a live read, so a stale guess costs one retry.
        guess = None if opts.dry_run else self.latest.get(key)
        for _ in range(MAX_RETRIES + (1 if guess is not None else 0)):
            if guess is not None:
                mod_revision, value = guess
                guess = None
                cached = True
                old = decode(value, mod_revision)
                self.update_stats["cached_first_try"] += 1
            else:
                cached = False
                kv = await self.store.get(key)
                if kv is None:
                    if create is not None:
                        return await create()
                    raise errors.not_found(rdef.plural, rdef.group, name)
                mod_revision = kv.mod_revision
                old = decode_kv(kv)
            try:
                new = mutate(copy.deepcopy(old))
                if hasattr(new, "__await__"):
                    new = await new  # type: ignore[misc]
                if check is not None:
                    check(old, new)
            except APIError:
                if cached:
                    self.update_stats["cached_stale"] += 1
                    continue
                raise
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if dump(new) == dump(old):
                if cached:
                    continue  # "nothing to do" must be judged against the current object
                return old
            if opts.dry_run:
                return new
            claims = strategy.reserve(new, old, 0)
            releases = strategy.release(old, new)
            if should_delete(strategy, new):
                res = await self.store.delete(key, mod_revision, extra_deletes=strategy.release(old, None))
                if res.succeeded:
                    return new
            else:
                res = await self.store.update(
                    key,
                    new,
                    mod_revision,
                    extra_absent=[k for k, _ in claims],
                    extra_puts=claims,
                    extra_deletes=releases,
                )
                if res.succeeded:
                    new["metadata"]["resourceVersion"] = str(res.revision)
                    return new
            if cached:
                self.update_stats["cached_stale"] += 1
                continue
            if precondition:
                raise errors.conflict(rdef.plural, rdef.group, name)
        raise errors.conflict(rdef.plural, rdef.group, name, "too many concurrent updates; please retry")

    async def update(
        self,
        rdef: ResourceDef,
        ns: str | None,
        name: str,
        body: Any,
        opts: WriteOptions,
        check: ObjectCheck = None,
        subresource: str | None = None,
    ) -> tuple[Obj, bool]:
        """PUT. Returns (object, created)."""
        new_in, causes = decode_body(rdef, body, opts)
        md = new_in["metadata"]
        if md.get("name") and md["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
            )
        if rdef.namespaced and md.get("namespace") and md["namespace"] != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        rv = md.get("resourceVersion")
        strategy = self.strategy(rdef)
        created = False

        def mutate(old: Obj) -> Obj:
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rdef.plural, rdef.group, name)
            return before_update(rdef, strategy, copy.deepcopy(new_in), old, subresource, causes)

        create = None
        if strategy.create_on_update and not subresource and not rv:

            async def create_fn() -> Obj:
                nonlocal created
                created = True
                md.setdefault("name", name)
                return await self.create(rdef, ns, None, opts, check, decoded=(copy.deepcopy(new_in), causes))

            create = create_fn
        obj = await self.guaranteed_update(
            rdef, ns, name, mutate, opts, check=check, precondition=bool(rv), create=create
        )
        return obj, created

    # ------------------------------------------------------------- patch

    async def patch(
        self,
        rdef: ResourceDef,
        ns: str | None,
        name: str,
        ptype: str,
        body: Any,
        opts: WriteOptions,
        check: ObjectCheck = None,
        subresource: str | None = None,
    ) -> tuple[Obj, bool]:
        """PATCH (json / merge / strategic / apply). Returns (object, created)."""
        if ptype == "apply":
            return await self._apply(rdef, ns, name, body, opts, check, subresource)
        strategy = self.strategy(rdef)

        def mutate(old: Obj) -> Obj:
            patched = apply_patch(old, ptype, body, rdef.schema)
            new_in, causes = decode_body(rdef, patched, opts)
            rv = new_in["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rdef.plural, rdef.group, name)
            if new_in["metadata"].get("name") not in (None, name):
                raise errors.bad_request(
                    f"the name of the object ({new_in['metadata']['name']}) does not match the name on the URL ({name})"
                )
            return before_update(rdef, strategy, new_in, old, subresource, causes)

        pinned = bool(body_metadata(body).get("resourceVersion"))
        obj = await self.guaranteed_update(rdef, ns, name, mutate, opts, check=check, precondition=pinned)
        return obj, False

    async def _apply(
        self,
        rdef: ResourceDef,
        ns: str | None,
        name: str,
        body: Any,
        opts: WriteOptions,
        check: ObjectCheck,
        subresource: str | None,
    ) -> tuple[Obj, bool]:
        if not opts.field_manager:
            raise errors.invalid_object(
                "PatchOptions", "meta.k8s.io", "", [errors.required("fieldManager", "is required for apply patch")]
            )
        if not isinstance(body, dict):
            raise errors.bad_request("an apply patch must be a YAML or JSON object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise errors.bad_request("invalid object type: apiVersion and kind are required in an apply configuration")
        bmd = body_metadata(body)
        if bmd.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({bmd.get('name')}) does not match the name on the URL ({name})"
            )
        config, causes = decode_body(rdef, copy.deepcopy(body), opts)
        config["metadata"]["name"] = name
        managed = apply_entry(opts.field_manager, rdef.api_version, config, rdef.schema, subresource)
        strategy = self.strategy(rdef)
        created = False

        async def create_fn() -> Obj:
            nonlocal created
            if subresource:
                raise errors.not_found(rdef.plural, rdef.group, name)
            created = True
            return await self.create(
                rdef, ns, None, opts, check, decoded=(copy.deepcopy(config), causes), managed=managed
            )

        def mutate(old: Obj) -> Obj:
            cfg = copy.deepcopy(config)
            rv = cfg["metadata"].pop("resourceVersion", None)
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rdef.plural, rdef.group, name)
            merged = merge_applied(old, cfg, managed, opts.field_manager, rdef.schema)
            return before_update(rdef, strategy, merged, old, subresource, causes)

        obj = await self.guaranteed_update(
            rdef, ns, name, mutate, opts, check=check, precondition=bool(bmd.get("resourceVersion")), create=create_fn
        )
        return obj, created

    # ------------------------------------------------------------ delete

    async def delete(
        self,
        rdef: ResourceDef,
        ns: str | None,
        name: str,
        options: dict[str, Any],
        opts: WriteOptions,
        check: ObjectCheck = None,
    ) -> tuple[Obj, bool]:
        """DELETE. Returns (object, deleted_now)."""
        key = rdef.key(ns, name)
        strategy = self.strategy(rdef)
        strategy.check_delete(name)
        policy, grace_opt = delete_policy(options)
        pre = options.get("preconditions") or {}
        for _ in range(MAX_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise errors.not_found(rdef.plural, rdef.group, name)
            obj = decode_kv(kv)
            md = obj["metadata"]
            if check is not None:
                check(obj, None)
            check_preconditions(rdef, name, md, pre)
            grace = strategy.grace_period(obj, grace_opt)
            finalizers = finalizers_for_policy(md.get("finalizers") or [], policy)
            blocked = strategy.deletion_blocked(obj)
            if finalizers or grace > 0 or blocked:
                new = mark_for_deletion(strategy, obj, grace, finalizers)
                if not should_delete(strategy, new) or blocked:
                    if dump(new) == dump(obj) or opts.dry_run:
                        return new, False
                    res = await self.store.update(key, new, kv.mod_revision)
                    if res.succeeded:
                        new["metadata"]["resourceVersion"] = str(res.revision)
                        return new, False
                    continue
            if opts.dry_run:
                return obj, True
            res = await self.store.delete(key, kv.mod_revision, extra_deletes=strategy.release(obj, None))
            if res.succeeded:
                md["resourceVersion"] = str(res.revision)
                return obj, True
        raise errors.conflict(rdef.plural, rdef.group, name, "too many concurrent updates; please retry")
