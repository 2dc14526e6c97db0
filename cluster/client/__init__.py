"""``cluster.client``: the one client library every raykube component uses.

- ``Client`` (``rest``): async REST client over aiohttp - bearer token, the
  cluster CA, keep-alive, reconnect/retry across API server restarts, watch
  streams (decoded by ``watch``: ``WatchEvent``), client-side rate limiting
  (``flowcontrol``: ``TokenBucket``); typed errors (``errors``: ``ApiError``,
  ``Unavailable``, ``UnknownOutcome``, ``WatchDisconnected``).
- ``Informer`` / ``Store`` (``informer``): list+watch with a local cache,
  resume from the last resourceVersion, re-list on 410 Gone, periodic
  resync, per-handler event queues.
- ``RateLimitingQueue`` and rate limiters (``workqueue``): client-go's work
  queue - dedup, one worker per key at a time, per-item exponential
  back-off, overall token bucket, delayed adds - and ``run_worker``.
- ``Resource`` constants (``resources``): PODS, NODES, DEPLOYMENTS, ...
- ``EventRecorder`` (``events``): client-go's event recorder - queues core/v1
  Events, writes them in the background, aggregates repeats (best effort).
- ``Clock`` / ``FakeClock`` (``clock``) for deterministic tests.

Typical component::

    client = Client.from_kubeconfig(path)          # or Client(server, token=..., ca_data=...)
    pods = Informer(client, PODS, resync_period=30)
    queue = RateLimitingQueue(name="pods")
    pods.add_event_handler(on_add=lambda o: queue.add(key_of(o)),
                           on_update=lambda old, new: queue.add(key_of(new)),
                           on_delete=lambda o: queue.add(key_of(o)))
    pods.start(); await pods.wait_for_sync()
    await run_worker(queue, reconcile)
"""

from .clock import REAL_CLOCK, Clock, FakeClock
from .errors import ApiError, Unavailable, UnknownOutcome, WatchDisconnected
from .events import EventRecorder
from .flowcontrol import TokenBucket
from .informer import Informer, Store, deep_copy
from .resources import (
    ALL,
    CONFIGMAPS,
    DEPLOYMENTS,
    ENDPOINTS,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    SECRETS,
    SERVICES,
    Resource,
    key_of,
    lookup,
)
from .rest import Client
from .watch import WatchEvent
from .workqueue import (
    BucketRateLimiter,
    DelayingQueue,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimitingQueue,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
    run_worker,
)

__all__ = [
    "ALL",
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "ENDPOINTS",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "PODS",
    "REPLICASETS",
    "SECRETS",
    "SERVICES",
    "REAL_CLOCK",
    "ApiError",
    "BucketRateLimiter",
    "Client",
    "Clock",
    "DelayingQueue",
    "EventRecorder",
    "FakeClock",
    "Informer",
    "ItemExponentialFailureRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "RateLimitingQueue",
    "Resource",
    "ShutDown",
    "Store",
    "TokenBucket",
    "Unavailable",
    "UnknownOutcome",
    "WatchDisconnected",
    "WatchEvent",
    "WorkQueue",
    "deep_copy",
    "default_controller_rate_limiter",
    "key_of",
    "lookup",
    "run_worker",
]
