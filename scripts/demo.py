"""The README's first command: bring a local cluster up and show it working.

Starts a 3-member raftstore, writes and watches keys, SIGKILLs the Raft
leader under load and shows the failover, restarts the dead member and shows
every member converging on the same state; then, if the orchestrator is
installed (``raykube``), brings the Kubernetes-style control plane up on Ray
and lists namespaces with the real kubectl. Everything started is stopped at
the end (``--keep`` leaves it running).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

from rich.console import Console
from rich.table import Table

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from raftstore.client import RaftstoreClient, RaftstoreError  # noqa: E402
from raftstore.localcluster import LocalCluster  # noqa: E402

console = Console()


def status_table(rows: list[dict]) -> Table:
    t = Table(title="raftstore members")
    for col in ("name", "endpoint", "pid", "role", "term", "leader", "commit", "applied", "revision"):
        t.add_column(col)
    for r in rows:
        if "error" in r:
            t.add_row("?", r["endpoint"], "-", "[red]down[/red]", "-", "-", "-", "-", "-")
        else:
            role = f"[bold green]{r['role']}[/bold green]" if r["role"] == "leader" else r["role"]
            t.add_row(
                r["name"],
                r["endpoint"],
                str(r["pid"]),
                role,
                str(r["term"]),
                str(r["leader"]),
                str(r["commit_index"]),
                str(r["applied_index"]),
                str(r["revision"]),
            )
    return t


async def raftstore_demo(cluster: LocalCluster) -> None:
    client = RaftstoreClient(cluster.endpoints, timeout=30, request_timeout=0.3)
    leader = await client.wait_for_leader()
    console.print(status_table(await client.cluster_status()))
    res = await client.put("/demo/hello", "world")
    kv = await client.get_one("/demo/hello")
    console.print(f"put /demo/hello=world at revision {res['revision']}; get -> {kv.value.decode()!r}")

    seen: list[int] = []
    watch = client.watch("/demo/load/", prefix=True)

    async def consume() -> None:
        async for resp in watch:
            seen.extend(e.revision for e in resp.events)

    consumer = asyncio.create_task(consume())
    await watch.ready.wait()
    acked: list[float] = []
    stop = asyncio.Event()

    async def writer(i: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                await client.put(f"/demo/load/{i}/{n}", "x")
                acked.append(time.monotonic())
            except RaftstoreError:
                pass
            n += 1

    writers = [asyncio.create_task(writer(i)) for i in range(8)]
    await asyncio.sleep(1.0)
    console.print(
        f"8 writers running: {len(acked)} writes acknowledged in 1 s; "
        f"[bold red]SIGKILL leader {leader['name']}[/bold red] (pid {leader['pid']})"
    )
    t_kill = time.monotonic()
    cluster.kill(leader["name"])
    new = None
    while new is None:
        for r in await client.cluster_status():
            if r.get("role") == "leader" and r["name"] != leader["name"]:
                new = r
        await asyncio.sleep(0.02)
    t_new = time.monotonic()
    await asyncio.sleep(1.0)
    after = [t for t in acked if t > t_kill]
    console.print(
        f"new leader {new['name']} (term {new['term']}) after {t_new - t_kill:.2f} s; "
        f"first write acknowledged {after[0] - t_kill:.2f} s after the kill"
        if after
        else "no writes yet"
    )
    stop.set()
    await asyncio.gather(*writers)
    cluster.start_member(leader["name"])
    cluster.wait_serving()
    console.print(f"restarted {leader['name']} from its data directory; waiting for it to catch up")
    while True:
        digests = [await client.digest(ep) for ep in cluster.endpoints]
        if len({(d["digest"], d["revision"]) for d in digests}) == 1:
            break
        await asyncio.sleep(0.1)
    stored = (await client.get("/demo/load/", prefix=True, count_only=True)).count
    await asyncio.sleep(0.3)
    consumer.cancel()
    console.print(status_table(await client.cluster_status()))
    console.print(
        f"[bold]{len(acked)}[/bold] writes acknowledged, [bold]{stored}[/bold] stored "
        f"(writes whose reply was lost in the failover may be stored too); all 3 members hold the same "
        f"state (sha256 {digests[0]['digest'][:12]}…, revision {digests[0]['revision']}); "
        f"the watch saw {len(seen)} events, {len(set(seen))} distinct, in order: {seen == sorted(seen)}"
    )
    if stored < len(acked):
        console.print(f"[bold red]LOST WRITES: {len(acked) - stored} acknowledged writes are missing[/bold red]")
    await client.close()


def raykube_demo(state_dir: str, keep: bool) -> None:
    """raykube up --nodes 3, a Deployment of real processes, and a node killed under it."""
    bindir = os.path.dirname(sys.executable)
    raykube = shutil.which("raykube", path=bindir) or shutil.which("raykube")
    kubectl_bin = shutil.which("kubectl", path=bindir) or shutil.which("kubectl")
    if raykube is None or kubectl_bin is None:
        console.print("[yellow]raykube or kubectl not installed; skipping the orchestrator part[/yellow]")
        return
    console.rule("raykube: the control plane on Ray, three nodes, real processes")
    subprocess.run([raykube, "up", "--state-dir", state_dir, "--nodes", "3"], check=True)
    kubeconfig = os.path.join(state_dir, "kubeconfig")

    def kubectl(*args: str, capture: bool = False) -> str:
        console.print(f"[bold]$ kubectl {' '.join(args)}[/bold]")
        p = subprocess.run(
            [kubectl_bin, f"--kubeconfig={kubeconfig}", *args], text=True, capture_output=capture, check=False
        )
        return p.stdout if capture else ""

    try:
        kubectl("get", "nodes", "-o", "wide")
        examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
        kubectl("apply", "-f", os.path.join(examples, "web.yaml"))
        kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        kubectl("get", "pods", "-o", "wide")
        pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json", capture=True))["items"]
        for pod in pods:
            ip = pod["status"].get("podIP")
            if ip:
                with urllib.request.urlopen(f"http://{ip}:8080/", timeout=5) as r:
                    console.print(f"  curl http://{ip}:8080/ -> {r.read().decode().strip()}")
        victim = pods[0]["spec"]["nodeName"]
        console.print(
            f"[bold red]$ raykube node kill {victim}[/bold red]  (its kubelet and every pod process die at once)"
        )
        t0 = time.monotonic()
        subprocess.run([raykube, "--state-dir", state_dir, "node", "kill", victim], check=False)
        while time.monotonic() - t0 < 60:
            items = json.loads(kubectl_quiet(kubectl_bin, kubeconfig, "get", "pods", "-l", "app=web", "-o", "json"))[
                "items"
            ]
            ok = [
                p
                for p in items
                if p["spec"].get("nodeName") != victim
                and not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
            ]
            if len(ok) >= 3:
                break
            time.sleep(0.25)
        console.print(
            f"3 replicas Ready on the surviving nodes {time.monotonic() - t0:.1f} s after the kill "
            f"(demo profile: 2 s heartbeat, 5 s grace)"
        )
        kubectl("get", "nodes")
        kubectl("get", "pods", "-o", "wide")
    finally:
        if not keep:
            subprocess.run([raykube, "down", "--state-dir", state_dir], check=False)


def kubectl_quiet(kubectl_bin: str, kubeconfig: str, *args: str) -> str:
    return (
        subprocess.run(
            [kubectl_bin, f"--kubeconfig={kubeconfig}", *args], text=True, capture_output=True, check=False
        ).stdout
        or '{"items": []}'
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", default=os.path.abspath("state"))
    p.add_argument("--keep", action="store_true", help="leave the clusters running")
    args = p.parse_args()
    data = os.path.join(args.state_dir, "raftstore-demo")
    if os.path.exists(os.path.join(data, "cluster.json")):
        LocalCluster(data).kill_all()
        shutil.rmtree(data)
    console.rule("raftstore: three Raft members on loopback")
    cluster = LocalCluster.create(data)
    cluster.start()
    try:
        cluster.wait_serving()
        asyncio.run(raftstore_demo(cluster))
    finally:
        if not args.keep:
            cluster.stop()
            console.print(f"stopped raftstore members ({data})")
    raykube_demo(os.path.join(args.state_dir, "raykube"), args.keep)


if __name__ == "__main__":
    main()
