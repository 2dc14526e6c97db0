"""Lists over the store: label/field selector filtering, pagination, continue tokens.

A list reads one consistent revision of a key range; with ``limit`` it reads
in batches (bigger ones when a selector filters) and hands out a continue
token (the revision and the next key, opaque base64 JSON as kube-apiserver's
are) that reads on at the same revision, or 410 once it is compacted away.
A field selector on ``metadata.name`` in one namespace is one key read.

Concurrency: a coroutine per list on the API server's loop; no shared state.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from . import errors
from .errors import APIError
from .resources import ResourceDef
from .selector import FieldSelector, LabelSelector
from .storage import Store, decode_kv, prefix_end

CONTINUE_VERSION = "meta.k8s.io/v1"
MAX_REVISION = 2**63 - 1  # revisions are int64s (in raftstore as in etcd)


def encode_continue(revision: int, start: str) -> str:
    """The continue token of a list at ``revision`` that goes on at key ``start`` (relative to its prefix)."""
    tok = {"v": CONTINUE_VERSION, "rv": revision, "start": start}
    return base64.urlsafe_b64encode(json.dumps(tok, separators=(",", ":")).encode()).decode()


def decode_continue(cont: str, prefix: str) -> tuple[int, str]:
    """(revision, first key) of a continue token (400 if it is not one)."""
    try:
        tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
        revision = int(tok["rv"])
        start = prefix + tok["start"]
        if tok.get("v") != CONTINUE_VERSION or not 0 < revision <= MAX_REVISION:
            raise ValueError("version")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    return revision, start


async def list_objects(
    store: Store,
    rdef: ResourceDef,
    ns: str | None,
    lsel: LabelSelector,
    fsel: FieldSelector,
    *,
    limit: int = 0,
    cont: str | None = None,
    rv: str | None = None,
    rv_match: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(items, list metadata) of ``rdef`` objects in ``ns`` (None: all) that match both selectors."""
    prefix = rdef.key_prefix(ns)
    end = prefix_end(prefix.encode())
    revision = 0
    start = prefix
    if cont:
        revision, start = decode_continue(cont, prefix)
    elif rv_match == "Exact":
        if not rv or len(rv) > 19 or not rv.isascii() or not rv.isdigit() or not 0 < int(rv) <= MAX_REVISION:
            raise errors.bad_request("resourceVersionMatch=Exact requires a resourceVersion")
        revision = int(rv)
    # A single named object: one key read.
    name = fsel.exact("metadata.name")
    if name is not None and (ns or not rdef.namespaced) and not limit:
        res = await store.range(rdef.key(ns, name), b"", revision=revision)
        found = [decode_kv(kv) for kv in res.kvs]
        found = [o for o in found if lsel.matches((o.get("metadata") or {}).get("labels")) and fsel.matches(o)]
        return found, {"resourceVersion": str(revision or res.revision)}
    filtering = not lsel.empty or not fsel.empty
    items: list[dict[str, Any]] = []
    remaining: int | None = None
    next_start: str | None = None
    try:
        while True:
            batch = 0 if not limit else (max(limit, 500) if filtering else limit)
            res = await store.range(start, end, revision=revision, limit=batch)
            if not revision:
                revision = res.revision
            for i, kv in enumerate(res.kvs):
                obj = decode_kv(kv)
                if filtering and not (lsel.matches((obj.get("metadata") or {}).get("labels")) and fsel.matches(obj)):
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
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter."
            ) from None
        raise
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if next_start is not None:
        meta["continue"] = encode_continue(revision, next_start[len(prefix) :])
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    return items, meta
