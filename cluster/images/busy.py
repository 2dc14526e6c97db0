"""``raykube/busy``: a CPU-busy worker.

``WORKERS`` processes (default 1, the first is this process; the others are
forked into the same process group) each spin at ``DUTY`` (0..1, default 1.0)
of one core, in 100 ms slices. ``MEMORY`` (a Kubernetes quantity such as
``64Mi``; default 0) is allocated and touched in ``MEMORY_STEP`` chunks
(``8Mi``) every ``STEP_INTERVAL`` seconds (0.05) and held; so a container
with a memory limit below it is OOM-killed. ``DURATION`` seconds (0 =
forever) then exit 0. Args ``--workers --duty --memory --memory-step
--duration`` override the env. Prints a progress line every few seconds.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def parse_bytes(s: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kMG]i?|)\s*", s or "0")
    if not m:
        raise ValueError(f"bad memory quantity {s!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def spin(
    duty: float, duration: float, hold: list[bytearray], memory: int, step: int, interval: float, report: bool
) -> None:
    t0 = time.monotonic()
    last = t0
    while duration <= 0 or time.monotonic() - t0 < duration:
        held = sum(len(b) for b in hold)
        if held < memory:
            chunk = bytearray(min(step, memory - held))
            for i in range(0, len(chunk), 4096):  # touch every page so it counts as RSS
                chunk[i] = 1
            hold.append(chunk)
            if report:
                print(f"holding {(held + len(chunk)) / 2**20:.0f} MiB", flush=True)
            time.sleep(interval)
            continue
        slice_start = time.monotonic()
        while time.monotonic() - slice_start < 0.1 * duty:
            pass
        if duty < 1.0:
            time.sleep(0.1 * (1.0 - duty))
        if report and time.monotonic() - last >= 5:
            last = time.monotonic()
            print(f"busy for {last - t0:.0f} s (duty {duty:g}, holding {held / 2**20:.0f} MiB)", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    opt = {
        "workers": os.environ.get("WORKERS") or "1",
        "duty": os.environ.get("DUTY") or "1.0",
        "memory": os.environ.get("MEMORY") or "0",
        "memory-step": os.environ.get("MEMORY_STEP") or "8Mi",
        "step-interval": os.environ.get("STEP_INTERVAL") or "0.05",
        "duration": os.environ.get("DURATION") or "0",
    }
    for i, a in enumerate(args):
        if a.startswith("--"):
            k, eq, v = a[2:].partition("=")
            if k not in opt:
                print(f"raykube/busy: unknown option {a} (know: {', '.join('--' + o for o in opt)})", flush=True)
                return 2
            opt[k] = v if eq else (args[i + 1] if i + 1 < len(args) else "")
    workers = int(opt["workers"])
    duty = min(1.0, max(0.0, float(opt["duty"])))
    duration, interval = float(opt["duration"]), float(opt["step-interval"])
    memory, step = parse_bytes(opt["memory"]), max(4096, parse_bytes(opt["memory-step"]))
    print(
        f"raykube/busy {os.environ.get('POD_NAME', '')}: {workers} worker(s) at duty {duty:g}, "
        f"memory {memory / 2**20:.0f} MiB",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    children = []
    for _ in range(max(0, workers - 1)):
        pid = os.fork()
        if pid == 0:
            spin(duty, duration, [], 0, step, interval, False)
            os._exit(0)
        children.append(pid)
    spin(duty, duration, [], memory, step, interval, True)
    for pid in children:
        os.waitpid(pid, 0)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
