"""The kubelet's pod bookkeeping: pod events in, one ``PodWorker`` per pod UID, admission, lookups.

``PodWorkers`` is a part of ``kubelet.Kubelet`` (a base class; the attributes
it reads are set by ``Kubelet.__init__``): the pod informer's handlers (or, for
hollow kubelets, ``cluster.hollow``) call ``on_pod`` / ``on_pod_deleted``,
which start a worker for a new pod bound here or hand the event to its worker;
workers call back ``admit`` (``admission`` against the pods admitted here and
not finished), ``worker_done`` (a finished UID is never started again; the
record is pruned after an hour once it holds 10000) and ``lookup_config``
(ConfigMap and Secret data for env and volumes); the HTTP server uses
``find_worker``.

Concurrency: everything runs on the kubelet's asyncio loop; no call awaits
except ``lookup_config``, so ``workers`` changes only between awaits.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from ..api.resources import pod_requests, resource_list
from ..client import CONFIGMAPS, SECRETS, ApiError, Client
from .admission import admission_rejection
from .config import KubeletConfig
from .node import node_capacity
from .pods import PodWorker

if TYPE_CHECKING:
    from .kubelet import Kubelet


class PodWorkers:
    # set by Kubelet.__init__
    config: KubeletConfig
    client: Client
    powered_off: bool
    workers: dict[str, PodWorker]
    finished_uids: dict[str, float]

    def on_pod(self: Kubelet, pod: dict[str, Any]) -> None:  # a worker is given the whole Kubelet
        if self.powered_off:
            return
        uid = (pod.get("metadata") or {}).get("uid", "")
        if uid in self.finished_uids:
            return
        w = self.workers.get(uid)
        if w is None:
            if (pod.get("spec") or {}).get("nodeName") != self.config.name:
                return
            w = PodWorker(self, pod)
            self.workers[uid] = w
            w.start()
        else:
            w.update(pod)

    def on_pod_deleted(self, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        w = self.workers.get(uid)
        if w is not None:
            w.mark_deleted(pod)

    def admit(self, w: PodWorker) -> tuple[str, str] | None:
        """The kubelet's admission (``admission``): None, or (reason, message) to reject the pod (phase
        Failed): OutOfpods, OutOfcpu, OutOfmemory against the pods admitted here and not finished."""
        others = [
            pod_requests(o.pod)
            for o in self.workers.values()
            if o is not w and o.state.admitted and o.state.terminal_phase is None
        ]
        return admission_rejection(pod_requests(w.pod), others, resource_list(node_capacity(self.config)))

    def worker_done(self, w: PodWorker) -> None:
        if self.workers.get(w.uid) is w:
            del self.workers[w.uid]
        self.finished_uids[w.uid] = time.monotonic()
        if len(self.finished_uids) > 10000:
            cutoff = time.monotonic() - 3600
            self.finished_uids = {k: v for k, v in self.finished_uids.items() if v > cutoff}

    def find_worker(self, namespace: str, name: str) -> PodWorker | None:
        found = [w for w in self.workers.values() if w.namespace == namespace and w.name == name]
        if not found:
            return None
        found.sort(key=lambda w: (not w.terminating, w.first_seen))
        return found[-1]

    async def lookup_config(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        res = CONFIGMAPS if kind == "configmaps" else SECRETS
        try:
            obj = await self.client.get(res, name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        if kind == "secrets":
            out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
            out.update(obj.get("stringData") or {})
            return out
        return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
