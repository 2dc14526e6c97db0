"""The process runtime: each container instance is a real OS process group.

``ProcessRuntime.start(ContainerSpec)`` starts the container's main process
with ``start_new_session`` (its own session and process group), ``stdin``
from ``/dev/null``, ``stdout`` and ``stderr`` appended to the instance's log
file, the given environment and working directory. Before the workload's
``exec`` the process (same PID all along) enters its cgroup(s) when the host
allows (``cgroups.Limiter``: ``sh`` writes ``$$`` to ``cgroup.procs``), so
limits apply from the first instruction; asks the kernel to SIGKILL it if
the kubelet thread that started it dies (``setpriv --pdeathsig KILL``, i.e.
``PR_SET_PDEATHSIG``) and then checks that the kubelet is still its parent
(one that died before the ``prctl`` would never signal it: the child exits
with 70 instead of running orphaned); and raises its niceness by ``ContainerSpec.nice``
(``nice``; the kubelet's default is 5: on one shared machine, workloads
yield CPU to the API server, raftstore and kubelets rather than starve
them). These are exec wrappers rather than a Python ``preexec_fn`` because
a ``preexec_fn`` forces a full ``fork()`` of the kubelet (~15 ms for an
80 MB process, blocking its event loop) where CPython otherwise uses
``vfork`` (~0.4 ms); without ``setpriv``/``nice`` on the host the runtime
falls back to the ``preexec_fn``. ``argv[0]`` is resolved on the container's
``PATH`` first: a missing executable is a ``StartError``.

Exit is noticed without threads or polling: a ``pidfd`` per process is
registered with the event loop; when it becomes readable the process is
reaped and ``Process.exited`` (an ``asyncio.Future[ExitStatus]``) resolves.
When the main process ends, whatever is left of its process group and
cgroup is SIGKILLed, as a PID namespace would do.

``stop(proc, grace)``: SIGTERM to the process group, wait up to ``grace``
seconds, then SIGKILL to the group (and the cgroup). ``kill_everything()``
SIGKILLs every container at once; it only makes system calls, so it may be
called from another thread (the node-kill path of the kubelet actor).

Memory limits without cgroups: a poller sums the RSS of each limited
container's process tree every ``Limiter.poll_interval`` seconds and
SIGKILLs the group when it exceeds the limit; the exit is reported as
``OOMKilled`` with a message that says so. With cgroups the kernel's OOM
killer does it and the cgroup's ``oom_kill`` counter identifies it.

Concurrency: one asyncio loop owns the runtime; only ``kill_everything``
and ``snapshot`` are safe from other threads.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil

from .cgroups import ContainerCgroup, Limiter, detect
from .interface import ContainerInstance, ContainerSpec, ExitStatus, RuntimeOptions, StartError

log = logging.getLogger("raykube.runtime")

_PR_SET_PDEATHSIG = 1
try:
    _prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None

# The fast path: exec wrappers instead of a Python ``preexec_fn`` (which forces fork() of the whole kubelet:
# ~15 ms for an 80 MB process, on the event loop) so that CPython can use vfork (~0.4 ms).
_SH = shutil.which("sh") or "/bin/sh"
_SETPRIV = shutil.which("setpriv")
_NICE = shutil.which("nice")
# Run by sh *after* setpriv has set the parent-death signal: ``$1`` is the kubelet's PID ("" = no check),
# ``$2`` the number of cgroup.procs files that follow; sh checks that its parent is still the kubelet, joins
# the cgroup(s), then becomes the rest of the command line. The check closes a race PR_SET_PDEATHSIG
# leaves open: a kubelet that dies between the fork and setpriv's prctl() has already orphaned the child,
# which would then never be signalled (seen as containers of crash-looping pods surviving `raykube down`).
_CONTAINER_INIT = (
    '[ -z "$1" ] || [ "$PPID" = "$1" ] || exit 70; shift; '
    'n=$1; shift; i=0; while [ "$i" -lt "$n" ]; do echo $$ > "$1" || exit 126; shift; i=$((i+1)); '
    'done; exec "$@"'
)


def wrapper_argv(argv: list[str], *, nice: int, pdeath_parent: int | None, procs_files: list[str]) -> list[str]:
    """The exec chain that starts a container: ``setpriv --pdeathsig KILL`` (if ``pdeath_parent``), then
    ``sh`` running ``_CONTAINER_INIT`` (parent check, cgroup join), then ``nice -n`` (if ``nice``), then
    ``argv``. The same PID all along."""
    if nice:
        argv = [_NICE or "nice", "-n", str(nice), *argv]
    if procs_files or pdeath_parent is not None:
        argv = [
            _SH,
            "-c",
            _CONTAINER_INIT,
            "raykube-container",
            str(pdeath_parent) if pdeath_parent is not None else "",
            str(len(procs_files)),
            *procs_files,
            *argv,
        ]
    if pdeath_parent is not None:
        argv = [_SETPRIV or "setpriv", "--pdeathsig", "KILL", "--", *argv]
    return argv


@dataclass
class Process(ContainerInstance):
    """A container instance that is a real process group."""

    popen: subprocess.Popen[bytes]
    cgroup: ContainerCgroup | None
    pidfd: int | None = None
    oom_message: str | None = None  # set by the RSS poller when it kills
    stop_requested: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cgroup_paths(self) -> list[str] | None:
        return self.cgroup.paths if self.cgroup else None


def _human(n: int) -> str:
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    if n >= 2**20:
        return f"{n / 2**20:.1f}Mi"
    return str(n)


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class ProcessRuntime:
    """The ``process`` runtime (``cluster.runtime.interface.Runtime``)."""

    name = "process"
    version = "raykube-process://0.1.0"
    simulated = False

    def __init__(
        self, node: str, *, cgroups: str = "auto", poll_interval: float = 0.25, limiter: Limiter | None = None
    ) -> None:
        self.node = node
        self.limiter = limiter or detect(node, cgroups, poll_interval)
        self.procs: dict[str, Process] = {}
        self._lock = threading.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        self.killed_everything = False
        # exec wrappers (sh, setpriv, nice) when the host has them, else a (slower) preexec_fn
        self.use_wrappers = _SETPRIV is not None and _NICE is not None and os.path.exists(_SH)
        log.info("runtime for node %s: %s", node, self.limiter.describe())

    @classmethod
    def from_options(cls, opts: RuntimeOptions) -> "ProcessRuntime":
        return cls(opts.node, cgroups=opts.cgroups, poll_interval=opts.poll_interval)

    # ------------------------------------------------------------------ start
    async def start(self, spec: ContainerSpec) -> Process:
        if self.killed_everything:
            raise StartError("the node has been killed")
        loop = asyncio.get_running_loop()
        os.makedirs(spec.cwd, exist_ok=True)
        os.makedirs(os.path.dirname(spec.log_path), exist_ok=True)
        exe = self._resolve(spec)
        cg = self.limiter.create(spec.id, spec.memory_limit, spec.cpu_limit_millis, spec.cpu_request_millis)
        procs_files = [f.encode() for f in (cg.procs_files if cg else [])]
        pdeath = spec.pdeathsig and _prctl is not None
        prctl = _prctl
        nice = spec.nice
        preexec: Callable[[], None] | None = None
        argv = [exe, *spec.argv[1:]]
        if self.use_wrappers:
            argv = wrapper_argv(
                argv,
                nice=nice,
                pdeath_parent=os.getpid() if pdeath else None,
                procs_files=[f.decode() for f in procs_files],
            )
        else:
            parent = os.getpid()

            def preexec() -> None:  # runs in the child between fork and exec: syscalls only
                if pdeath and prctl is not None:
                    prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
                    if os.getppid() != parent:  # the kubelet died before prctl(): nobody will signal us
                        os._exit(70)
                if nice:
                    os.nice(nice)
                me = str(os.getpid()).encode()
                for f in procs_files:
                    fd = os.open(f, os.O_WRONLY)
                    try:
                        os.write(fd, me)
                    finally:
                        os.close(fd)

        logf = open(spec.log_path, "ab", buffering=0)
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                cwd=spec.cwd,
                env=spec.env,
                start_new_session=True,
                preexec_fn=preexec,
                close_fds=True,
            )
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            self.limiter.remove(cg)
            msg = f"failed to start container process {spec.argv[:1]}: {exc}"
            try:
                logf.write((msg + "\n").encode())
            except OSError:
                pass
            raise StartError(msg) from exc
        finally:
            logf.close()
        proc = Process(
            spec=spec, pid=popen.pid, started_at=time.time(), exited=loop.create_future(), popen=popen, cgroup=cg
        )
        with self._lock:
            self.procs[spec.id] = proc
        try:
            proc.pidfd = os.pidfd_open(popen.pid)
            loop.add_reader(proc.pidfd, self._on_pidfd, proc)
        except (OSError, AttributeError):
            proc.pidfd = None
            loop.create_task(self._poll_exit(proc))
        if spec.memory_limit and cg is None and (self._poller is None or self._poller.done()):
            self._poller = loop.create_task(self._rss_poller())
        return proc

    @staticmethod
    def _resolve(spec: ContainerSpec) -> str:
        """The executable of ``argv[0]`` (searched on the container's PATH), or ``StartError`` like a
        container runtime's ``exec: "x": executable file not found in $PATH``."""
        if not spec.argv:
            raise StartError("no command to run")
        cmd = spec.argv[0]
        if "/" in cmd:
            path = cmd if os.path.isabs(cmd) else os.path.join(spec.cwd, cmd)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return cmd
            raise StartError(f'exec: "{cmd}": no such file or not executable')
        found = shutil.which(cmd, path=spec.env.get("PATH", os.defpath))
        if found is None:
            raise StartError(f'exec: "{cmd}": executable file not found in $PATH')
        return found

    # ------------------------------------------------------------------- exit
    def _on_pidfd(self, proc: Process) -> None:
        if proc.popen.poll() is None:
            return  # spurious
        self._finish(proc)

    async def _poll_exit(self, proc: Process) -> None:
        while proc.popen.poll() is None:
            await asyncio.sleep(0.05)
        self._finish(proc)

    def _finish(self, proc: Process) -> None:
        if proc.exited.done():
            return
        if proc.pidfd is not None:
            try:
                asyncio.get_running_loop().remove_reader(proc.pidfd)
            except (RuntimeError, ValueError):
                pass
            os.close(proc.pidfd)
            proc.pidfd = None
        rc = proc.popen.returncode
        assert rc is not None
        sig = -rc if rc < 0 else None
        code = 128 + sig if sig else rc
        # A PID namespace dies with its init process: so does the rest of the container.
        _killpg(proc.pgid, signal.SIGKILL)
        self.limiter.kill(proc.cgroup, signal.SIGKILL)
        oom = False
        message = ""
        if proc.oom_message:
            oom, message = True, proc.oom_message
        elif (
            proc.cgroup is not None
            and sig == signal.SIGKILL
            and self.limiter.oom_kills(proc.cgroup) > proc.cgroup.oom_baseline
        ):
            oom = True
            message = (
                f"memory limit {_human(proc.spec.memory_limit or 0)} exceeded: killed by the kernel OOM "
                f"killer (enforced by {self.limiter.memory} memory controller)"
            )
        elif sig:
            message = f"terminated by signal {signal.Signals(sig).name}"
        proc.exited.set_result(ExitStatus(code, sig, oom, message, time.time()))
        with self._lock:
            self.procs.pop(proc.spec.id, None)
        if proc.cgroup is not None:
            asyncio.get_running_loop().create_task(self._remove_cgroup(proc))

    async def _remove_cgroup(self, proc: Process) -> None:
        for _ in range(50):
            if not self.limiter.pids(proc.cgroup):
                break
            self.limiter.kill(proc.cgroup, signal.SIGKILL)
            await asyncio.sleep(0.05)
        self.limiter.remove(proc.cgroup)

    # ------------------------------------------------------------------ stop
    def signal(self, proc: Process, sig: int) -> None:
        if proc.running:
            _killpg(proc.pgid, sig)

    async def stop(self, proc: ContainerInstance, grace: float, *, reason: str = "") -> ExitStatus:
        """SIGTERM the group, wait ``grace`` s, SIGKILL; return the exit status."""
        assert isinstance(proc, Process), "an instance of another runtime"
        if proc.exited.done():
            return proc.exited.result()
        proc.stop_requested = True
        if grace > 0:
            _killpg(proc.pgid, signal.SIGTERM)
            try:
                return await asyncio.wait_for(asyncio.shield(proc.exited), grace)
            except asyncio.TimeoutError:
                log.info(
                    "%s/%s did not exit %.1f s after SIGTERM%s; SIGKILL",
                    proc.spec.pod_key,
                    proc.spec.name,
                    grace,
                    f" ({reason})" if reason else "",
                )
        _killpg(proc.pgid, signal.SIGKILL)
        self.limiter.kill(proc.cgroup, signal.SIGKILL)
        try:
            return await asyncio.wait_for(asyncio.shield(proc.exited), 10.0)
        except asyncio.TimeoutError:  # pragma: no cover - an unkillable process (D state)
            log.error("%s/%s (pid %d) survived SIGKILL for 10 s", proc.spec.pod_key, proc.spec.name, proc.pid)
            raise

    def kill_everything(self) -> int:
        """SIGKILL every container process group and cgroup at once (thread-safe). Returns how many."""
        self.killed_everything = True
        with self._lock:
            procs = list(self.procs.values())
        for p in procs:
            _killpg(p.pgid, signal.SIGKILL)
            self.limiter.kill(p.cgroup, signal.SIGKILL)
        return len(procs)

    async def close(self, grace: float = 0.0) -> None:
        """Stop every container (``grace`` s after SIGTERM) and remove this kubelet's cgroups."""
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
        procs = list(self.procs.values())
        if procs:
            await asyncio.gather(*(self.stop(p, grace) for p in procs), return_exceptions=True)
        self.limiter.cleanup_node()

    # ------------------------------------------------------- memory (no cgroup)
    async def _rss_poller(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._closed:
            limited = [
                p
                for p in list(self.procs.values())
                if p.running and p.spec.memory_limit and p.cgroup is None and not p.oom_message
            ]
            if not limited:
                return
            # One scan of the process table per tick (not one per container): parent -> children.
            children: dict[int, list[int]] = {}
            for q in psutil.process_iter(["ppid"]):
                children.setdefault(q.info["ppid"] or 0, []).append(q.pid)
            for p in limited:
                members, todo = [], [p.pid]
                while todo:
                    pid = todo.pop()
                    members.append(pid)
                    todo.extend(children.get(pid, ()))
                rss = 0
                for pid in members:
                    try:
                        with open(f"/proc/{pid}/statm") as f:
                            rss += int(f.read().split()[1]) * page
                    except (OSError, ValueError, IndexError):
                        pass
                limit = p.spec.memory_limit or 0
                if rss > limit:
                    p.oom_message = (
                        f"memory limit {_human(limit)} exceeded: process tree RSS "
                        f"{rss / 2**20:.1f}Mi; killed by raykube's RSS poller (SIGKILL; this host "
                        f"has no writable cgroup, checked every {self.limiter.poll_interval:g} s)"
                    )
                    log.info("%s/%s: %s", p.spec.pod_key, p.spec.name, p.oom_message)
                    _killpg(p.pgid, signal.SIGKILL)
                    for pid in members:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
            await asyncio.sleep(self.limiter.poll_interval)

    # ---------------------------------------------------------------- views
    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            procs = list(self.procs.values())
        return [
            {
                "id": p.spec.id,
                "pod": p.spec.pod_key,
                "podUID": p.spec.pod_uid,
                "container": p.spec.name,
                "pid": p.pid,
                "pgid": p.pgid,
                "startedAt": p.started_at,
                "argv": p.spec.argv,
                "cwd": p.spec.cwd,
                "log": p.spec.log_path,
                "memoryLimit": p.spec.memory_limit,
                "cpuLimitMillis": p.spec.cpu_limit_millis,
                "cgroup": p.cgroup.paths if p.cgroup else None,
            }
            for p in procs
        ]
