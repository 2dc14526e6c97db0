"""Generic REST semantics over ``Store``: get, list, create, update, patch, delete.

This is kube-apiserver's ``registry/generic`` in small: decoding against the
schema (unknown fields per fieldValidation, type errors -> 400), the create
and update strategies (server-set metadata, status vs. spec, generation,
defaults, validation -> 422), admission (namespace exists and is not
terminating), optimistic concurrency (a stale ``resourceVersion`` -> 409;
without one, a lost compare is retried on fresh data), graceful deletion,
finalizers and propagation policy, service ClusterIP/NodePort allocation,
the ``binding``, ``scale``, ``finalize`` and ``eviction`` subresources, and
list pagination with opaque continue tokens.

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

import base64
import copy
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from raftstore.client import prefix_end

from . import errors, patch as patchlib, schema
from .errors import APIError
from .resources import ResourceDef, by_plural
from ..api.timestamps import rfc3339
from .selector import FieldSelector, LabelSelector, from_label_selector_object
from .storage import Store, decode, decode_kv
from .strategies import build as build_strategies
from .strategy import Settings, Strategy
from .validation import validate_scale
from .watch import WEvent

ObjectCheck = Callable[[dict[str, Any] | None, dict[str, Any] | None], None] | None
MAX_RETRIES = 20
MAX_LATEST_KEYS = 100_000   # the update fast path's cache of latest values (oldest entries dropped first)
GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    force: bool = False
    duplicates: list[str] = field(default_factory=list)  # duplicate JSON fields seen while parsing the body
    warnings: list[str] = field(default_factory=list)  # out: Warning headers to send


def _dump(o: Any) -> str:
    return json.dumps(o, sort_keys=True, separators=(",", ":"))


class Registry:
    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        self.store = store
        self.strategies = build_strategies(settings or Settings())
        self.namespaces: dict[str, dict[str, Any]] = {}
        self._leases: dict[int, tuple[int, float]] = {}   # ttl -> (lease id, when granted)
        self.latest: dict[str, tuple[int, bytes]] = {}   # key -> (mod_revision, value), as the hub saw it
        self.update_stats = {"cached_first_try": 0, "cached_stale": 0}

    def strategy(self, rdef: ResourceDef) -> Strategy:
        return self.strategies[rdef.group_resource]

    # ------------------------------------------------------------ caches

    def on_event(self, ev: WEvent) -> None:
        """Watch-hub listener: keeps the namespace cache and the latest-value cache current."""
        latest = self.latest
        if ev.type == "DELETE" or ev.value is None:
            latest.pop(ev.key, None)
        else:
            latest.pop(ev.key, None)  # re-insert at the end: the dict's order is the eviction order
            latest[ev.key] = (ev.revision, ev.value)
            if len(latest) > MAX_LATEST_KEYS:
                del latest[next(iter(latest))]
        if not ev.key.startswith("/registry/namespaces/"):
            return
        name = ev.key.rsplit("/", 1)[1]
        if ev.type == "DELETE":
            self.namespaces.pop(name, None)
        else:
            obj = ev.obj()
            if obj is not None:
                self.namespaces[name] = obj

    async def _namespace(self, name: str) -> dict[str, Any] | None:
        ns = self.namespaces.get(name)
        if ns is not None and not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return ns
        kv = await self.store.get(f"/registry/namespaces/{name}")
        return decode_kv(kv) if kv is not None else None

    # ----------------------------------------------------------- decoding

    def decode_body(self, rdef: ResourceDef, body: Any, opts: WriteOptions, *, type_name: str | None = None,
                    kind: str | None = None, api_version: str | None = None) -> tuple[dict[str, Any], list[errors.Cause]]:
        """Check kind/apiVersion, drop unknown fields (per fieldValidation), reject type errors."""
        kind = kind or rdef.kind
        api_version = api_version or rdef.api_version
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request must be a JSON object, got {type(body).__name__}")
        bkind, bav = body.get("kind"), body.get("apiVersion")
        if bkind not in (None, "") and bkind != kind:
            raise errors.bad_request(f'{bkind} in version "{api_version.split("/")[-1]}" cannot be handled as a '
                                     f"{kind}: the object kind ({bkind}) does not match the resource kind ({kind})")
        if bav not in (None, "") and bav != api_version:
            raise errors.bad_request(f"the API version in the data ({bav}) does not match the expected API version "
                                     f"({api_version})")
        dec = schema.decode(body, type_name or rdef.schema, check_required=False)
        if dec.type_errors:
            raise errors.bad_request(f'{kind} in version "{api_version.split("/")[-1]}" cannot be handled as a '
                                     f"{kind}: json: {dec.type_errors[0]}")
        problems = [f'unknown field "{u}"' for u in dec.unknown] + [f'duplicate field "{d}"' for d in opts.duplicates]
        if problems:
            if opts.field_validation == "Strict":
                raise errors.bad_request("strict decoding error: " + ", ".join(problems))
            if opts.field_validation == "Warn":
                opts.warnings.extend(problems)
        obj = dec.obj
        obj["kind"] = kind
        obj["apiVersion"] = api_version
        obj.setdefault("metadata", {})
        return obj, dec.causes

    def _invalid(self, rdef: ResourceDef, obj: dict[str, Any], causes: list[errors.Cause],
                 kind: str | None = None, group: str | None = None) -> APIError:
        seen: set[tuple[str, str]] = set()
        uniq = []
        for c in causes:
            if (c.field, c.reason) not in seen:
                seen.add((c.field, c.reason))
                uniq.append(c)
        name = (obj.get("metadata") or {}).get("name") or ""
        return errors.invalid_object(kind or rdef.kind, rdef.group if group is None else group, name, uniq)

    def _validate(self, rdef: ResourceDef, obj: dict[str, Any], old: dict[str, Any] | None,
                  extra: list[errors.Cause], *, status: bool = False) -> None:
        causes = list(extra)
        req = schema.decode(obj, rdef.schema, check_required=True)
        causes += [c for c in req.causes if c.reason == "FieldValueRequired"]
        strategy = self.strategy(rdef)
        if old is None:
            causes += strategy.validate(obj)
        elif status:
            causes += strategy.validate_status_update(obj, old)
        else:
            causes += strategy.validate_update(obj, old)
        if causes:
            raise self._invalid(rdef, obj, causes)

    # ------------------------------------------------------------- reads

    async def get(self, rdef: ResourceDef, ns: str | None, name: str) -> dict[str, Any]:
        kv = await self.store.get(rdef.key(ns, name))
        if kv is None:
            raise errors.not_found(rdef.plural, rdef.group, name)
        return decode_kv(kv)

    async def list(self, rdef: ResourceDef, ns: str | None, lsel: LabelSelector, fsel: FieldSelector, *,
                   limit: int = 0, cont: str | None = None, rv: str | None = None,
                   rv_match: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        prefix = rdef.key_prefix(ns)
        end = prefix_end(prefix.encode())
        revision = 0
        start = prefix
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
                revision = int(tok["rv"])
                start = prefix + tok["start"]
                if tok.get("v") != "meta.k8s.io/v1":
                    raise ValueError("version")
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                         "(version meta.k8s.io/v1)") from None
        elif rv_match == "Exact":
            if not rv or not rv.isdigit():
                raise errors.bad_request("resourceVersionMatch=Exact requires a resourceVersion")
            revision = int(rv)
        # A single named object: one key read.
        name = fsel.exact("metadata.name")
        if name is not None and (ns or not rdef.namespaced) and not limit:
            res = await self.store.range(rdef.key(ns, name), b"", revision=revision)
            items = [decode_kv(kv) for kv in res.kvs]
            items = [o for o in items if lsel.matches((o.get("metadata") or {}).get("labels"))
                     and fsel.matches(o)]
            return items, {"resourceVersion": str(revision or res.revision)}
        filtering = not lsel.empty or not fsel.empty
        items: list[dict[str, Any]] = []
        remaining: int | None = None
        next_start: str | None = None
        try:
            while True:
                batch = 0 if not limit else (max(limit, 500) if filtering else limit)
                res = await self.store.range(start, end, revision=revision, limit=batch)
                if not revision:
                    revision = res.revision
                for i, kv in enumerate(res.kvs):
                    obj = decode_kv(kv)
                    if filtering and not (lsel.matches((obj.get("metadata") or {}).get("labels"))
                                          and fsel.matches(obj)):
                        continue
                    items.append(obj)
                    if limit and len(items) >= limit:
                        more_here = i < len(res.kvs) - 1 or res.more
                        if more_here:
                            next_start = kv.key.decode() + "\x00"
                            if not filtering:
                                remaining = res.count - (i + 1)
                        break
                else:
                    if res.more and res.kvs:
                        start = res.kvs[-1].key.decode() + "\x00"
                        if not limit or len(items) < limit:
                            continue
                    break
                break
        except APIError as e:
            if e.code == 410 and cont:
                raise errors.gone("The provided continue parameter is too old to display a consistent list "
                                  "result. You can start a new list without the continue parameter.") from None
            raise
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if next_start is not None:
            tok = {"v": "meta.k8s.io/v1", "rv": revision, "start": next_start[len(prefix):]}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(tok, separators=(",", ":")).encode()).decode()
            if remaining is not None:
                meta["remainingItemCount"] = remaining
        return items, meta

    # ------------------------------------------------------------ create

    async def create(self, rdef: ResourceDef, ns: str | None, body: Any, opts: WriteOptions,
                     check: ObjectCheck = None, *, decoded: tuple[dict[str, Any], list[errors.Cause]] | None = None,
                     managed: dict[str, Any] | None = None) -> dict[str, Any]:
        obj, causes = decoded if decoded is not None else self.decode_body(rdef, body, opts)
        md = obj["metadata"]
        if rdef.namespaced:
            bns = md.get("namespace")
            if bns and ns and bns != ns:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                         "on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if md.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        generated = not md.get("name") and bool(md.get("generateName"))
        self._prepare_create(rdef, obj)
        if managed is not None:
            md["managedFields"] = [managed]
        self._validate(rdef, obj, None, causes)
        if check is not None:
            check(None, obj)
        if rdef.namespaced and ns:
            nso = await self._namespace(ns)
            if nso is None:
                raise errors.not_found("namespaces", "", ns)
            if (nso.get("metadata") or {}).get("deletionTimestamp"):
                raise errors.forbidden(f'{rdef.plural} "{md.get("name")}" is forbidden: unable to create new '
                                       f"content in namespace {ns} because it is being terminated",
                                       rdef.plural, rdef.group, md.get("name", ""))
        strategy = self.strategy(rdef)
        for attempt in range(MAX_RETRIES):
            claims = strategy.reserve(obj, None, attempt)
            lease = 0
            if strategy.ttl_seconds and not opts.dry_run:
                lease = await self._lease(strategy.ttl_seconds)
            if opts.dry_run:
                return obj
            res = await self.store.create(rdef.key(ns, md["name"]), obj, extra_absent=[k for k, _ in claims],
                                          extra_puts=claims, lease=lease)
            if res.succeeded:
                md["resourceVersion"] = str(res.revision)
                return obj
            if res.current is not None:
                if generated:
                    md["name"] = md["generateName"] + "".join(random.choice(GENERATE_CHARS) for _ in range(5))
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

    def _prepare_create(self, rdef: ResourceDef, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        for f in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "selfLink"):
            md.pop(f, None)
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + "".join(random.choice(GENERATE_CHARS) for _ in range(5))
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = rfc3339()
        strategy = self.strategy(rdef)
        if strategy.has_generation:
            md["generation"] = 1
        strategy.default(obj)
        if rdef.has_status:
            status = strategy.initial_status(obj)
            if status is not None:
                obj["status"] = status
        strategy.prepare_for_create(obj)

    # ------------------------------------------------------------ update

    def _prepare_update(self, rdef: ResourceDef, new: dict[str, Any], old: dict[str, Any],
                        subresource: str | None) -> dict[str, Any]:
        strategy = self.strategy(rdef)
        if subresource is not None:
            out = strategy.prepare_for_subresource_update(subresource, new, old)
            if out is not None:
                return out
        md = new.setdefault("metadata", {})
        omd = old.get("metadata") or {}
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                  "namespace", "name"):
            if f in omd:
                md[f] = omd[f]
            else:
                md.pop(f, None)
        md.pop("selfLink", None)
        if "managedFields" not in md and "managedFields" in omd:
            md["managedFields"] = omd["managedFields"]
        strategy.default(new)
        if rdef.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        strategy.prepare_for_update(new, old)
        if omd.get("deletionTimestamp"):
            added = set(md.get("finalizers") or []) - set(omd.get("finalizers") or [])
            if added:
                raise errors.invalid_object(rdef.kind, rdef.group, omd.get("name", ""), [errors.forbidden_field(
                    "metadata.finalizers", "no new finalizers can be added if the object is being deleted, found "
                                           f"new finalizers {sorted(added)!r}")])
        return new

    def _bump_generation(self, rdef: ResourceDef, new: dict[str, Any], old: dict[str, Any]) -> None:
        if not self.strategy(rdef).has_generation:
            return
        gen = (old.get("metadata") or {}).get("generation") or 1
        if _dump(new.get("spec")) != _dump(old.get("spec")):
            gen += 1
        new["metadata"]["generation"] = gen

    def _should_delete(self, rdef: ResourceDef, obj: dict[str, Any]) -> bool:
        md = obj.get("metadata") or {}
        if not md.get("deletionTimestamp") or md.get("finalizers"):
            return False
        return self.strategy(rdef).ready_to_delete(obj)

    async def guaranteed_update(self, rdef: ResourceDef, ns: str | None, name: str,
                                mutate: Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]],
                                opts: WriteOptions, *, check: ObjectCheck = None, precondition: bool = False,
                                create: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> dict[str, Any]:
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
            if _dump(new) == _dump(old):
                if cached:
                    continue  # "nothing to do" must be judged against the current object
                return old
            if opts.dry_run:
                return new
            claims = strategy.reserve(new, old, 0)
            releases = strategy.release(old, new)
            if self._should_delete(rdef, new):
                res = await self.store.delete(key, mod_revision, extra_deletes=strategy.release(old, None))
                if res.succeeded:
                    return new
            else:
                res = await self.store.update(key, new, mod_revision, extra_absent=[k for k, _ in claims],
                                              extra_puts=claims, extra_deletes=releases)
                if res.succeeded:
                    new["metadata"]["resourceVersion"] = str(res.revision)
                    return new
            if cached:
                self.update_stats["cached_stale"] += 1
                continue
            if precondition:
                raise errors.conflict(rdef.plural, rdef.group, name)
        raise errors.conflict(rdef.plural, rdef.group, name, "too many concurrent updates; please retry")

    async def update(self, rdef: ResourceDef, ns: str | None, name: str, body: Any, opts: WriteOptions,
                     check: ObjectCheck = None, subresource: str | None = None) -> tuple[dict[str, Any], bool]:
        """PUT. Returns (object, created)."""
        new_in, causes = self.decode_body(rdef, body, opts)
        md = new_in["metadata"]
        if md.get("name") and md["name"] != name:
            raise errors.bad_request(f"the name of the object ({md['name']}) does not match the name on the URL "
                                     f"({name})")
        if rdef.namespaced and md.get("namespace") and md["namespace"] != ns:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the "
                                     "request")
        rv = md.get("resourceVersion")
        created = False

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rdef.plural, rdef.group, name)
            new = self._prepare_update(rdef, copy.deepcopy(new_in), old, subresource)
            self._bump_generation(rdef, new, old)
            self._validate(rdef, new, old, causes, status=subresource == "status")
            return new

        create = None
        if self.strategy(rdef).create_on_update and not subresource and not rv:
            async def create_fn() -> dict[str, Any]:
                nonlocal created
                created = True
                md.setdefault("name", name)
                return await self.create(rdef, ns, None, opts, check, decoded=(copy.deepcopy(new_in), causes))
            create = create_fn
        obj = await self.guaranteed_update(rdef, ns, name, mutate, opts, check=check, precondition=bool(rv),
                                           create=create)
        return obj, created

    # ------------------------------------------------------------- patch

    def apply_patch(self, rdef: ResourceDef, current: dict[str, Any], ptype: str, body: Any,
                    type_name: str | None = None) -> dict[str, Any]:
        try:
            if ptype == "json":
                out = patchlib.json_patch(current, body)
            elif ptype == "merge":
                if not isinstance(body, dict):
                    raise patchlib.PatchError("a merge patch must be a JSON object")
                out = patchlib.merge_patch(current, body)
            else:  # strategic or apply
                out = patchlib.strategic_merge_patch(current, body, type_name or rdef.schema)
        except patchlib.TestFailed as exc:
            raise errors.APIError(422, "Invalid", str(exc)) from None
        except patchlib.PatchError as exc:
            raise errors.APIError(422, "Invalid", f"the server rejected our request due to an error in our "
                                                  f"request: {exc}") from None
        if not isinstance(out, dict):
            raise errors.bad_request("the patch did not produce a JSON object")
        return out

    async def patch(self, rdef: ResourceDef, ns: str | None, name: str, ptype: str, body: Any, opts: WriteOptions,
                    check: ObjectCheck = None, subresource: str | None = None) -> tuple[dict[str, Any], bool]:
        """PATCH (json / merge / strategic / apply). Returns (object, created)."""
        if ptype == "apply":
            return await self._apply(rdef, ns, name, body, opts, check, subresource)
        precondition = False

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            nonlocal precondition
            patched = self.apply_patch(rdef, old, ptype, body)
            new_in, causes = self.decode_body(rdef, patched, opts)
            rv = new_in["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                precondition = True
                raise errors.conflict(rdef.plural, rdef.group, name)
            if rv and isinstance(body, dict) and "resourceVersion" in (body.get("metadata") or {}):
                precondition = True
            if new_in["metadata"].get("name") not in (None, name):
                raise errors.bad_request(f"the name of the object ({new_in['metadata']['name']}) does not match "
                                         f"the name on the URL ({name})")
            new = self._prepare_update(rdef, new_in, old, subresource)
            self._bump_generation(rdef, new, old)
            self._validate(rdef, new, old, causes, status=subresource == "status")
            return new

        pinned = isinstance(body, dict) and bool((body.get("metadata") or {}).get("resourceVersion"))
        obj = await self.guaranteed_update(rdef, ns, name, mutate, opts, check=check, precondition=pinned)
        return obj, False

    async def _apply(self, rdef: ResourceDef, ns: str | None, name: str, body: Any, opts: WriteOptions,
                     check: ObjectCheck, subresource: str | None) -> tuple[dict[str, Any], bool]:
        if not opts.field_manager:
            raise errors.invalid_object("PatchOptions", "meta.k8s.io", "", [errors.required(
                "fieldManager", "is required for apply patch")])
        if not isinstance(body, dict):
            raise errors.bad_request("an apply patch must be a YAML or JSON object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise errors.bad_request("invalid object type: apiVersion and kind are required in an apply "
                                     "configuration")
        bmd = body.get("metadata") or {}
        if bmd.get("name") not in (None, name):
            raise errors.bad_request(f"the name of the object ({bmd.get('name')}) does not match the name on the "
                                     f"URL ({name})")
        config, causes = self.decode_body(rdef, copy.deepcopy(body), opts)
        config["metadata"]["name"] = name
        managed = {"manager": opts.field_manager, "operation": "Apply", "apiVersion": rdef.api_version,
                   "time": rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields_v1(config, rdef.schema)}
        if subresource:
            managed["subresource"] = subresource
        created = False

        async def create_fn() -> dict[str, Any]:
            nonlocal created
            if subresource:
                raise errors.not_found(rdef.plural, rdef.group, name)
            created = True
            return await self.create(rdef, ns, None, opts, check, decoded=(copy.deepcopy(config), causes),
                                     managed=managed)

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            cfg = copy.deepcopy(config)
            rv = cfg["metadata"].pop("resourceVersion", None)
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rdef.plural, rdef.group, name)
            prev = _managed_entry(old, opts.field_manager)
            merged = self.apply_patch(rdef, old, "strategic", cfg)
            if prev is not None:
                _remove_unowned(merged, prev.get("fieldsV1") or {}, managed["fieldsV1"], _other_apply_sets(
                    old, opts.field_manager), rdef.schema)
            entries = [e for e in (old.get("metadata") or {}).get("managedFields") or []
                       if not (e.get("manager") == opts.field_manager and e.get("operation") == "Apply")]
            merged.setdefault("metadata", {})["managedFields"] = entries + [managed]
            new = self._prepare_update(rdef, merged, old, subresource)
            self._bump_generation(rdef, new, old)
            self._validate(rdef, new, old, causes, status=subresource == "status")
            return new

        obj = await self.guaranteed_update(rdef, ns, name, mutate, opts, check=check,
                                           precondition=bool(bmd.get("resourceVersion")), create=create_fn)
        return obj, created

    # ------------------------------------------------------------ delete

    async def delete(self, rdef: ResourceDef, ns: str | None, name: str, options: dict[str, Any],
                     opts: WriteOptions, check: ObjectCheck = None) -> tuple[dict[str, Any], bool]:
        """DELETE. Returns (object, deleted_now)."""
        key = rdef.key(ns, name)
        strategy = self.strategy(rdef)
        strategy.check_delete(name)
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid_object("DeleteOptions", "meta.k8s.io", "", [errors.unsupported(
                "propagationPolicy", policy, ["Foreground", "Background", "Orphan"])])
        grace_opt = options.get("gracePeriodSeconds")
        if grace_opt is not None and (not isinstance(grace_opt, int) or isinstance(grace_opt, bool)):
            raise errors.bad_request("gracePeriodSeconds must be an integer")
        pre = options.get("preconditions") or {}
        for _ in range(MAX_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise errors.not_found(rdef.plural, rdef.group, name)
            obj = decode_kv(kv)
            md = obj["metadata"]
            if check is not None:
                check(obj, None)
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise errors.conflict(rdef.plural, rdef.group, name,
                                      f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                                      f"{md.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
                raise errors.conflict(rdef.plural, rdef.group, name,
                                      f"Precondition failed: ResourceVersion in precondition: "
                                      f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                      f"{md.get('resourceVersion')}")
            grace = strategy.grace_period(obj, grace_opt)
            fins = list(md.get("finalizers") or [])
            new_fins = list(fins)
            if policy == "Orphan":
                new_fins = [f for f in new_fins if f != "foregroundDeletion"]
                if "orphan" not in new_fins:
                    new_fins.append("orphan")
            elif policy == "Foreground":
                new_fins = [f for f in new_fins if f != "orphan"]
                if "foregroundDeletion" not in new_fins:
                    new_fins.append("foregroundDeletion")
            elif policy == "Background":
                new_fins = [f for f in new_fins if f not in ("orphan", "foregroundDeletion")]
            blocked = strategy.deletion_blocked(obj)
            pending = bool(new_fins) or grace > 0 or blocked
            if pending:
                new = copy.deepcopy(obj)
                nmd = new["metadata"]
                if not md.get("deletionTimestamp"):
                    nmd["deletionTimestamp"] = rfc3339(time.time() + grace)
                    nmd["deletionGracePeriodSeconds"] = grace
                    if strategy.has_generation:
                        nmd["generation"] = (md.get("generation") or 1) + 1
                elif grace < (md.get("deletionGracePeriodSeconds") or 0):
                    nmd["deletionTimestamp"] = rfc3339(time.time() + grace)
                    nmd["deletionGracePeriodSeconds"] = grace
                if new_fins:
                    nmd["finalizers"] = new_fins
                else:
                    nmd.pop("finalizers", None)
                strategy.prepare_for_delete(new)
                if not self._should_delete(rdef, new) or blocked:
                    if _dump(new) == _dump(obj) or opts.dry_run:
                        return new, False
                    res = await self.store.update(key, new, kv.mod_revision)
                    if res.succeeded:
                        nmd["resourceVersion"] = str(res.revision)
                        return new, False
                    continue
            if opts.dry_run:
                return obj, True
            res = await self.store.delete(key, kv.mod_revision, extra_deletes=strategy.release(obj, None))
            if res.succeeded:
                md["resourceVersion"] = str(res.revision)
                return obj, True
        raise errors.conflict(rdef.plural, rdef.group, name, "too many concurrent updates; please retry")

    # ------------------------------------------------------ subresources

    async def bind(self, ns: str, name: str, body: Any, opts: WriteOptions, check: ObjectCheck) -> None:
        pods = by_plural("pods")
        assert pods is not None
        if not isinstance(body, dict):
            raise errors.bad_request("a Binding must be a JSON object")
        if body.get("kind") not in (None, "", "Binding"):
            raise errors.bad_request(f"expected a Binding, got {body.get('kind')}")
        bname = (body.get("metadata") or {}).get("name")
        if bname and bname != name:
            raise errors.bad_request(f"the name of the object ({bname}) does not match the name on the URL ({name})")
        target = body.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid_object("Binding", "", name, [errors.required("target.name")])
        if target.get("kind") not in (None, "", "Node"):
            raise errors.invalid_object("Binding", "", name, [errors.invalid("target.kind", target.get("kind"),
                                                                              "must be empty or 'Node'")])

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            spec = old.setdefault("spec", {})
            if (old.get("metadata") or {}).get("deletionTimestamp"):
                raise errors.conflict("pods", "", name, f"pod {name} is being deleted, cannot be assigned to a host")
            if spec.get("nodeName"):
                raise errors.conflict("pods", "", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            uid = ((body.get("metadata") or {}).get("uid"))
            if uid and uid != old["metadata"].get("uid"):
                raise errors.conflict("pods", "", name, "the UID in the binding does not match the pod")
            spec["nodeName"] = node
            st = old.setdefault("status", {})
            conds = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": rfc3339()})
            conds[-1].pop("lastProbeTime")
            st["conditions"] = conds
            return old

        await self.guaranteed_update(pods, ns, name, mutate, opts, check=check)

    def scale_of(self, rdef: ResourceDef, obj: dict[str, Any]) -> dict[str, Any]:
        md = obj.get("metadata") or {}
        sel = (obj.get("spec") or {}).get("selector")
        try:
            selector = str(from_label_selector_object(sel))
        except APIError:
            selector = ""
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in md},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector},
        }

    async def update_scale(self, rdef: ResourceDef, ns: str, name: str, opts: WriteOptions,
                           make_scale: Callable[[dict[str, Any]], dict[str, Any]], pinned: bool) -> dict[str, Any]:
        """Apply ``make_scale(current_scale) -> new_scale`` to the owner's spec.replicas."""

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            orig = copy.deepcopy(old)
            new_scale = make_scale(self.scale_of(rdef, old))
            if not isinstance(new_scale, dict):
                raise errors.bad_request("a Scale must be a JSON object")
            if new_scale.get("kind") not in (None, "", "Scale"):
                raise errors.bad_request(f'{new_scale.get("kind")} in version "v1" cannot be handled as a Scale')
            dec = schema.decode(new_scale, "V1Scale", check_required=False)
            if dec.type_errors:
                raise errors.bad_request(f'Scale in version "v1" cannot be handled as a Scale: json: '
                                         f"{dec.type_errors[0]}")
            new_scale = dec.obj
            rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rdef.plural, rdef.group, name)
            causes = validate_scale(new_scale)
            if causes:
                raise errors.invalid_object("Scale", "autoscaling", name, causes)
            old.setdefault("spec", {})["replicas"] = (new_scale.get("spec") or {}).get("replicas", 0)
            self._bump_generation(rdef, old, orig)
            return old

        obj = await self.guaranteed_update(rdef, ns, name, mutate, opts, precondition=pinned)
        return self.scale_of(rdef, obj)


