"""The kubelet actor: one ``cluster.kubelet.Kubelet`` inside a Ray actor.

A plain class (wrap it with ``ray.remote``; ``cluster.launcher.kubelet_actors.add_node`` does,
as a detached named actor ``kubelet-<node>`` in namespace ``raykube``,
pinned to one Ray node with ``NodeAffinitySchedulingStrategy`` or a custom
resource). The kubelet runs on its own asyncio loop in a thread of the actor
process, so actor calls never wait behind pod work. Container processes are
children of that thread with ``PR_SET_PDEATHSIG``: if the actor process
dies (Ray kills it, it crashes), every container's main process dies with it.

``kill_node()`` is a power cut: it writes a ``powered-off`` marker in the
node's state dir, stops all API writes, SIGKILLs every container process
group (and cgroup) and then SIGKILLs its own process - no status is
written, the Lease simply stops being renewed. If Ray restarts the actor,
``__init__`` finds the marker and stays inert (no kubelet) until
``kubelet_actors.kill_node`` removes it for good with ``ray.kill``;
``kubelet_actors.add_node`` clears the marker, so the node can come back.

``shutdown(grace)`` is an orderly stop (containers stopped, nothing
written); ``info()``/``runtime()`` report; ``ready(timeout)`` waits until
the Node is registered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from ..runner.process import bump_incarnation, freeze_startup_heap

log = logging.getLogger("raykube.actors.kubelet")

POWERED_OFF = "powered-off"


class KubeletActor:
    def __init__(self, config: dict[str, Any], start_timeout: float = 60.0) -> None:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        self.config = dict(config)
        self.name = str(config["name"])
        self.state_dir = str(config["state_dir"])
        os.makedirs(self.state_dir, exist_ok=True)
        self.start_timeout = start_timeout
        self.started_at = time.time()
        self.incarnation = bump_incarnation(os.path.join(self.state_dir, "incarnation"))
        self.error: str | None = None
        self.inert = os.path.exists(os.path.join(self.state_dir, POWERED_OFF))
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._kubelet: Any = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        if self.inert:
            log.warning("node %s was powered off; this actor stays inert", self.name)
            self._ready.set()
            return
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - report and let Ray restart us
            self.error = repr(exc)
            log.exception("kubelet %s failed", self.name)
            self._ready.set()
            os._exit(1)

    async def _main(self) -> None:
        # Lazy: the kubelet is imported in the actor process only; the launcher imports this module to
        # wrap the class, and must not pay for the kubelet (and the client library) there.
        from cluster.kubelet import Kubelet, KubeletConfig

        try:
            import ray

            node_id = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - also usable without Ray
            node_id = None
        cfg = KubeletConfig(**{**self.config, "ray_node_id": self.config.get("ray_node_id") or node_id})
        self._stop = asyncio.Event()
        kl = Kubelet(cfg)
        self._kubelet = kl
        await asyncio.wait_for(kl.start(), self.start_timeout)
        freeze_startup_heap()
        self._ready.set()
        await self._stop.wait()
        await kl.stop()

    # ------------------------------------------------------------ methods
    def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        if not self._ready.wait(timeout):
            raise TimeoutError(f"kubelet {self.name} not registered after {timeout} s")
        if self.error:
            raise RuntimeError(f"kubelet {self.name} failed: {self.error}")
        return self.info()

    def info(self) -> dict[str, Any]:
        kl = self._kubelet
        return {
            "node": self.name,
            "pid": os.getpid(),
            "incarnation": self.incarnation,
            "inert": self.inert,
            "started_at": self.started_at,
            "error": self.error,
            "node_ip": kl.node_ip if kl else None,
            "port": kl.server.port if kl else None,
            "pod_cidr": kl.config.pod_cidr if kl else None,
            "pods": len(kl.workers) if kl else 0,
            "lease_renewals": kl.lease_renewals if kl else 0,
            "limits": kl.runtime.limiter.memory if kl and kl.runtime else None,
        }

    def runtime(self) -> dict[str, Any]:
        kl = self._kubelet
        if kl is None:
            return {"node": self.name, "inert": self.inert, "pods": [], "processes": []}
        fut = asyncio.run_coroutine_threadsafe(self._runtime_info(), self._loop)
        return fut.result(10)

    async def _runtime_info(self) -> dict[str, Any]:
        assert self._kubelet is not None
        return self._kubelet.runtime_info()

    def pids(self) -> list[int]:
        kl = self._kubelet
        return kl.pids() if kl else []

    def kill_node(self) -> None:
        """Power cut: every container SIGKILLed, then this process. Never returns."""
        try:
            with open(os.path.join(self.state_dir, POWERED_OFF), "w") as f:
                f.write(str(time.time()))
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            pass
        kl = self._kubelet
        if kl is not None:
            kl.power_off()
        os.kill(os.getpid(), signal.SIGKILL)

    def shutdown(self, grace: float = 1.0) -> bool:
        if self._stop is None or self._thread is None:
            return True
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(grace + 10)
        return not self._thread.is_alive()
