"""Fault injection for raftstore members, driven from outside and without root.

Two kinds of faults:

* **Process faults** need the members' processes, i.e. a
  :class:`~raftstore.localcluster.LocalCluster` (always addressed by PID,
  never by name pattern): SIGKILL and restart, pause (SIGSTOP) and resume
  (SIGCONT), kill the leader.
* **Admin faults** go through each member's admin endpoint, so they also
  work against a cluster given only by ``--endpoints``: partitions (the
  member's transport silently drops Raft messages to / from the named peers,
  one way or both) and a slow disk (a delay added to every fsync).

Partitions are kept as *grudges* (Jepsen's term): ``grudge[node]`` is the set
of nodes whose messages ``node`` drops.  Several partitions may be active at
once under different tags; the members get their union.  A message from
``a`` to ``b`` that ``b`` holds a grudge against is dropped at both ends
(``a`` has ``b`` in ``drop_to``, ``b`` has ``a`` in ``drop_from``), so the
cut holds even while one side restarts.  A member that was down or paused
while a partition changed is brought up to date when it comes back, because
a restarted member starts with no partition at all.

:meth:`Faults.heal_all` undoes everything: resumes paused members, restarts
killed ones, heals every partition and removes every fsync delay.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

from raftstore.client import RaftstoreClient, RaftstoreError
from raftstore.localcluster import LocalCluster

log = logging.getLogger("raftstore.chaos.faults")

Grudge = dict[str, set[str]]


class FaultError(RuntimeError):
    pass


class FaultUnsupported(FaultError):
    """A process fault was asked for without a local cluster (``--endpoints``)."""


def drop_sets(grudge: Mapping[str, set[str]], names: Sequence[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Per member, the ``(drop_to, drop_from)`` lists that realise ``grudge``."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for m in names:
        drop_from = sorted(n for n in grudge.get(m, set()) if n != m)
        drop_to = sorted(n for n in names if n != m and m in grudge.get(n, set()))
        out[m] = (drop_to, drop_from)
    return out


def union_grudges(grudges: Sequence[Mapping[str, set[str]]]) -> Grudge:
    out: Grudge = {}
    for g in grudges:
        for k, v in g.items():
            out.setdefault(k, set()).update(v)
    return out


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _port_open(hostport: str, timeout: float = 0.2) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


class Faults:
    """Fault injection on a set of members.

    ``members`` maps member name -> client endpoint.  ``cluster`` (optional)
    enables the process faults; ``extra_args`` are the per-member command-line
    flags used when a killed member is restarted (e.g. the planted bug's
    ``--unsafe-local-reads``).  ``admin_timeout`` bounds each admin call.
    """

    def __init__(
        self,
        members: Mapping[str, str],
        *,
        cluster: LocalCluster | None = None,
        extra_args: Mapping[str, list[str]] | None = None,
        admin_timeout: float = 1.0,
    ) -> None:
        self.members = dict(members)
        self.cluster = cluster
        self.extra_args = {k: list(v) for k, v in (extra_args or {}).items()}
        self.client = RaftstoreClient(list(self.members.values()), request_timeout=admin_timeout, timeout=admin_timeout)
        self.admin_timeout = admin_timeout
        self.killed: set[str] = set()
        self.paused: set[str] = set()
        self.grudges: dict[str, Grudge] = {}
        self.fsync_delay: dict[str, float] = {}
        self._stale: set[str] = set()  # members whose partition state could not be set
        self.log: list[dict[str, Any]] = []  # every action, for debugging and the report

    # -- construction -------------------------------------------------------

    @classmethod
    def for_cluster(
        cls, cluster: LocalCluster, *, extra_args: Mapping[str, list[str]] | None = None, admin_timeout: float = 1.0
    ) -> "Faults":
        return cls(
            {m.name: m.client for m in cluster.config.members},
            cluster=cluster,
            extra_args=extra_args,
            admin_timeout=admin_timeout,
        )

    @classmethod
    async def for_endpoints(cls, endpoints: Sequence[str], *, admin_timeout: float = 1.0) -> "Faults":
        """Admin faults only: member names come from each endpoint's status."""
        probe = RaftstoreClient(list(endpoints), request_timeout=3.0, timeout=3.0)
        try:
            members = {}
            for ep in endpoints:
                st = await probe.status(ep)
                members[str(st["name"])] = ep
        finally:
            await probe.close()
        return cls(members, admin_timeout=admin_timeout)

    async def close(self) -> None:
        await self.client.close()

    # -- queries ------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.members)

    @property
    def can_signal(self) -> bool:
        """True when process faults (kill, pause) are possible."""
        return self.cluster is not None

    def is_up(self, name: str) -> bool:
        """Neither killed nor paused by us."""
        return name not in self.killed and name not in self.paused

    def _note(self, action: str, **details: Any) -> None:
        self.log.append({"time": time.time(), "action": action, **details})

    def _need_cluster(self, what: str) -> LocalCluster:
        if self.cluster is None:
            raise FaultUnsupported(
                f"{what} needs the member processes; with --endpoints only admin-endpoint faults "
                "(partitions, slow disk) are possible"
            )
        return self.cluster

    async def statuses(self) -> dict[str, dict[str, Any]]:
        """Status of every member we can reach (paused and killed ones are skipped)."""

        async def one(name: str) -> tuple[str, dict[str, Any] | None]:
            if not self.is_up(name):
                return name, None
            try:
                return name, await self.client.status(self.members[name])
            except (RaftstoreError, OSError, asyncio.TimeoutError):
                return name, None

        rows = await asyncio.gather(*(one(n) for n in self.names))
        return {n: st for n, st in rows if st is not None}

    async def leader(self, timeout: float = 3.0) -> str | None:
        """The member that is leader in the highest term any member reports, or None.

        A deposed leader cut off by a partition may still call itself leader
        for a while; the highest term wins."""
        deadline = time.monotonic() + timeout
        while True:
            sts = await self.statuses()
            leaders = [(st.get("term", 0), n) for n, st in sts.items() if st.get("role") == "leader"]
            if leaders:
                max_term = max(st.get("term", 0) for st in sts.values())
                best = max(leaders)
                if best[0] >= max_term or time.monotonic() >= deadline:
                    return best[1]
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)

    # -- process faults -------------------------------------------------------

    async def kill(self, name: str) -> None:
        """SIGKILL ``name`` (reaped); it stays down until :meth:`start`."""
        cluster = self._need_cluster("kill")
        await asyncio.to_thread(cluster.kill, name)
        self.killed.add(name)
        self.paused.discard(name)  # kill sends SIGCONT first
        self._note("kill", member=name)

    async def start(self, name: str, *, timeout: float = 20.0) -> None:
        """Restart a killed member and wait until it serves clients again, then
        give it the current partition and fsync delay."""
        cluster = self._need_cluster("restart")
        pid = await asyncio.to_thread(cluster.start_member, name, extra_args=self.extra_args.get(name))
        self.killed.discard(name)
        self._note("start", member=name, pid=pid)
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(_port_open, self.members[name]):
            if time.monotonic() > deadline:
                raise FaultError(f"{name} did not serve within {timeout} s after restart")
            # By PID, not cluster.pid(): right after the fork the child's
            # command line is still ours, and cluster.pid() says None.
            if not _alive(pid):
                raise FaultError(f"{name} exited during restart; see its member.log")
            await asyncio.sleep(0.05)
        await self._apply_member(name)

    async def restart(self, name: str) -> None:
        await self.kill(name)
        await self.start(name)

    async def kill_leader(self) -> str | None:
        leader = await self.leader()
        if leader is not None:
            await self.kill(leader)
        return leader

    async def pause(self, name: str) -> None:
        cluster = self._need_cluster("pause")
        await asyncio.to_thread(cluster.pause, name)
        self.paused.add(name)
        self._note("pause", member=name)

    async def resume(self, name: str) -> None:
        cluster = self._need_cluster("resume")
        await asyncio.to_thread(cluster.resume, name)
        self.paused.discard(name)
        self._note("resume", member=name)
        if name in self._stale:
            await self._apply_member(name)

    # -- admin faults ---------------------------------------------------------

    def current_grudge(self) -> Grudge:
        return union_grudges(list(self.grudges.values()))

    async def _admin(self, name: str, op: str, **fields: Any) -> bool:
        try:
            await self.client.admin(self.members[name], op, **fields)
            return True
        except (RaftstoreError, OSError, asyncio.TimeoutError) as exc:
            log.info("admin %s on %s failed: %s", op, name, exc)
            return False

    async def _apply_member(self, name: str) -> bool:
        """Push the current partition and fsync delay to one member."""
        if not self.is_up(name):
            self._stale.add(name)
            return False
        drop_to, drop_from = drop_sets(self.current_grudge(), self.names)[name]
        ok = await self._admin(name, "partition", drop_to=drop_to, drop_from=drop_from)
        delay = self.fsync_delay.get(name, 0.0)
        ok = await self._admin(name, "fsync_delay", seconds=delay) and ok
        if ok:
            self._stale.discard(name)
        else:
            self._stale.add(name)
        return ok

    async def _apply_partitions(self) -> None:
        sets = drop_sets(self.current_grudge(), self.names)

        async def one(name: str) -> None:
            if not self.is_up(name):
                self._stale.add(name)  # applied when it comes back
                return
            drop_to, drop_from = sets[name]
            if await self._admin(name, "partition", drop_to=drop_to, drop_from=drop_from):
                self._stale.discard(name)
            else:
                self._stale.add(name)

        await asyncio.gather(*(one(n) for n in self.names))

    async def partition(self, grudge: Mapping[str, set[str]], *, tag: str = "partition") -> None:
        """Add a partition (a grudge) under ``tag``; members get the union of all tags."""
        unknown = {n for k, v in grudge.items() for n in ({k} | set(v))} - set(self.names)
        if unknown:
            raise ValueError(f"unknown members in partition: {sorted(unknown)}")
        self.grudges[tag] = {k: set(v) for k, v in grudge.items()}
        self._note("partition", tag=tag, grudge={k: sorted(v) for k, v in grudge.items()})
        await self._apply_partitions()

    async def cut(
        self, sources: Sequence[str], dests: Sequence[str], *, both_ways: bool = True, tag: str = "cut"
    ) -> None:
        """Drop Raft messages from ``sources`` to ``dests`` (and back, if ``both_ways``)."""
        grudge: Grudge = {}
        for d in dests:
            grudge.setdefault(d, set()).update(s for s in sources if s != d)
        if both_ways:
            for s in sources:
                grudge.setdefault(s, set()).update(d for d in dests if d != s)
        await self.partition(grudge, tag=tag)

    async def isolate(self, name: str, *, tag: str = "isolate") -> None:
        others = [n for n in self.names if n != name]
        await self.cut([name], others, both_ways=True, tag=tag)

    async def heal(self, *, tag: str | None = None) -> None:
        """Remove the partition ``tag`` (every partition if None)."""
        if tag is None:
            self.grudges.clear()
        else:
            self.grudges.pop(tag, None)
        self._note("heal", tag=tag)
        await self._apply_partitions()

    async def slow_disk(self, name: str, seconds: float) -> None:
        """Delay every fsync of ``name`` by ``seconds`` (0 removes the delay)."""
        if seconds > 0:
            self.fsync_delay[name] = seconds
        else:
            self.fsync_delay.pop(name, None)
        self._note("fsync_delay", member=name, seconds=seconds)
        if self.is_up(name):
            if not await self._admin(name, "fsync_delay", seconds=seconds):
                self._stale.add(name)
        else:
            self._stale.add(name)

    # -- healing --------------------------------------------------------------

    async def heal_all(self, *, timeout: float = 30.0) -> list[str]:
        """Resume, restart, heal and un-slow everything; returns problems left
        (empty when every member is back with no fault in place)."""
        problems: list[str] = []
        for name in sorted(self.paused):
            try:
                await self.resume(name)
            except Exception as exc:
                problems.append(f"resume {name}: {exc}")
        for name in sorted(self.killed):
            try:
                await self.start(name)
            except Exception as exc:
                problems.append(f"restart {name}: {exc}")
        if self.cluster is not None:
            # Anything that died on its own (or was never restarted) comes back too.
            for name in self.names:
                if self.cluster.pid(name) is None:
                    try:
                        await self.start(name)
                    except Exception as exc:
                        problems.append(f"restart {name}: {exc}")
        self.grudges.clear()
        self.fsync_delay.clear()
        self._note("heal_all")
        deadline = time.monotonic() + timeout
        pending = set(self.names)
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                ok = await self._admin(name, "heal")
                ok = ok and await self._admin(name, "fsync_delay", seconds=0.0)
                if ok:
                    pending.discard(name)
            if pending:
                await asyncio.sleep(0.2)
        self._stale = set(pending)
        problems.extend(f"could not heal {n} over its admin endpoint" for n in sorted(pending))
        return problems