# ------------------------------------------------------ server-side apply

def fields_v1(obj: Any, tname: str | None, top: bool = True) -> dict[str, Any]:
    """The FieldsV1 set of an applied configuration (maps ``f:``, keyed list items ``k:``, set items ``v:``)."""
    out: dict[str, Any] = {}
    if not isinstance(obj, dict):
        return out
    for k, v in obj.items():
        if top and k in ("apiVersion", "kind"):
            continue
        if tname == "V1ObjectMeta" and k not in ("labels", "annotations", "finalizers", "ownerReferences"):
            continue
        ft = patchlib.field_type(tname, k)
        if isinstance(v, dict):
            if isinstance(ft, list) and ft[0] == "map":
                sub = ft[1] if isinstance(ft[1], str) else None
                out[f"f:{k}"] = {f"f:{mk}": fields_v1(mv, sub, False) if isinstance(mv, dict) else {}
                                 for mk, mv in v.items()}
            else:
                out[f"f:{k}"] = fields_v1(v, ft if isinstance(ft, str) else None, False)
        elif isinstance(v, list):
            strategy, key, elem = patchlib.list_strategy(tname, k)
            if strategy == "merge" and key:
                out[f"f:{k}"] = {_item_key(key, item): fields_v1(item, elem if isinstance(elem, str) else None, False)
                                 for item in v if isinstance(item, dict) and key in item}
            elif strategy == "set":
                out[f"f:{k}"] = {f"v:{json.dumps(x)}": {} for x in v}
            else:
                out[f"f:{k}"] = {}
        else:
            out[f"f:{k}"] = {}
    return out


