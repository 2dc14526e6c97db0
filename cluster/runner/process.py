"""Process helpers shared by components and their actors: children bound to our life
(PR_SET_PDEATHSIG), start counts across restarts, and freezing the startup heap.

Concurrency: plain functions; `bump_incarnation` is called once per process start.
"""

from __future__ import annotations

import gc
import os
import sys

# Run as ``python -c PDEATHSIG_EXEC <parent pid> <argv...>``: ask the kernel to
# SIGKILL us when the parent *thread* dies (PR_SET_PDEATHSIG survives execve),
# refuse to start if the parent is already gone, then become ``argv``. So a
# killed actor never leaves an orphan holding the member's ports and files.
PDEATHSIG_EXEC = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(70)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def exec_with_pdeathsig(argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` as a child bound to this process's life."""
    return [sys.executable, "-S", "-c", PDEATHSIG_EXEC, str(os.getpid()), *argv]


def bump_incarnation(path: str) -> int:
    """Count starts of an actor in a file (1 on the first start, 2 after one restart, ...)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as f:
            n = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        n = 0
    n += 1
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(n))
    os.replace(tmp, path)
    return n


def freeze_startup_heap() -> None:
    """Move every object allocated so far (Ray, aiohttp, our modules, the first lists) out of the cyclic
    garbage collector's reach (``gc.freeze``).

    A Ray worker starts with ~1M long-lived objects; every full (gen-2) collection walks all of them,
    which measured 25-76 ms per pause in the API server actor and 0.5 s in a benchmark process that
    imports Ray, on this 2-core machine, in the middle of a burst of pod creations. Frozen objects are
    still freed by reference counting; only cycles among them would be kept, and startup state has none
    worth reclaiming."""
    gc.collect()
    gc.freeze()
