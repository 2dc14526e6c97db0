"""Container resource limits: cgroup v2, cgroup v1, or RSS polling.

``detect(node, mode)`` picks one ``Limiter`` per kubelet:

- ``cgroup-v2``: a delegated, writable cgroup v2 tree with the ``memory`` and
  ``cpu`` controllers (``memory.max``, ``cpu.max``, ``cpu.weight``); the
  kernel OOM-kills a container over its limit and ``memory.events`` counts it.
- ``cgroup-v1``: writable v1 ``memory`` and ``cpu`` hierarchies
  (``memory.limit_in_bytes``, ``cpu.cfs_quota_us``/``cpu.cfs_period_us``,
  ``cpu.shares``); OOM kills are counted in ``memory.oom_control``.
- ``rss-poll``: no usable cgroups. Memory limits are enforced by the runtime
  polling the resident set size of each container's process tree with psutil
  every ``poll_interval`` seconds and SIGKILLing the process group when it is
  over the limit (reported as ``OOMKilled``); CPU limits are not enforced.
  ``RLIMIT_AS`` is not used: it counts virtual address space and breaks
  Python and threaded programs long before they use real memory.

A kubelet's cgroups live in ``<base>/raykube/<node>-<kubelet pid>/<container
id>`` where ``<base>`` is the kubelet's own cgroup (its delegation point).
Processes enter their cgroup before ``exec`` (``preexec_fn`` writes
``cgroup.procs``), so no allocation escapes the limit. ``sweep_stale()``
removes the empty directories of kubelets that are gone (a killed node).
``mode``: ``auto`` (v2, then v1, then rss-poll), ``v2``, ``v1``, ``off``
(= rss-poll).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

log = logging.getLogger("raykube.runtime.cgroups")

V1_MOUNT = "/sys/fs/cgroup"
CFS_PERIOD_US = 100_000


@dataclass
class ContainerCgroup:
    """The cgroup directories of one container (one per hierarchy) and how to read its OOM count."""

    paths: list[str]
    memory_path: str | None
    version: int
    oom_baseline: int = 0

    @property
    def procs_files(self) -> list[str]:
        return [os.path.join(p, "cgroup.procs") for p in self.paths]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _own_cgroups() -> dict[str, str]:
    """controller (or '' for v2) -> path of this process's cgroup."""
    out: dict[str, str] = {}
    try:
        for line in _read("/proc/self/cgroup").splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            _, ctrls, path = parts
            if ctrls == "":
                out[""] = path
            for c in ctrls.split(","):
                if c:
                    out[c] = path
    except OSError:
        pass
    return out


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, options) of cgroup file systems."""
    out = []
    try:
        for line in _read("/proc/self/mounts").splitlines():
            f = line.split()
            if len(f) >= 4 and f[2] in ("cgroup", "cgroup2"):
                out.append((f[1], f[2], f[3]))
    except OSError:
        pass
    return out


@dataclass
class Limiter:
    """How this kubelet limits containers. ``memory``/``cpu`` name the mechanism."""

    memory: str = "rss-poll"
    cpu: str = "none"
    version: int = 0  # 0 = no cgroups
    node_dirs: dict[str, str] = field(default_factory=dict)  # hierarchy key -> this kubelet's directory
    poll_interval: float = 0.25

    @property
    def uses_cgroups(self) -> bool:
        return self.version in (1, 2)

    def describe(self) -> str:
        if self.memory == "rss-poll":
            return (
                f"memory limits enforced by polling process-tree RSS every {self.poll_interval:g} s and "
                f"SIGKILL (no writable cgroup); CPU limits not enforced"
            )
        return f"memory and CPU limits enforced by {self.memory} (kernel OOM killer, CFS quota)"

    # ---------------------------------------------------------------- containers
    def create(
        self, cid: str, memory_bytes: int | None, cpu_limit_millis: int | None, cpu_request_millis: int | None
    ) -> ContainerCgroup | None:
        if not self.uses_cgroups:
            return None
        paths: list[str] = []
        mem_path: str | None = None
        try:
            if self.version == 2:
                d = os.path.join(self.node_dirs["unified"], cid)
                os.makedirs(d, exist_ok=True)
                paths.append(d)
                mem_path = d
                _write(os.path.join(d, "memory.max"), str(memory_bytes) if memory_bytes else "max")
                try:
                    _write(os.path.join(d, "memory.swap.max"), "0" if memory_bytes else "max")
                except OSError:
                    pass
                if cpu_limit_millis:
                    quota = max(1000, cpu_limit_millis * CFS_PERIOD_US // 1000)
                    _write(os.path.join(d, "cpu.max"), f"{quota} {CFS_PERIOD_US}")
                if cpu_request_millis:
                    # Kubernetes' shares -> weight mapping.
                    shares = max(2, cpu_request_millis * 1024 // 1000)
                    weight = 1 + ((shares - 2) * 9999) // 262142
                    _write(os.path.join(d, "cpu.weight"), str(max(1, min(10000, weight))))
                cg = ContainerCgroup(paths, mem_path, 2)
            else:
                md = os.path.join(self.node_dirs["memory"], cid)
                os.makedirs(md, exist_ok=True)
                paths.append(md)
                mem_path = md
                limit = str(memory_bytes) if memory_bytes else "-1"
                _write(os.path.join(md, "memory.limit_in_bytes"), limit)
                try:
                    _write(os.path.join(md, "memory.memsw.limit_in_bytes"), limit)
                except OSError:
                    pass
                if "cpu" in self.node_dirs:
                    cd = os.path.join(self.node_dirs["cpu"], cid)
                    os.makedirs(cd, exist_ok=True)
                    paths.append(cd)
                    _write(os.path.join(cd, "cpu.cfs_period_us"), str(CFS_PERIOD_US))
                    quota = max(1000, cpu_limit_millis * CFS_PERIOD_US // 1000) if cpu_limit_millis else -1
                    _write(os.path.join(cd, "cpu.cfs_quota_us"), str(quota))
                    if cpu_request_millis:
                        _write(os.path.join(cd, "cpu.shares"), str(max(2, cpu_request_millis * 1024 // 1000)))
                cg = ContainerCgroup(paths, mem_path, 1)
            cg.oom_baseline = self.oom_kills(cg)
            return cg
        except OSError as exc:
            log.warning("cgroup setup for %s failed (%s); container runs without cgroup limits", cid, exc)
            for p in paths:
                _rmdir(p)
            return None

    def oom_kills(self, cg: ContainerCgroup | None) -> int:
        if cg is None or cg.memory_path is None:
            return 0
        try:
            if cg.version == 2:
                text = _read(os.path.join(cg.memory_path, "memory.events"))
            else:
                text = _read(os.path.join(cg.memory_path, "memory.oom_control"))
            for line in text.splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def pids(self, cg: ContainerCgroup | None) -> list[int]:
        out: set[int] = set()
        for f in cg.procs_files if cg else []:
            try:
                out.update(int(x) for x in _read(f).split())
            except (OSError, ValueError):
                pass
        return sorted(out)

    def kill(self, cg: ContainerCgroup | None, sig: int) -> None:
        """Signal every process in the container's cgroup (catches processes that left the process group)."""
        if cg is None:
            return
        if cg.version == 2 and sig == 9:
            try:
                _write(os.path.join(cg.paths[0], "cgroup.kill"), "1")
                return
            except OSError:
                pass
        for pid in self.pids(cg):
            try:
                os.kill(pid, sig)
            except OSError:
                pass

    def remove(self, cg: ContainerCgroup | None) -> None:
        if cg is not None:
            for p in cg.paths:
                _rmdir(p)

    def cleanup_node(self) -> None:
        for d in self.node_dirs.values():
            _rmtree_cgroup(d)


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _rmtree_cgroup(path: str) -> None:
    """Remove a cgroup directory tree bottom-up (cgroup dirs are removed with rmdir, never unlink)."""
    if not os.path.isdir(path):
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _rmtree_cgroup(entry.path)
    _rmdir(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep_stale(root: str) -> None:
    """Remove ``<root>/<node>-<pid>`` trees whose kubelet process is gone (their processes are dead)."""
    if not os.path.isdir(root):
        return
    for entry in os.scandir(root):
        name = entry.name
        pid_s = name.rsplit("-", 1)[-1]
        if entry.is_dir(follow_symlinks=False) and pid_s.isdigit() and not _pid_alive(int(pid_s)):
            for sub in os.scandir(entry.path):
                if sub.is_dir(follow_symlinks=False):
                    try:
                        for pid in _read(os.path.join(sub.path, "cgroup.procs")).split():
                            os.kill(int(pid), 9)
                    except (OSError, ValueError):
                        pass
            _rmtree_cgroup(entry.path)


def _try_v2(node_dir_name: str) -> dict[str, str] | None:
    own = _own_cgroups().get("")
    mounts = [m for m in _mounts() if m[1] == "cgroup2"]
    if own is None or not mounts:
        return None
    mount = mounts[0][0]
    base = os.path.join(mount, own.lstrip("/"))
    try:
        ctrls = set(_read(os.path.join(base, "cgroup.controllers")).split())
    except OSError:
        return None
    if not {"memory", "cpu"} <= ctrls:
        return None
    try:
        sub = set(_read(os.path.join(base, "cgroup.subtree_control")).split())
        if not {"memory", "cpu"} <= sub:
            _write(os.path.join(base, "cgroup.subtree_control"), "+memory +cpu")
        root = os.path.join(base, "raykube")
        os.makedirs(root, exist_ok=True)
        _write(os.path.join(root, "cgroup.subtree_control"), "+memory +cpu")
        sweep_stale(root)
        node = os.path.join(root, node_dir_name)
        os.makedirs(node, exist_ok=True)
        _write(os.path.join(node, "cgroup.subtree_control"), "+memory +cpu")
        probe = os.path.join(node, "probe")
        os.makedirs(probe, exist_ok=True)
        _write(os.path.join(probe, "memory.max"), "max")
        _rmdir(probe)
        return {"unified": node}
    except OSError as exc:
        log.info("cgroup v2 not usable here (%s)", exc)
        return None


def _try_v1(node_dir_name: str) -> dict[str, str] | None:
    own = _own_cgroups()
    mounts = {}
    for mnt, fstype, opts in _mounts():
        if fstype != "cgroup":
            continue
        o = set(opts.split(","))
        for c in ("memory", "cpu"):
            if c in o and c not in mounts:
                mounts[c] = mnt
    if "memory" not in mounts:
        return None
    out: dict[str, str] = {}
    for c in ("memory", "cpu"):
        if c not in mounts:
            continue
        base = os.path.join(mounts[c], own.get(c, "/").lstrip("/"))
        try:
            root = os.path.join(base, "raykube")
            os.makedirs(root, exist_ok=True)
            sweep_stale(root)
            node = os.path.join(root, node_dir_name)
            os.makedirs(node, exist_ok=True)
            probe = os.path.join(node, "probe")
            os.makedirs(probe, exist_ok=True)
            _write(os.path.join(probe, "memory.limit_in_bytes" if c == "memory" else "cpu.cfs_quota_us"), "-1")
            _rmdir(probe)
            out[c] = node
        except OSError as exc:
            log.info("cgroup v1 %s hierarchy not usable here (%s)", c, exc)
            if c == "memory":
                return None
    return out


def detect(node: str, mode: str = "auto", poll_interval: float = 0.25) -> Limiter:
    """The limiter for this kubelet (see the module doc)."""
    if mode not in ("auto", "v2", "v1", "off"):
        raise ValueError(f"cgroups mode must be auto, v2, v1 or off, not {mode!r}")
    name = f"{node}-{os.getpid()}"
    if mode in ("auto", "v2"):
        dirs = _try_v2(name)
        if dirs:
            return Limiter("cgroup-v2", "cgroup-v2", 2, dirs, poll_interval)
    if mode in ("auto", "v1"):
        dirs = _try_v1(name)
        if dirs:
            return Limiter("cgroup-v1", "cgroup-v1" if "cpu" in dirs else "none", 1, dirs, poll_interval)
    return Limiter("rss-poll", "none", 0, {}, poll_interval)


__all__ = ["ContainerCgroup", "Limiter", "detect", "sweep_stale"]