def _item_key(key: str, item: Any) -> str:
    return f"k:{json.dumps({key: item.get(key)}, separators=(',', ':'))}" if isinstance(item, dict) else ""


def _managed_entry(obj: dict[str, Any], manager: str | None) -> dict[str, Any] | None:
    for e in (obj.get("metadata") or {}).get("managedFields") or []:
        if e.get("manager") == manager and e.get("operation") == "Apply":
            return e
    return None


def _other_apply_sets(obj: dict[str, Any], manager: str | None) -> list[dict[str, Any]]:
    return [e.get("fieldsV1") or {} for e in (obj.get("metadata") or {}).get("managedFields") or []
            if e.get("operation") == "Apply" and e.get("manager") != manager]


def _remove_unowned(obj: Any, old: dict[str, Any], new: dict[str, Any], others: list[dict[str, Any]],
                    tname: str | None) -> None:
    """Remove fields this manager applied before but no longer applies (and no other applier owns)."""
    if not isinstance(obj, dict):
        return
    for fk, sub in old.items():
        if not fk.startswith("f:"):
            continue
        name = fk[2:]
        others_sub = [o[fk] for o in others if isinstance(o, dict) and isinstance(o.get(fk), dict)]
        owned_elsewhere = any(isinstance(o, dict) and fk in o for o in others)
        if fk not in new:
            if not owned_elsewhere and name in obj:
                del obj[name]
            continue
        cur = obj.get(name)
        newsub = new[fk] if isinstance(new[fk], dict) else {}
        ft = patchlib.field_type(tname, name)
        if isinstance(cur, dict) and isinstance(sub, dict) and sub:
            if isinstance(ft, list) and ft[0] == "map":
                for mk in list(cur):
                    mfk = f"f:{mk}"
                    if mfk in sub and mfk not in newsub and not any(mfk in o for o in others_sub):
                        del cur[mk]
            else:
                _remove_unowned(cur, sub, newsub, others_sub, ft if isinstance(ft, str) else None)
        elif isinstance(cur, list) and isinstance(sub, dict) and sub:
            strategy, key, elem = patchlib.list_strategy(tname, name)
            if strategy == "merge" and key:
                keep = []
                for item in cur:
                    ik = _item_key(key, item)
                    if ik in sub and ik not in newsub and not any(ik in o for o in others_sub):
                        continue
                    if ik in sub and ik in newsub and isinstance(item, dict):
                        _remove_unowned(item, sub[ik], newsub[ik], [o[ik] for o in others_sub if ik in o],
                                        elem if isinstance(elem, str) else None)
                    keep.append(item)
                obj[name] = keep
            elif strategy == "set":
                obj[name] = [x for x in cur if not (f"v:{json.dumps(x)}" in sub and f"v:{json.dumps(x)}" not in newsub
                                                    and not any(f"v:{json.dumps(x)}" in o for o in others_sub))]
