"""Start, stop, kill and restart member processes of a local cluster.

``raftstore up``/``down``, the tests, the benchmarks and the consensus lab all
drive members through this one class, always by PID: a member's PID file is
only trusted if that process's command line names this data directory, so a
recycled PID is never signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil

from .config import ClusterConfig, RaftTuning


def port_free(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            return False
    return True


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def find_free_base_port(start: int = 10000, span: int = 30) -> int:
    """A base port whose member ports (base .. base+span) are all free.

    Chosen below the kernel's ephemeral range: a port in that range that is
    free now can be taken a moment later as the source port of any outgoing
    connection, and a member then fails to bind."""
    import random

    lo, hi = _ephemeral_range()
    end = lo - span if lo - span > start + 1000 else 60000 - span
    rnd = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        base = rnd.randrange(start, end, 10)
        if lo <= base <= hi or lo <= base + span <= hi:
            continue
        if all(port_free(f"127.0.0.1:{base + i}") for i in range(span)):
            return base
    raise RuntimeError("no free port range found on 127.0.0.1")


def _answers_as(addr: str, name: str) -> bool:
    """Does the raftstore member at ``addr`` answer a status request as ``name``?"""
    from .protocol import decode_body, encode

    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5) as s:
            s.settimeout(0.5)
            s.sendall(encode({"id": 1, "op": "status"}))
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                chunk = s.recv(65536)
                if not chunk:
                    return False
                buf += chunk
            reply = decode_body(buf[4 : 4 + int.from_bytes(buf[:4], "big")])
    except (OSError, ValueError, Exception):  # noqa: BLE001 - anything else is "not (yet) our member"
        return False
    return (reply.get("result") or {}).get("name") == name


class LocalCluster:
    def __init__(self, data_dir: str, config: ClusterConfig | None = None) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.config = config or ClusterConfig.load(self.data_dir)

    @classmethod
    def create(
        cls, data_dir: str, *, members: int = 3, base_port: int | None = None, tuning: RaftTuning | None = None
    ) -> "LocalCluster":
        data_dir = os.path.abspath(data_dir)
        if os.path.exists(os.path.join(data_dir, "cluster.json")):
            config = ClusterConfig.load(data_dir)
        else:
            config = ClusterConfig.local(members, base_port or find_free_base_port())
            if tuning is not None:
                config.tuning = tuning
            config.save(data_dir)
        return cls(data_dir, config)

    @property
    def endpoints(self) -> list[str]:
        return self.config.endpoints

    def member_dir(self, name: str) -> str:
        return os.path.join(self.data_dir, name)

    def pid(self, name: str) -> int | None:
        """The live PID of member ``name``, or None."""
        try:
            with open(os.path.join(self.member_dir(name), "member.pid")) as f:
                pid = int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None
        child = getattr(self, "_children", {}).get(name)
        if child is not None and child.pid == pid:
            # Our own child: right after fork it still shows our command
            # line, so trust the Popen handle instead of the cmdline check.
            return pid if child.poll() is None else None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            cmd = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        if self.data_dir in cmd and name in cmd:
            return pid
        return None

    def start_member(self, name: str, *, extra_args: list[str] | None = None) -> int:
        existing = self.pid(name)
        if existing:
            return existing
        mdir = self.member_dir(name)
        os.makedirs(mdir, exist_ok=True)
        pidfile = os.path.join(mdir, "member.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        log = open(os.path.join(mdir, "member.log"), "ab")
        cmd = [sys.executable, "-m", "raftstore.member", "--data-dir", self.data_dir, "--name", name]
        cmd += extra_args or []
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True
        )
        log.close()
        # The member writes its own PID file once it serves; until then we
        # record the child's PID so a crash during start-up is still ours.
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(proc.pid))
        os.replace(pidfile + ".tmp", pidfile)
        self._children = getattr(self, "_children", {})
        self._children[name] = proc
        return proc.pid

    def start(self, *, extra_args: dict[str, list[str]] | None = None) -> dict[str, int]:
        return {
            m.name: self.start_member(m.name, extra_args=(extra_args or {}).get(m.name)) for m in self.config.members
        }

    def wait_serving(self, timeout: float = 20.0) -> None:
        """Wait until every member answers ``status`` with its own name on its client port
        (an open port alone could belong to another process)."""
        deadline = time.monotonic() + timeout
        pending = {m.name: m.client for m in self.config.members}
        while pending and time.monotonic() < deadline:
            for name, addr in list(pending.items()):
                if _answers_as(addr, name):
                    del pending[name]
                    continue
                if self.pid(name) is None:
                    raise RuntimeError(
                        f"member {name} exited during start-up; see {os.path.join(self.member_dir(name), 'member.log')}"
                    )
            time.sleep(0.05)
        if pending:
            raise TimeoutError(f"members not serving after {timeout} s: {', '.join(pending)}")

    def signal_member(self, name: str, sig: int) -> bool:
        pid = self.pid(name)
        if pid is None:
            return False
        os.kill(pid, sig)
        return True

    def kill(self, name: str) -> None:
        """SIGKILL a member and reap it."""
        pid = self.pid(name)
        if pid is None:
            return
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)
        self._reap(name, pid, 10.0)

    def pause(self, name: str) -> None:
        self.signal_member(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.signal_member(name, signal.SIGCONT)

    def stop_member(self, name: str, timeout: float = 10.0) -> None:
        pid = self.pid(name)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not self._reap(name, pid, timeout):
            os.kill(pid, signal.SIGKILL)
            self._reap(name, pid, 5.0)

    def _reap(self, name: str, pid: int, timeout: float) -> bool:
        child = getattr(self, "_children", {}).get(name)
        if child is not None and child.pid == pid:
            try:
                child.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        try:
            psutil.Process(pid).wait(timeout)
            return True
        except psutil.NoSuchProcess:
            return True
        except psutil.TimeoutExpired:
            return False

    def stop(self) -> None:
        for m in self.config.members:
            self.stop_member(m.name)

    def kill_all(self) -> None:
        for m in self.config.members:
            self.kill(m.name)

    def restart(self, name: str, *, extra_args: list[str] | None = None) -> int:
        self.kill(name)
        return self.start_member(name, extra_args=extra_args)
