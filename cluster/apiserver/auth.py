"""Bearer-token authentication and authorisation.

Tokens file (JSON)::

    {"<token>": {"user": "admin", "groups": ["system:masters"]}, ...}

``generate_tokens(node_names)`` makes one: an admin (``system:masters``),
a read-only viewer (``raykube:viewers``), the scheduler
(``system:kube-scheduler``), the controller manager
(``system:kube-controller-manager``) and one identity per node
(``system:node:<name>`` in ``system:nodes``).

Authorisation (like RBAC's cluster-admin/view plus the Node authorizer):

- ``system:masters``: everything.
- ``system:kube-scheduler`` / ``system:kube-controller-manager`` (user or
  group): everything (a broad component role; they only write workloads,
  bindings, statuses, events and leases in practice).
- ``raykube:viewers``: get/list/watch on everything except secrets (as
  Kubernetes' ``view`` role) - and no pods/log.
- ``system:nodes`` with user ``system:node:<n>``: read nodes, pods,
  services, endpoints, configmaps, secrets, namespaces, events and leases;
  create/update/patch/delete its own Node (and nodes/status); its own Lease
  in ``kube-node-lease``; update/patch pods/status and delete pods only when
  the pod is bound to it (``spec.nodeName == n``); create pods bound to it
  (mirror pods); create/update/patch events. Object-dependent rules come back
  as an ``object_check`` the handler runs against the stored (and new)
  object.

A denial is a 403 whose message reads like kube-apiserver's:
``pods "p" is forbidden: User "system:node:n1" cannot update resource
"pods/status" in API group "" in the namespace "default": ...``.

Concurrency: the token table is replaced atomically when the file changes
(checked at most once a second); everything else is pure.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import errors

ADMIN_GROUP = "system:masters"
VIEWER_GROUP = "raykube:viewers"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
SCHEDULER = "system:kube-scheduler"
CONTROLLER_MANAGER = "system:kube-controller-manager"
READ_VERBS = frozenset({"get", "list", "watch"})
NODE_READABLE = frozenset(
    {"nodes", "pods", "services", "endpoints", "configmaps", "secrets", "namespaces", "events", "leases"}
)


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()

    @property
    def node_name(self) -> str | None:
        if NODES_GROUP in self.groups and self.name.startswith(NODE_PREFIX):
            return self.name[len(NODE_PREFIX) :]
        return None


@dataclass
class Attributes:
    verb: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    group: str = ""

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


ObjectCheck = Callable[[dict[str, Any] | None, dict[str, Any] | None], None]


@dataclass
class Decision:
    allowed: bool
    reason: str = ""
    object_check: ObjectCheck | None = None


def generate_tokens(node_names: list[str]) -> dict[str, dict[str, Any]]:
    """A tokens table for the launcher: admin, viewer, scheduler, controller manager, one per node."""

    def tok() -> str:
        return secrets.token_urlsafe(32)

    out: dict[str, dict[str, Any]] = {
        tok(): {"user": "admin", "groups": [ADMIN_GROUP, "system:authenticated"]},
        tok(): {"user": "viewer", "groups": [VIEWER_GROUP, "system:authenticated"]},
        tok(): {"user": SCHEDULER, "groups": ["system:authenticated"]},
        tok(): {"user": CONTROLLER_MANAGER, "groups": ["system:authenticated"]},
    }
    for n in node_names:
        out[tok()] = {"user": NODE_PREFIX + n, "groups": [NODES_GROUP, "system:authenticated"]}
    return out


def token_for(tokens: dict[str, dict[str, Any]], user: str) -> str:
    """The token of ``user`` in a tokens table (KeyError if none)."""
    for t, info in tokens.items():
        if info.get("user") == user:
            return t
    raise KeyError(user)


class Authenticator:
    def __init__(self, tokens_file: str | None, tokens: dict[str, dict[str, Any]] | None = None) -> None:
        self.tokens_file = tokens_file
        self._users: dict[str, User] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        if tokens is not None:
            self._set(tokens)
        self._reload(force=True)

    def _set(self, table: dict[str, Any]) -> None:
        users: dict[str, User] = {}
        for token, info in table.items():
            if isinstance(info, str):
                info = {"user": info}
            users[token] = User(str(info.get("user", "")), tuple(info.get("groups") or ()))
        self._users = users

    def _reload(self, force: bool = False) -> None:
        if not self.tokens_file:
            return
        now = time.monotonic()
        if not force and now - self._checked < 1.0:
            return
        self._checked = now
        try:
            mtime = os.stat(self.tokens_file).st_mtime
        except OSError:
            return
        if mtime == self._mtime and not force:
            return
        with open(self.tokens_file) as f:
            self._set(json.load(f))
        self._mtime = mtime

    def authenticate(self, header: str | None) -> User | None:
        if not header:
            return None
        parts = header.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return None
        self._reload()
        return self._users.get(parts[1].strip())


def _deny_message(user: User, a: Attributes, extra: str = "") -> str:
    what = f"{a.resource}{'.' + a.group if a.group else ''}"
    head = f'{what} "{a.name}" is forbidden' if a.name else f"{what} is forbidden"
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    msg = f'{head}: User "{user.name}" cannot {a.verb} resource "{a.full_resource}" in API group "{a.group}" {scope}'
    return msg + (f": {extra}" if extra else "")


def forbidden(user: User, a: Attributes, extra: str = "") -> errors.APIError:
    return errors.forbidden(_deny_message(user, a, extra), a.resource, a.group, a.name)


def authorize(user: User, a: Attributes) -> Decision:
    groups = set(user.groups)
    if ADMIN_GROUP in groups:
        return Decision(True)
    if user.name in (SCHEDULER, CONTROLLER_MANAGER) or groups & {SCHEDULER, CONTROLLER_MANAGER}:
        return Decision(True)
    node = user.node_name
    if node is not None:
        return _authorize_node(user, node, a)
    if VIEWER_GROUP in groups:
        if a.verb in READ_VERBS and a.resource != "secrets" and a.subresource != "log":
            return Decision(True)
        return Decision(False, "")
    return Decision(False, "")


def _authorize_node(user: User, node: str, a: Attributes) -> Decision:
    r, sub, verb = a.resource, a.subresource, a.verb
    if verb in READ_VERBS and r in NODE_READABLE and sub in ("", "status"):
        return Decision(True)
    if r == "nodes" and sub in ("", "status") and verb in ("create", "update", "patch", "delete"):
        if verb == "create":

            def check_create(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
                if new is not None and (new.get("metadata") or {}).get("name") != node:
                    raise forbidden(
                        user,
                        a,
                        f"node '{node}' is not allowed to modify node '{(new.get('metadata') or {}).get('name')}'",
                    )

            return Decision(True, object_check=check_create)
        if a.name == node:
            return Decision(True)
        return Decision(False, f"node '{node}' is not allowed to modify node '{a.name}'")
    if r == "leases" and a.group == "coordination.k8s.io" and a.namespace == "kube-node-lease" and not sub:
        if verb == "create":

            def check_lease(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
                if new is not None and (new.get("metadata") or {}).get("name") != node:
                    raise forbidden(user, a, f"node '{node}' may only create its own lease")

            return Decision(True, object_check=check_lease)
        if verb in ("update", "patch", "delete", "get") and a.name == node:
            return Decision(True)
        return Decision(False, f"node '{node}' may only modify its own lease")
    if r == "pods" and not a.group:
        bound_ops = (
            (sub == "status" and verb in ("update", "patch"))
            or (sub == "" and verb == "delete")
            or (sub == "" and verb == "create")
            or (sub == "eviction" and verb == "create")
        )
        if bound_ops:

            def check_pod(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
                for obj in (old, new):
                    if obj is None:
                        continue
                    bound = (obj.get("spec") or {}).get("nodeName")
                    if bound != node:
                        raise forbidden(
                            user, a, f"node '{node}' can only modify pods bound to it (pod is bound to '{bound or ''}')"
                        )

            return Decision(True, object_check=check_pod)
        return Decision(False, f"node '{node}' cannot {verb} {a.full_resource}")
    if r == "events" and not a.group and verb in ("create", "update", "patch"):
        return Decision(True)
    return Decision(False, "")


@dataclass
class TokenTable:
    """Helper for tests and the launcher: write a tokens file and look identities up."""

    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(self.tokens, f, indent=1)
        os.replace(tmp, path)

    def token(self, user: str) -> str:
        return token_for(self.tokens, user)
