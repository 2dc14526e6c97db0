"""What the scheduler and the controller manager share as processes: command-line
flags for reaching the API server and for leader election, the client, a
``run_with_election`` that runs a component's coroutine only while this
replica holds the Lease, and ``ComponentRunner``, the body of both Ray actor
classes (``cluster.actors.scheduler`` / ``cluster.actors.controller_manager``):
the component on its own asyncio loop thread under leader election; a fresh
component object each time the replica becomes leader; if the loop dies the
actor process exits so Ray restarts it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Awaitable, Callable

from ..client import Client
from ..client.leaderelection import LeaderElectionConfig, LeaderElector
from .process import freeze_startup_heap

log = logging.getLogger("raykube.component")


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", help="API server URL, e.g. https://127.0.0.1:6443")
    p.add_argument("--token-file", help="file holding the bearer token")
    p.add_argument("--token", help="bearer token (prefer --token-file)")
    p.add_argument("--ca", help="CA certificate (PEM) of the API server")
    p.add_argument("--kubeconfig", help="use this kubeconfig instead of --api/--token-file/--ca")
    p.add_argument(
        "--leader-elect",
        default="true",
        choices=["true", "false"],
        help="take part in Lease-based leader election (default true)",
    )
    p.add_argument("--leader-elect-identity", default="", help="holder identity (default host_uuid)")
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    p.add_argument("--log-level", default="INFO")


def client_from_args(args: argparse.Namespace, user_agent: str) -> Client:
    if args.kubeconfig:
        return Client.from_kubeconfig(args.kubeconfig, user_agent=user_agent)
    if not args.api:
        raise SystemExit("--api (or --kubeconfig) is required")
    token = args.token
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    return Client(args.api, token=token, ca_file=args.ca, user_agent=user_agent, retry_deadline=60.0)


def election_from_args(args: argparse.Namespace, lease_name: str) -> LeaderElectionConfig | None:
    if args.leader_elect != "true":
        return None
    return LeaderElectionConfig(
        lease_name,
        identity=args.leader_elect_identity,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
    )


async def run_with_election(
    client: Client,
    election: LeaderElectionConfig | None,
    work: Callable[[], Awaitable[Any]],
    *,
    on_elector: Callable[[LeaderElector], None] | None = None,
) -> None:
    """Run ``work()`` (a fresh component each time) while leading; forever."""
    if election is None:
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("component failed; restarting it")
                await asyncio.sleep(1.0)
    elector = LeaderElector(client, election)
    if on_elector is not None:
        on_elector(elector)
    await elector.run(work)


def main_loop(coro_factory: Callable[[], Awaitable[Any]]) -> int:
    """Run until SIGINT/SIGTERM (then cancel cleanly, releasing the Lease)."""

    async def runner() -> None:
        task = asyncio.ensure_future(coro_factory())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(runner())
    return 0


class ComponentRunner:
    """Base of the Ray actor classes. Subclasses set ``component`` and ``lease_name`` and implement
    ``make_component(client)`` -> an object with ``async run()`` (and optionally ``snapshot()``).
    The identity ``<host>_<component>-<replica>`` is stable across restarts of the actor."""

    component = "component"
    lease_name = "component"

    def __init__(
        self,
        server: str,
        token: str,
        ca_pem: str | None = None,
        *,
        ca_file: str | None = None,
        replica: int = 0,
        state_dir: str | None = None,
        leader_elect: bool = True,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        self.server = server
        self._token = token
        self.ca_pem = ca_pem
        self.ca_file = ca_file
        self.replica = replica
        self.name = f"{self.component}-{replica}"
        self.identity = f"{socket.gethostname()}_{self.name}"
        self.leader_elect = leader_elect
        self.election = (lease_duration, renew_deadline, retry_period)
        self.started_at = time.time()
        if state_dir:
            from .process import bump_incarnation

            self.incarnation = bump_incarnation(os.path.join(state_dir, "actors", f"{self.name}.incarnation"))
        else:
            self.incarnation = 1
        self.error: str | None = None
        self.current: Any = None
        self.elector: Any = None
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._main_task: asyncio.Task[Any] | None = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def make_component(self, client: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_info(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------ loop thread
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - report and let Ray restart us
            self.error = repr(exc)
            logging.getLogger("raykube.actors").exception("%s failed", self.name)
            self._ready.set()
            os._exit(1)

    async def _main(self) -> None:
        self._main_task = asyncio.current_task()
        client = Client(
            self.server,
            token=self._token,
            ca_file=self.ca_file,
            ca_data=self.ca_pem,
            user_agent=f"raykube-{self.component}",
            retry_deadline=60.0,
        )
        election = None
        if self.leader_elect:
            ld, rd, rp = self.election
            election = LeaderElectionConfig(
                self.lease_name, identity=self.identity, lease_duration=ld, renew_deadline=rd, retry_period=rp
            )

        async def work() -> None:
            self.current = self.make_component(client)
            freeze_startup_heap()
            await self.current.run()

        # Fill the request pool while the cluster is quiet (see cluster.client.rest); best effort.
        warm = asyncio.get_running_loop().create_task(client.open_connections())

        def got_elector(e: Any) -> None:
            self.elector = e

        self._ready.set()
        logging.getLogger("raykube.actors").info(
            "%s (incarnation %d) started as %s", self.name, self.incarnation, self.identity
        )
        try:
            await run_with_election(client, election, work, on_elector=got_elector)
        finally:
            warm.cancel()
            await client.close()

    # ------------------------------------------------------------ remote API
    def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self.name} not started after {timeout} s")
        if self.error:
            raise RuntimeError(self.error)
        return self.info()

    def is_leader(self) -> bool:
        if not self.leader_elect:
            return True
        return bool(self.elector is not None and self.elector.is_leader)

    def info(self) -> dict[str, Any]:
        snap: dict[str, Any] = {}
        cur = self.current
        if cur is not None and hasattr(cur, "snapshot"):
            try:
                snap = cur.snapshot()
            except Exception as exc:  # noqa: BLE001 - racing the loop thread: best effort
                snap = {"error": repr(exc)}
        return {
            "name": self.name,
            "component": self.component,
            "actor_pid": os.getpid(),
            "identity": self.identity,
            "ready": self._ready.is_set() and not self.error,
            "leader": self.is_leader(),
            "incarnation": self.incarnation,
            "started_at": self.started_at,
            "server": self.server,
            "error": self.error,
            "stats": snap,
            **self.extra_info(),
        }

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop acting and release the Lease (so a standby takes over at once); the actor stays up."""
        task = self._main_task
        if task is not None:
            self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout)
        return not self._thread.is_alive()
