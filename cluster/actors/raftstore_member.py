"""The raftstore member actor: one Ray actor supervising one member process.

Why a child process and not ``run_member`` on the actor's own event loop:

- the member is exactly the process ``raftstore serve`` runs (``python -m
  raftstore.member --data-dir D --name mN``) with its PID file, log and
  event log, so raftstore's own tools, the consensus lab's fault injection
  (SIGKILL/SIGSTOP a member by PID) and its durability guarantees apply
  unchanged;
- its Raft thread does not share a GIL with Ray's core-worker threads and
  its ``sys.setswitchinterval`` / signal handlers do not fight the worker's;
- it runs at full speed: a Ray actor method call costs ~1 ms, the member's
  client port is direct TCP.

Lifecycle (one recovery path, Ray's):

- ``__init__`` kills any stale member of a previous incarnation (matched by
  PID file *and* command line), then starts the child from a supervising
  thread, bound to that thread with ``PR_SET_PDEATHSIG=SIGKILL``;
- child exits unexpectedly -> the actor calls ``os._exit(1)`` -> Ray sees a
  worker failure and restarts the actor (``max_restarts=-1``) -> a new child
  rejoins from the same data directory (journal + dump + term/vote);
- actor killed (``ray.kill(no_restart=False)``, SIGKILL of its PID, node
  failure) -> the kernel SIGKILLs the child -> Ray restarts the actor -> same.
- ``stop()`` (``raykube down``) stops the child with SIGTERM first, so the
  member shuts down cleanly, and the actor is then killed without restart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import psutil

from raftstore.config import ClusterConfig

from ..runner.process import bump_incarnation, exec_with_pdeathsig


def member_pid(mdir: str, data_dir: str, name: str) -> int | None:
    """The PID in ``member.pid`` if that process is really this member (LocalCluster's rule)."""
    try:
        with open(os.path.join(mdir, "member.pid")) as f:
            pid = int(f.read().strip())
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmd = proc.cmdline()
    except (OSError, ValueError, psutil.Error):
        return None
    if data_dir in cmd and name in cmd and "raftstore.member" in cmd:
        return pid
    return None


class RaftstoreMemberActor:
    def __init__(self, data_dir: str, name: str) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.name = name
        self.mdir = os.path.join(self.data_dir, name)
        os.makedirs(self.mdir, exist_ok=True)
        self.spec = ClusterConfig.load(self.data_dir).member(name)
        self.incarnation = bump_incarnation(os.path.join(self.mdir, "actor-incarnation"))
        self.started_at = time.time()
        self._stopping = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._exit_code: int | None = None
        self._kill_stale()
        spawned = threading.Event()
        self._thread = threading.Thread(target=self._supervise, args=(spawned,), name=f"member-{name}", daemon=True)
        self._thread.start()
        if not spawned.wait(30):
            raise RuntimeError(f"member {name}: child did not start")
        if self._proc is None:
            raise RuntimeError(f"member {name}: could not start the member process")

    # ------------------------------------------------------------ private
    def _kill_stale(self) -> None:
        pid = member_pid(self.mdir, self.data_dir, self.name)
        if pid is None:
            return
        print(f"member {self.name}: killing stale member process {pid}", file=sys.stderr, flush=True)
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
            psutil.Process(pid).wait(10)
        except (OSError, psutil.Error):
            pass

    def _supervise(self, spawned: threading.Event) -> None:
        # This thread is the child's parent for PR_SET_PDEATHSIG: it must live as long as the child.
        try:
            log = open(os.path.join(self.mdir, "member.log"), "ab")
            pidfile = os.path.join(self.mdir, "member.pid")
            if os.path.exists(pidfile):
                os.unlink(pidfile)
            cmd = exec_with_pdeathsig(
                [sys.executable, "-m", "raftstore.member", "--data-dir", self.data_dir, "--name", self.name]
            )
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, close_fds=True, cwd=self.mdir
            )
            log.close()
            # Same PID after execve; the member rewrites the file once it serves.
            with open(pidfile, "w") as f:
                f.write(str(self._proc.pid))
        finally:
            spawned.set()
        if self._proc is None:
            return
        rc = self._proc.wait()
        self._exit_code = rc
        if self._stopping:
            return
        print(
            f"member {self.name}: process {self._proc.pid} exited with {rc}; exiting the actor so Ray restarts it",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)

    def _serving(self) -> bool:
        host, port = self.spec.client.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=0.2):
                return True
        except OSError:
            return False

    # ------------------------------------------------------------ remote API
    def ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """Block until the member's client port accepts connections; return ``info()``."""
        deadline = time.monotonic() + timeout
        while not self._serving():
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(
                    f"member {self.name} exited during start-up; see {os.path.join(self.mdir, 'member.log')}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"member {self.name} not serving on {self.spec.client} after {timeout} s")
            time.sleep(0.02)
        return self.info()

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "component": "raftstore",
            "actor_pid": os.getpid(),
            "member_pid": self._proc.pid if self._proc else None,
            "alive": self._proc is not None and self._proc.poll() is None,
            "incarnation": self.incarnation,
            "started_at": self.started_at,
            "client": self.spec.client,
            "raft": self.spec.raft,
            "metrics": self.spec.metrics,
            "data_dir": self.mdir,
        }

    def signal_member(self, sig: int = int(signal.SIGKILL)) -> int:
        """Chaos: signal the member process (SIGKILL -> this actor exits and Ray restarts it)."""
        assert self._proc is not None
        os.kill(self._proc.pid, sig)
        return self._proc.pid

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the member cleanly (SIGTERM, then SIGKILL after ``timeout``); the actor stays up."""
        self._stopping = True
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return self._exit_code
        try:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            self._thread.join(timeout)
        except OSError:
            pass
        if proc.poll() is None:
            proc.kill()
            self._thread.join(5)
        return proc.poll()
