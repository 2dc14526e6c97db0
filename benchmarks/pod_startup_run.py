"""pod_startup's measurement: create the pods, stamp each one's milestones from a watch.

``StartupRun`` keeps a list+watch mirror of the benchmark's pods
(``cluster_harness.Mirror``) and records, per pod, when its create request was
sent and answered and the receipt time of the first watch event showing it
bound, Running and Ready (plus restarts and its IP). ``run`` starts and deletes
the warm-up pods, lets the cluster go idle, then creates the measured pods -
in a burst with bounded concurrency or at a steady open-loop rate - and waits
until all are Running (and Ready); ``diagnostics`` gathers what a failed run
leaves behind. ``pod_manifest`` is the pod it creates.

Concurrency: one asyncio loop; the mirror, a progress ticker and the create
requests are tasks on it, and the mirror's callback fills in the pod records
between awaits.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Callable

from cluster_harness import Mirror, name_of, now, pod_ready
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cluster.client import EVENTS, NODES, PODS, ApiError, Client

NAMESPACE = "default"
LABEL = "bench"
RUN_LABEL = "pod-startup"


def pod_manifest(name: str, run_id: str, probe: bool, port: int = 8080) -> dict[str, Any]:
    """A bare pod of raykube/web, like the container of examples/web.yaml (small requests, so 100 fit)."""
    c: dict[str, Any] = {
        "name": "web",
        "image": "raykube/web",
        "ports": [{"containerPort": port}],
        "env": [{"name": "MESSAGE", "value": "pod-startup benchmark"}, {"name": "PORT", "value": str(port)}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "128Mi"}},
    }
    if probe:
        c["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": port}, "periodSeconds": 1}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {LABEL: RUN_LABEL, "run": run_id}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]},
    }


class StartupRun:
    def __init__(self, args: argparse.Namespace, client: Client, console: Console) -> None:
        self.args = args
        self.client = client
        self.console = console
        self.pods: dict[str, dict[str, Any]] = {}  # name -> timestamps and facts
        self.mirror = Mirror(
            client, PODS, namespace=NAMESPACE, label_selector=f"{LABEL}={RUN_LABEL}", on_event=self._event
        )
        self.create_errors: list[str] = []

    def _event(self, etype: str, pod: dict[str, Any], t: float) -> None:
        rec = self.pods.get(name_of(pod))
        if rec is None or etype == "DELETED":
            return
        rec["events"] += 1
        node = (pod.get("spec") or {}).get("nodeName")
        if node and rec.get("t_scheduled") is None:
            rec["t_scheduled"] = t
            rec["node"] = node
        if (pod.get("status") or {}).get("phase") == "Running" and rec.get("t_running") is None:
            rec["t_running"] = t
        if pod_ready(pod) and rec.get("t_ready") is None:
            rec["t_ready"] = t
        st = pod.get("status") or {}
        if st.get("podIP"):
            rec["pod_ip"] = st["podIP"]
        restarts = sum(int(c.get("restartCount") or 0) for c in st.get("containerStatuses") or [])
        if restarts > rec.get("restarts", 0):
            rec["restarts"] = restarts
            last = [((c.get("lastState") or {}).get("terminated") or {}) for c in st.get("containerStatuses") or []]
            rec["last_terminated"] = next((x for x in last if x), None)

    def count(self, key: str) -> int:
        return sum(1 for r in self.pods.values() if r.get(key) is not None)

    async def create(self, name: str, run_id: str) -> None:
        rec = self.pods[name]
        rec["t_send"] = now()
        try:
            await self.client.create(
                PODS, pod_manifest(name, run_id, self.args.probe, self.args.container_port), NAMESPACE
            )
            rec["t_ack"] = now()
        except ApiError as exc:
            rec["error"] = str(exc)
            self.create_errors.append(f"{name}: {exc}")

    async def warmup(self) -> None:
        n = self.args.warmup
        if n <= 0:
            return
        names = [f"warmup-{i}" for i in range(n)]
        for nm in names:
            self.pods[nm] = {"events": 0}
        await asyncio.gather(*(self.create(nm, "warmup") for nm in names))
        key = "t_ready" if self.args.probe else "t_running"
        await self.wait(lambda: all(self.pods[nm].get(key) for nm in names), 60, "warm-up pods Ready")
        for nm in names:
            await self.client.delete(PODS, nm, NAMESPACE, grace_period_seconds=0)
        await self.wait(lambda: not any(nm in self.mirror.items for nm in names), 60, "warm-up pods deleted")
        for nm in names:
            del self.pods[nm]

    async def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = now() + timeout
        while not cond():
            if now() > deadline:
                raise TimeoutError(f"{what}: not after {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        args = self.args
        watch = asyncio.create_task(self.mirror.run())
        try:
            await asyncio.wait_for(self.mirror.synced.wait(), 60)
            with self.console.status(f"warm-up: {args.warmup} pods started and deleted"):
                await self.warmup()
            with self.console.status(f"letting the new cluster go idle for {args.settle:g} s"):
                await asyncio.sleep(args.settle)  # Ray's head and the fresh actors are still busy after `up`
            run_id = f"r{int(now())}"
            names = [f"startup-{i:03d}" for i in range(args.pods)]
            for nm in names:
                self.pods[nm] = {"events": 0}
            progress = Progress(
                TextColumn("{task.description:>10}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            with progress:
                bars = {
                    k: progress.add_task(label, total=args.pods)
                    for k, label in (
                        ("t_ack", "created"),
                        ("t_scheduled", "scheduled"),
                        ("t_running", "Running"),
                        ("t_ready", "Ready"),
                    )
                }

                async def ticker() -> None:
                    while True:
                        for k, b in bars.items():
                            progress.update(b, completed=self.count(k))
                        await asyncio.sleep(0.1)

                tick = asyncio.create_task(ticker())
                try:
                    self.t_start = now()
                    if args.mode == "burst":
                        sem = asyncio.Semaphore(max(1, args.concurrency))

                        async def bounded(nm: str) -> None:
                            async with sem:
                                await self.create(nm, run_id)

                        creators = [asyncio.create_task(bounded(nm)) for nm in names]
                    else:
                        creators = []
                        period = 1.0 / args.rate
                        for i, nm in enumerate(names):
                            delay = self.t_start + i * period - now()
                            if delay > 0:
                                await asyncio.sleep(delay)
                            creators.append(asyncio.create_task(self.create(nm, run_id)))
                    await asyncio.gather(*creators)
                    self.t_created = now()
                    key = "t_ready" if args.probe else "t_running"
                    ok = [nm for nm in names if "error" not in self.pods[nm]]
                    await self.wait(
                        lambda: all(
                            self.pods[nm].get(key) is not None and self.pods[nm].get("t_running") is not None
                            for nm in ok
                        ),
                        args.timeout,
                        f"all {len(ok)} pods Running and Ready",
                    )
                    self.t_done = now()
                finally:
                    for k, b in bars.items():
                        progress.update(b, completed=self.count(k))
                    tick.cancel()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    async def diagnostics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"watch_errors": self.mirror.errors[-20:], "create_errors": self.create_errors[-20:]}
        try:
            pods, _ = await self.client.list_all(PODS, NAMESPACE, label_selector=f"{LABEL}={RUN_LABEL}")
            out["not_done"] = [
                {
                    "name": name_of(p),
                    "node": (p.get("spec") or {}).get("nodeName"),
                    "phase": (p.get("status") or {}).get("phase"),
                    "ready": pod_ready(p),
                    "conditions": (p.get("status") or {}).get("conditions"),
                }
                for p in pods
                if not pod_ready(p)
            ][:30]
            events, _ = await self.client.list_all(EVENTS, NAMESPACE)
            out["events"] = [
                {
                    "reason": e.get("reason"),
                    "object": (e.get("involvedObject") or {}).get("name"),
                    "message": e.get("message"),
                }
                for e in events
                if e.get("type") == "Warning"
            ][-40:]
            nodes, _ = await self.client.list_all(NODES)
            out["nodes"] = [
                {"name": name_of(n), "conditions": (n.get("status") or {}).get("conditions")} for n in nodes
            ]
        except Exception as exc:  # noqa: BLE001
            out["error"] = f"{type(exc).__name__}: {exc}"
        return out
