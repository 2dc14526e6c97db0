"""Unit tests of the kubelet's pure parts and of the process runtime on its own (no API server)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from cluster import images
from cluster.kubelet.envvars import EnvError, build_env, expand
from cluster.kubelet.server import _tail
from cluster.network.ipam import IPAMExhausted, PodIPAM
from cluster.runtime import ContainerSpec, ProcessRuntime, StartError

pytestmark = pytest.mark.timeout(60)


def test_images_catalog_and_normalize() -> None:
    assert images.normalize("docker.io/raykube/web:1.2") == "raykube/web"
    assert images.normalize("raykube/busy@sha256:abc") == "raykube/busy"
    assert images.resolve("raykube/crash:latest").module == "cluster.images.crash"
    assert images.resolve("raykube/host").entrypoint() == []
    with pytest.raises(images.ImageNotFound, match="raykube/web"):
        images.resolve("nginx")
    assert {r["image"] for r in images.catalog_table()} == {
        "raykube/web",
        "raykube/busy",
        "raykube/crash",
        "raykube/host",
    }


def test_ipam_round_robin_reserve_release() -> None:
    ipam = PodIPAM("127.16.5.0/29")  # hosts .1-.6; .1 is the gateway
    assert ipam.capacity == 5
    ips = [ipam.allocate(f"p{i}") for i in range(5)]
    assert ips == [f"127.16.5.{i}" for i in range(2, 7)]
    assert ipam.allocate("p0") == ips[0]  # idempotent per owner
    with pytest.raises(IPAMExhausted):
        ipam.allocate("p9")
    ipam.release("p1")
    assert ipam.allocate("p9") == "127.16.5.3"
    assert not ipam.reserve("x", "127.16.5.3") and not ipam.reserve("x", "10.0.0.1")
    ipam.release("p2")
    assert ipam.reserve("back", "127.16.5.4")


def test_env_expansion_and_field_refs() -> None:
    assert expand("$(A)-$(B)-$$(A)-$(NOPE)", {"A": "1", "B": "2"}) == "1-2-$(A)-$(NOPE)"
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
        "spec": {"nodeName": "n1"},
        "status": {"podIP": "127.16.0.2", "hostIP": "127.1.0.1"},
    }
    c = {
        "env": [
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$(A)b"},
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "M", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        ],
        "resources": {"limits": {"memory": "64Mi"}},
    }
    env = asyncio.run(build_env(pod, c, {"BASE": "0"}, {}, None))
    assert env == {"BASE": "0", "A": "a", "B": "ab", "N": "n1", "L": "x", "IP": "127.16.0.2", "M": "64"}
    with pytest.raises(EnvError, match="not found"):
        asyncio.run(
            build_env(
                pod,
                {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]},
                {},
                {},
                None,
            )
        )


def test_tail_lines(tmp_path: Path) -> None:
    f = tmp_path / "log"
    f.write_bytes(b"".join(f"line {i}\n".encode() for i in range(10000)))
    with open(f, "rb") as fh:
        fh.seek(_tail(str(f), 3))
        assert fh.read() == b"line 9997\nline 9998\nline 9999\n"
    assert _tail(str(f), 0) == f.stat().st_size
    assert _tail(str(f), 20000) == 0


def test_runtime_process_group_exit_codes_and_stop(tmp_path: Path) -> None:
    async def main() -> None:
        rt = ProcessRuntime("unit", cgroups="off")
        env = {"PATH": os.environ["PATH"]}
        try:
            p = await rt.start(
                ContainerSpec(
                    "u1",
                    "d/p",
                    "uid",
                    "c",
                    ["sh", "-c", "echo hi; exit 7"],
                    env,
                    str(tmp_path / "w"),
                    str(tmp_path / "l" / "0.log"),
                )
            )
            st = await asyncio.wait_for(p.exited, 10)
            assert st.exit_code == 7 and st.reason == "Error" and st.signal is None
            assert (tmp_path / "l" / "0.log").read_text() == "hi\n"
            # its own session and process group; the runtime's nice level; SIGTERM then SIGKILL after grace
            p = await rt.start(
                ContainerSpec(
                    "u2",
                    "d/p",
                    "uid",
                    "c",
                    ["sh", "-c", "trap '' TERM; sleep 60 & wait"],
                    env,
                    str(tmp_path / "w"),
                    str(tmp_path / "l" / "1.log"),
                    nice=3,
                )
            )
            await asyncio.sleep(0.3)
            assert os.getpgid(p.pid) == p.pid and os.getsid(p.pid) == p.pid
            assert os.getpriority(os.PRIO_PROCESS, p.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 3
            t0 = time.monotonic()
            st = await rt.stop(p, 0.5)
            assert st.exit_code == 137 and st.signal == signal.SIGKILL and time.monotonic() - t0 >= 0.5
            with pytest.raises(StartError, match="not found"):
                await rt.start(
                    ContainerSpec(
                        "u3",
                        "d/p",
                        "uid",
                        "c",
                        ["no-such-binary-rk"],
                        env,
                        str(tmp_path / "w"),
                        str(tmp_path / "l" / "2.log"),
                    )
                )
        finally:
            await rt.close()

    asyncio.run(main())


def test_runtime_children_die_with_the_kubelet(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a container's main process dies when the process that started it dies."""
    import subprocess

    script = (
        "import asyncio, os, sys\n"
        "from cluster.runtime import ProcessRuntime, ContainerSpec\n"
        "async def main():\n"
        "    rt = ProcessRuntime('pd', cgroups='off')\n"
        "    p = await rt.start(ContainerSpec('x', 'd/p', 'u', 'c', ['sleep', '60'], {'PATH': os.environ['PATH']},\n"
        f"                       {str(tmp_path)!r}, {str(tmp_path / 'x.log')!r}))\n"
        "    print(p.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=images.SOURCE_ROOT,
        start_new_session=True,
    )
    child = 0
    try:
        child = int(proc.stdout.readline())  # type: ignore[union-attr]
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        deadline = time.monotonic() + 3
        while True:
            try:
                with open(f"/proc/{child}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except FileNotFoundError:
                break
            assert time.monotonic() < deadline, "the container outlived the process that started it"
            time.sleep(0.02)
    finally:
        for pid in (proc.pid, child):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def _state(pid: int) -> str | None:
    """The process state letter, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


@pytest.mark.skipif(not __import__("shutil").which("setpriv"), reason="needs setpriv (util-linux)")
def test_container_orphaned_before_its_deathsig_was_set_does_not_run(tmp_path: Path) -> None:
    """The race PR_SET_PDEATHSIG leaves open: the kubelet dies after forking a container but before the
    child's prctl(); the kernel would never signal the orphan. The wrapper's parent check makes it exit
    (70) instead of running. Made deterministic with a 0.5 s sleep before the wrapper chain, while the
    'kubelet' (a Python process) forks it and dies at once."""
    import subprocess

    from cluster.runtime.process import wrapper_argv

    marker = tmp_path / "ran"
    script = (
        "import os, subprocess, sys\n"
        "from cluster.runtime.process import wrapper_argv\n"
        f"argv = wrapper_argv(['sh', '-c', 'touch {marker}; exec sleep 60'], nice=0, pdeath_parent=os.getpid(),\n"
        "                     procs_files=[])\n"
        "p = subprocess.Popen(['sh', '-c', 'sleep 0.5; exec \"$@\"', 'delay', *argv], start_new_session=True)\n"
        "print(p.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=images.SOURCE_ROOT)
    child = 0
    try:
        child = int(proc.stdout.readline())  # type: ignore[union-attr]
        proc.wait(5)  # the 'kubelet' is gone before the child reaches setpriv
        deadline = time.monotonic() + 10
        while _state(child) not in (None, "Z"):
            assert time.monotonic() < deadline, "the orphaned container is running"
            time.sleep(0.05)
        assert not marker.exists(), "the workload ran although its kubelet was already gone"
    finally:
        if child and _state(child) not in (None, "Z"):
            os.kill(child, signal.SIGKILL)

    # Control: the same chain under a live parent runs the workload.
    out = subprocess.run(
        wrapper_argv(["sh", "-c", f"touch {marker}"], nice=0, pdeath_parent=os.getpid(), procs_files=[]), timeout=10
    )
    assert out.returncode == 0 and marker.exists()
