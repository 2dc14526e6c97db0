"""Fixtures for the scheduler and controller-manager tests.

``control`` (module-scoped): the API server fixture of ``apiserver_fixtures``
(real raftstore + API server over TLS) plus

- a ``system:kube-controller-manager`` token (added to the server's tokens
  file, which it reloads) and token files for both components;
- a background asyncio loop in a thread with a ``cluster.client.Client``
  (``control.run(fn)`` runs ``fn(client)`` there and returns its result);
- ``control.kubelet``: a tiny fake kubelet on that loop - it registers fake
  Nodes (Ready, with capacity), renews their Leases in ``kube-node-lease``,
  marks pods bound to them Running/Ready through the status subresource and
  finishes the deletion of their terminating pods (grace 0), renews Leases
  every 2 s (the demo profile's heartbeat); ``kill(node)``
  makes it behave like a dead machine (no renewals, no pod handling);
- ``start_scheduler()`` / ``start_controller_manager()``: the real components
  as child processes (``python -m cluster.scheduler`` / ``cluster.controllers``)
  with short leader-election timings; every process is killed by PID in the
  finalizer, whatever the tests did;
- ``ensure_scheduler()`` / ``ensure_control_plane()``: for fixtures that
  bring a test its control plane whatever earlier tests did - exactly one live
  replica of the given identity, holding its Lease (started if need be);
- ``kubelet.remove_node(name)``: deletes a fake Node and its Lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
from apiserver_fixtures import ROOT, Env, kill_pid, start_env, stop_env

from cluster.client import LEASES, NODES, PODS, ApiError, Client, Informer, key_of

CM_USER = "system:kube-controller-manager"


def now_micro() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ready_node(
    name: str,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: int = 110,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    t = now_micro()[:19] + "Z"
    cap = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {
            "capacity": cap,
            "allocatable": cap,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": t,
                    "lastTransitionTime": t,
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        },
    }


class FakeKubelet:
    """Runs on the background loop. Pods bound to a live node become Running/Ready after
    ``start_delay``; terminating pods are deleted (grace 0); Leases renewed every ``heartbeat``."""

    def __init__(self, client: Client, heartbeat: float = 2.0, start_delay: float = 0.05) -> None:
        self.client = client
        self.heartbeat = heartbeat
        self.start_delay = start_delay
        self.live: set[str] = set()
        self.known: set[str] = set()
        self.renew = True
        self.pods: Informer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._busy: set[str] = set()
        self.started: dict[str, float] = {}  # pod key -> time we marked it Running

    async def start(self) -> None:
        self.pods = Informer(self.client, PODS, name="fakekubelet/pods")
        self.pods.add_event_handler(self._on_pod, lambda o, n: self._on_pod(n), None)
        self.pods.start()
        await self.pods.wait_for_sync()
        self._tasks.append(asyncio.get_running_loop().create_task(self._renew_loop()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.pods:
            await self.pods.stop()

    async def add_node(self, name: str, *, lease: bool = True, run_pods: bool = True, **kw: Any) -> None:
        body = ready_node(name, **kw)
        try:
            await self.client.create(NODES, body)
        except ApiError as exc:
            if not exc.already_exists:
                raise
            cur = await self.client.get(NODES, name)
            cur["status"] = body["status"]
            await self.client.update_status(NODES, cur)
        self.known.add(name)
        if run_pods:
            self.live.add(name)
        if lease:
            await self._renew(name)
        assert self.pods is not None
        for pod in self.pods.store.list():
            self._on_pod(pod)

    def kill(self, name: str) -> None:
        self.live.discard(name)

    async def remove_node(self, name: str) -> None:
        """Deletes the Node and its Lease; the fake kubelet forgets it (pods bound to it stay)."""
        self.live.discard(name)
        self.known.discard(name)
        for res, ns in ((NODES, None), (LEASES, "kube-node-lease")):
            try:
                await self.client.delete(res, name, ns)
            except ApiError as exc:
                if not exc.not_found:
                    raise

    async def _renew(self, name: str) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
        }
        try:
            cur = await self.client.get(LEASES, name, "kube-node-lease")
            cur["spec"] = body["spec"]
            await self.client.update(LEASES, cur)
        except ApiError as exc:
            if exc.not_found:
                await self.client.create(LEASES, body, "kube-node-lease")
            elif not exc.conflict:
                raise

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            if not self.renew:
                continue
            for name in list(self.live):
                try:
                    await self._renew(name)
                    node = await self.client.get(NODES, name)
                    ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
                    if not ready or ready[0].get("status") != "True":
                        node["status"] = ready_node(name)["status"] | {
                            "capacity": node["status"].get("capacity"),
                            "allocatable": node["status"].get("allocatable"),
                        }
                        await self.client.update_status(NODES, node)
                except Exception:  # noqa: BLE001 - keep renewing the others
                    pass

    def _on_pod(self, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self.live:
            return
        key = key_of(pod)
        if key in self._busy:
            return
        md = pod["metadata"]
        if md.get("deletionTimestamp"):
            self._busy.add(key)
            asyncio.get_running_loop().create_task(self._finish_delete(key, md))
            return
        st = pod.get("status") or {}
        if st.get("phase") == "Running" and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
        ):
            return
        self._busy.add(key)
        asyncio.get_running_loop().create_task(self._start_pod(key, md))

    async def _finish_delete(self, key: str, md: dict[str, Any]) -> None:
        try:
            await self.client.delete(
                PODS, md["name"], md["namespace"], grace_period_seconds=0, preconditions={"uid": md["uid"]}
            )
        except ApiError:
            pass
        finally:
            self._busy.discard(key)

    async def _start_pod(self, key: str, md: dict[str, Any]) -> None:
        try:
            await asyncio.sleep(self.start_delay)
            t = now_micro()[:19] + "Z"
            conds = [
                {"type": x, "status": "True", "lastTransitionTime": t}
                for x in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ]
            patch = {"status": {"phase": "Running", "podIP": "127.0.0.2", "startTime": t, "conditions": conds}}
            await self.client.patch(
                PODS, md["name"], patch, md["namespace"], patch_type="strategic", subresource="status"
            )
            self.started[key] = time.time()
        except ApiError:
            pass
        finally:
            self._busy.discard(key)


class ControlEnv:
    def __init__(self, api: Env, workdir: Path) -> None:
        self.api = api
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="control-loop", daemon=True)
        self.thread.start()
        tokens = json.loads((Path(api.workdir) / "tokens.json").read_text())
        self.cm_token = f"tok-cm-{os.urandom(8).hex()}"
        tokens[self.cm_token] = {"user": CM_USER, "groups": ["system:authenticated"]}
        (Path(api.workdir) / "tokens.json").write_text(json.dumps(tokens))
        self.scheduler_token_file = workdir / "scheduler.token"
        self.scheduler_token_file.write_text(api.tokens["scheduler"])
        self.cm_token_file = workdir / "cm.token"
        self.cm_token_file.write_text(self.cm_token)
        self.client = Client(api.url, token=api.tokens["admin"], ca_file=api.ca)
        self.kubelet = FakeKubelet(self.client)
        self.run(lambda c: self.kubelet.start())
        # The API server reloads the tokens file at most once a second: wait for the new identity.
        deadline = time.monotonic() + 10
        while (
            api.request(
                "GET",
                "/api/v1/namespaces/default/pods",
                user=None,
                headers={"Authorization": f"Bearer {self.cm_token}"},
            ).status
            != 200
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("controller-manager token not accepted")
            time.sleep(0.2)

    # -- background loop ---------------------------------------------------
    def run(self, fn: Callable[[Client], Awaitable[Any]], timeout: float = 60.0) -> Any:
        async def call() -> Any:
            return await fn(self.client)

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def spawn(self, coro: Awaitable[Any]) -> "asyncio.Future[Any]":
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    # -- components --------------------------------------------------------
    def _start(self, module: str, token_file: Path, log_name: str, extra: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                "--api",
                self.api.url,
                "--token-file",
                str(token_file),
                "--ca",
                self.api.ca,
                "--leader-elect-lease-duration",
                "3",
                "--leader-elect-renew-deadline",
                "2",
                "--leader-elect-retry-period",
                "0.5",
                *extra,
            ],
            cwd=str(ROOT),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start_scheduler(self, *extra: str, identity: str = "sched-0") -> subprocess.Popen[bytes]:
        return self._start(
            "cluster.scheduler",
            self.scheduler_token_file,
            "scheduler.log",
            ["--leader-elect-identity", identity, *extra],
        )

    def start_controller_manager(
        self, *extra: str, identity: str = "cm-0", profile: str = "demo"
    ) -> subprocess.Popen[bytes]:
        return self._start(
            "cluster.controllers",
            self.cm_token_file,
            "controller-manager.log",
            ["--leader-elect-identity", identity, "--profile", profile, *extra],
        )

    def replicas(self, module: str) -> list[subprocess.Popen[bytes]]:
        """The live processes of ``module`` (``cluster.scheduler`` / ``cluster.controllers``)."""
        return [p for p in self.procs if p.poll() is None and module in p.args]

    @staticmethod
    def identity_of(proc: subprocess.Popen[bytes]) -> str:
        args = list(proc.args)  # type: ignore[arg-type]
        return str(args[args.index("--leader-elect-identity") + 1])

    def _one_replica(
        self, module: str, identity: str, start: Callable[[], subprocess.Popen[bytes]]
    ) -> subprocess.Popen[bytes]:
        """Exactly one live process of ``module``: the one of ``identity``, started if need be;
        the others stopped with SIGTERM (a leader releases its Lease on the way out)."""
        live = self.replicas(module)
        keep = [p for p in live if self.identity_of(p) == identity][:1]
        for p in live:
            if p not in keep:
                kill_pid(p.pid)
        return keep[0] if keep else start()

    def wait_leads(self, proc: subprocess.Popen[bytes], lease: str, timeout: float = 30.0) -> None:
        """Until the Lease ``kube-system/<lease>`` is held by ``proc``'s identity."""
        identity = self.identity_of(proc)

        def leads() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{identity} exited with {proc.returncode}")
            try:
                held = self.run(lambda c: c.get(LEASES, lease, "kube-system"))["spec"].get("holderIdentity")
            except ApiError as exc:
                if exc.not_found:
                    return False
                raise
            return held == identity

        wait_for(leads, timeout, interval=0.1, what=f"{identity} to hold the {lease} Lease")

    def ensure_scheduler(self, identity: str = "sched-0", timeout: float = 30.0) -> subprocess.Popen[bytes]:
        """Exactly one live scheduler process, ``identity``, holding the Lease (started if need be,
        other replicas stopped with SIGTERM)."""
        proc = self._one_replica("cluster.scheduler", identity, lambda: self.start_scheduler(identity=identity))
        self.wait_leads(proc, "kube-scheduler", timeout)
        return proc

    def ensure_control_plane(
        self, scheduler: str = "sched-0", controller_manager: str = "cm-0", timeout: float = 30.0
    ) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
        """Exactly one live scheduler and one live controller-manager process of these identities,
        each holding its Lease (both started, if need be, before waiting for either)."""
        sched = self._one_replica("cluster.scheduler", scheduler, lambda: self.start_scheduler(identity=scheduler))
        cm = self._one_replica(
            "cluster.controllers",
            controller_manager,
            lambda: self.start_controller_manager(identity=controller_manager),
        )
        self.wait_leads(sched, "kube-scheduler", timeout)
        self.wait_leads(cm, "kube-controller-manager", timeout)
        return sched, cm

    def kill(self, proc: subprocess.Popen[bytes], sig: int = 9) -> None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_pid(proc.pid)

    def log(self, name: str) -> str:
        p = self.workdir / name
        return p.read_text()[-6000:] if p.exists() else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                kill_pid(proc.pid)
        try:
            self.run(lambda c: self.kubelet.stop(), timeout=10)
            self.run(lambda c: c.close(), timeout=10)
        except Exception:  # noqa: BLE001
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def start_api(workdir: Path) -> Env:
    # as `raykube up --profile demo` configures it: new pods tolerate not-ready/unreachable nodes for 0 s
    api, _ = start_env(workdir, ["--default-toleration-seconds", "0"])
    return api


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlEnv]:
    workdir = tmp_path_factory.mktemp("control")
    api = start_api(workdir)
    env: ControlEnv | None = None
    try:
        env = ControlEnv(api, workdir)
        yield env
    finally:
        if env is not None:
            env.close()
        stop_env(api)


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
