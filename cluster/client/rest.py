"""Async REST client for the raykube (Kubernetes) API, over aiohttp.

One ``Client`` per component (or per process), bearer token, the cluster CA,
and two ``aiohttp`` sessions inside it:

- requests share a pool of at most ``max_connections`` (16) keep-alive
  connections: a burst of concurrent calls queues for a connection instead
  of opening new ones. client-go multiplexes everything over one long-lived
  HTTP/2 connection; on HTTP/1.1 a bounded pool of long-lived connections
  (idle ones kept ``KEEPALIVE_SECONDS``; the API server keeps them longer)
  does the same job, and ``open_connections()`` fills the pool when a
  component starts. A new connection is a TCP connect plus a TLS handshake,
  several round trips through two event loops: on this 2-core machine, in a
  burst of 100 pod starts, one took up to 0.5 s while a request on an open
  connection took ~30 ms, and a kubelet syncing 33 pods at once opened one
  per pod (``0`` = no bound; the API server benchmark uses that to measure
  the server, not the client);
- watches get their own, unbounded pool: a watch holds its connection for
  its whole life, so informers can never starve requests (or the reverse).

Reconnection and retries (what makes a restarted API server invisible to the
components above):

- The request never reached the server (connection refused, DNS, TLS
  handshake) -> retried for any verb until ``retry_deadline``, with jittered
  exponential back-off (50 ms doubling to 1 s). This is what happens while
  the API server actor is being restarted by Ray.
- The connection broke after the request was sent (reset, server
  disconnected, read timeout) -> retried only for reads (GET/HEAD);
  a write raises ``UnknownOutcome`` (the write may or may not have
  happened; the caller decides, as with client-go).
- 429 Too Many Requests -> retried for any verb after ``Retry-After``
  (Kubernetes never processes a 429'd request); 503/504 -> retried for reads.
- Every other HTTP error raises ``ApiError`` with the server's ``Status``
  (``code``, ``reason``, ``message``, ``details``); the error types are in
  ``errors``.

Client-side rate limiting (client-go's QPS/Burst token bucket, ``flowcontrol``)
is off unless ``qps`` is given. Watch streams are decoded by ``watch``.

Layout, one job a module, stacked by inheritance so a call pays no extra
indirection: ``connections`` (settings, the two session pools, their upkeep)
<- ``transport`` (``request``: one call with the retries above; ``wait_ready``,
``open_connections``) <- ``verbs`` (typed CRUD) and ``watchstream`` (``watch``)
<- ``Client`` here, which adds only ``from_kubeconfig``. The names other modules
import from here (``Client``, the errors, ``WatchEvent``, the constants) stay here.

Concurrency: a ``Client`` belongs to one event loop at a time (its sessions are
made anew when it is used from another loop); any number of tasks on that loop
may share it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..kubeconfig import KubeConfig
from ..kubeconfig import load as load_kubeconfig
from .connections import KEEPALIVE_SECONDS
from .errors import ApiError, Unavailable, UnknownOutcome, WatchDisconnected
from .transport import READ_METHODS
from .verbs import PATCH_TYPES, Verbs
from .watch import WatchEvent
from .watchstream import WatchStreams

# Importable from here as before the split (informer, events and leaderelection import the errors from rest).
__all__ = [
    "KEEPALIVE_SECONDS",
    "PATCH_TYPES",
    "READ_METHODS",
    "ApiError",
    "Client",
    "Unavailable",
    "UnknownOutcome",
    "WatchDisconnected",
    "WatchEvent",
]

log = logging.getLogger("raykube.client")


class Client(Verbs, WatchStreams):
    """The REST client: see the module doc. Its constructor is ``Connections.__init__``."""

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None, **kw: Any) -> "Client":
        kc: KubeConfig = load_kubeconfig(path, context)
        return cls(
            kc.server,
            token=kc.token,
            ca_file=kc.ca_file,
            ca_data=kc.ca_data,
            insecure=kc.insecure,
            namespace=kc.namespace,
            **kw,
        )
