"""NamespaceLifecycle admission: nothing is created in a namespace that is missing or being deleted.

Concurrency: on the API server's event loop. The namespace cache is fed by
the watch hub (``on_event``) and is only a fast path: a namespace missing
from it, or terminating in it, is read live before a create is refused, so
a namespace created a moment ago on another API server is found.
"""

from __future__ import annotations

from . import errors
from .resources import ResourceDef, served
from .storage import Store, decode_kv
from .strategy import Obj
from .watch import WEvent

NAMESPACES = served("namespaces")


class NamespaceLifecycle:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.namespaces: dict[str, Obj] = {}  # name -> object, as the watch hub last saw it
        self._prefix = NAMESPACES.key_prefix(None)

    def on_event(self, ev: WEvent) -> None:
        """Watch-hub listener: keeps the namespace cache current."""
        if not ev.key.startswith(self._prefix):
            return
        name = ev.key.rsplit("/", 1)[1]
        if ev.type == "DELETE":
            self.namespaces.pop(name, None)
        else:
            obj = ev.obj()
            if obj is not None:
                self.namespaces[name] = obj

    async def get(self, name: str) -> Obj | None:
        ns = self.namespaces.get(name)
        if ns is not None and not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return ns
        kv = await self.store.get(NAMESPACES.key(None, name))
        return decode_kv(kv) if kv is not None else None

    async def admit(self, rdef: ResourceDef, ns: str, name: str | None) -> None:
        """404 if namespace ``ns`` does not exist, 403 if it is terminating."""
        nso = await self.get(ns)
        if nso is None:
            raise errors.not_found("namespaces", "", ns)
        if (nso.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.forbidden(
                f'{rdef.plural} "{name}" is forbidden: unable to create new '
                f"content in namespace {ns} because it is being terminated",
                rdef.plural,
                rdef.group,
                name or "",
            )
