"""Processes on this machine: session members, liveness, and stopping them (SIGTERM, then SIGKILL).

The Ray head that ``up`` starts runs in a session of its own, so its session id names every process
of the head and of its workers; ``down`` stops exactly those.

Concurrency: plain blocking functions; they only read ``/proc`` and signal processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil


def proc_sid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return int(s[s.rindex(")") + 2 :].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def session_pids(sid: int) -> list[int]:
    """Every live process of session ``sid`` (the Ray head's processes and its workers)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid() and proc_sid(int(name)) == sid:
            out.append(int(name))
    return sorted(out)


def pid_alive(pid: int) -> bool:
    """Is ``pid`` still running? A zombie is not, unless it is the leader of a process whose other threads
    are still exiting: a SIGKILLed multi-threaded process shows its leader as a zombie while the rest still
    hold its files and sockets (a client writing to such a socket gets a reset later)."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.Error:
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def terminate_pids(pids: list[int], timeout: float = 8.0) -> list[int]:
    """SIGTERM, wait, SIGKILL; return PIDs still alive (should be none)."""
    procs = []
    for pid in set(pids):
        if pid == os.getpid():
            continue
        try:
            procs.append(psutil.Process(pid))
        except psutil.Error:
            pass
    for pr in procs:
        with contextlib.suppress(psutil.Error):
            pr.send_signal(signal.SIGCONT)
            pr.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for pr in alive:
        with contextlib.suppress(psutil.Error):
            pr.kill()
    _, alive = psutil.wait_procs(alive, timeout=5)
    return [pr.pid for pr in alive if pid_alive(pr.pid)]


def process_start_time() -> float:
    """When this process was created (the start of a ``raykube`` command, for its timings)."""
    try:
        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001
        return time.time()
