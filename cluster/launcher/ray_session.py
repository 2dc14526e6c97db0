"""This cluster's Ray from the launcher's side: the environment and auth it needs, and ``ray.init`` for a block.

The cluster's actors live in Ray namespace ``raykube``. A Ray head started by ``up`` runs with token
auth (the token file is in the state dir); for a joined Ray (``up --address``) the token source is
recorded at ``up`` so that ``down`` and ``status`` can authenticate later from other shells.

Ray is imported inside functions, never at module level: ``import ray`` costs about a second of CPU
(``up`` overlaps it with the head's start, other commands may not need it at all), and Ray reads its
auth settings from the environment at import time, so they must be applied first.

Concurrency: ``ray_connection`` sets process-wide state (environment variables, Ray's global
connection): one connection at a time per process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator

from .errors import LauncherError
from .ports import port_open
from .statedir import Paths, write_private

NAMESPACE = "raykube"
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def ray_env(st: dict[str, Any], p: Paths) -> dict[str, str]:
    env = dict(RAY_ENV)
    if st.get("ray", {}).get("owned", True):
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN_PATH"] = p.ray_token
    else:
        # A joined Ray: the token source recorded by `up --address` (see remember_join_auth), unless
        # the caller's environment says otherwise.
        auth = st.get("ray", {}).get("auth") or {}
        if "RAY_AUTH_MODE" not in os.environ and auth.get("mode"):
            env["RAY_AUTH_MODE"] = auth["mode"]
        if (
            not os.environ.get("RAY_AUTH_TOKEN")
            and not os.environ.get("RAY_AUTH_TOKEN_PATH")
            and auth.get("token_path")
        ):
            env["RAY_AUTH_TOKEN_PATH"] = auth["token_path"]
    return env


def remember_join_auth(p: Paths) -> dict[str, str]:
    """How to authenticate to a joined Ray later (down/status run from other shells): the mode and a
    token file path. A token given as ``RAY_AUTH_TOKEN`` is copied into the state dir (0600)."""
    auth: dict[str, str] = {}
    if os.environ.get("RAY_AUTH_MODE"):
        auth["mode"] = os.environ["RAY_AUTH_MODE"]
    if os.environ.get("RAY_AUTH_TOKEN"):
        write_private(p.ray_token, os.environ["RAY_AUTH_TOKEN"])
        auth["token_path"] = p.ray_token
    elif os.environ.get("RAY_AUTH_TOKEN_PATH"):
        auth["token_path"] = os.path.abspath(os.environ["RAY_AUTH_TOKEN_PATH"])
    elif os.path.exists(os.path.expanduser("~/.ray/auth_token")):
        auth["token_path"] = os.path.expanduser("~/.ray/auth_token")
    if "token_path" in auth and "mode" not in auth:
        auth["mode"] = "token"  # Ray 2.60's default; a joining driver must say so (FIELD-NOTES)
    return auth


def apply_env(env: dict[str, str]) -> None:
    for k, v in env.items():
        os.environ[k] = v


@contextlib.contextmanager
def ray_connection(st: dict[str, Any], p: Paths) -> Iterator[Any]:
    """``ray.init`` to the cluster's Ray (namespace ``raykube``) for the duration of the block."""
    address = st["ray"]["address"]
    host, port = address.rsplit(":", 1)
    if not port_open(host, int(port), timeout=1.0):
        raise LauncherError(f"Ray at {address} is not reachable")
    env = ray_env(st, p)
    saved = {k: os.environ.get(k) for k in env}
    apply_env(env)
    import ray  # lazy: slow, and it reads the environment just applied (see the module doc)

    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
        )
        try:
            yield ray
        finally:
            ray.shutdown()
    finally:
        # Don't leak this cluster's auth settings into the caller's later ray.init()s (tests share a process).
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def preimport_ray() -> None:
    """Import Ray and the parts the launcher uses (run on a thread while the Ray head starts)."""
    try:
        import ray  # noqa: F401
        import ray._private.state  # noqa: F401
        import ray.util.scheduling_strategies  # noqa: F401
    except Exception:  # noqa: BLE001 - the real import reports problems
        pass
