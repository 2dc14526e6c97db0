"""Who may talk to the cluster: bearer tokens, kubeconfigs, and API clients for any identity.

``tokens.json`` (0600) holds one token per identity: admin, viewer, the scheduler, the controller
manager and one per node; the API server re-reads it (at most once a second), so a node added later
gets its token without a restart. Tokens, once made, are kept across ``down``/``up``.

Imports: the API server's token table, the kubeconfig writer (YAML) and the client library (aiohttp)
are imported inside the functions that need them: together they cost most of a second, and ``up``
must not pay that before it has launched the Ray head; ``raykube kubectl`` and ``token`` never need them.

Concurrency: plain blocking functions; files are replaced atomically. ``client_for`` returns an async
client for the caller's event loop.
"""

from __future__ import annotations

import json
from typing import Any

from .statedir import Paths, load_state, paths_for, write_private


def read_tokens(p: Paths) -> dict[str, dict[str, Any]]:
    with open(p.tokens) as f:
        return json.load(f)


def token_for(tokens: dict[str, dict[str, Any]], user: str) -> str:
    for t, info in tokens.items():
        if info.get("user") == user:
            return t
    raise KeyError(f"no token for user {user!r}")


def ensure_tokens(p: Paths, nodes: list[str]) -> dict[str, dict[str, Any]]:
    """Tokens for admin, viewer, scheduler, controller manager and each node; existing ones are kept."""
    try:
        tokens = read_tokens(p)
    except FileNotFoundError:
        tokens = {}
    from ..apiserver.auth import generate_tokens  # lazy: see the module doc

    have = {info.get("user") for info in tokens.values()}
    fresh = generate_tokens(nodes)
    changed = not tokens
    for tok, info in fresh.items():
        if info.get("user") not in have:
            tokens[tok] = info
            changed = True
    if changed:
        write_private(p.tokens, json.dumps(tokens, indent=2))
    return tokens


def write_kubeconfigs(p: Paths, server: str, ca_pem: bytes, tokens: dict[str, dict[str, Any]]) -> None:
    from .. import kubeconfig  # lazy: see the module doc

    kubeconfig.write(p.kubeconfig, server, ca_pem, "admin", token_for(tokens, "admin"), name="raykube")
    kubeconfig.write(p.kubeconfig_viewer, server, ca_pem, "viewer", token_for(tokens, "viewer"), name="raykube-viewer")


def read_ca(p: Paths) -> bytes:
    """The cluster CA's certificate (PEM)."""
    with open(p.ca_cert, "rb") as f:
        return f.read()


def client_for(state_dir: str | None = None, user: str = "admin", **kw: Any) -> Any:
    """A ``cluster.client.Client`` for this cluster as ``user`` (admin, viewer, system:node:<n>, ...)."""
    from ..client import Client  # lazy: see the module doc

    p = paths_for(state_dir)
    st = load_state(p)
    ca = read_ca(p)
    return Client(st["api"]["url"], token=token_for(read_tokens(p), user), ca_data=ca, **kw)
