"""A throwaway 3-member etcd 3.4 cluster on loopback, for benchmarks.

The members run with etcd's default timing (100 ms heartbeat, 1000 ms
election timeout): etcd is the yardstick, so it is not tuned. Every member
listens on 127.0.0.1 only, on ports picked free at start, with its data
directory and log under a fresh temporary directory.

Processes are tracked by the PIDs of the ``Popen`` objects this module
created and are killed through those handles only (never by name): in
``stop()``, on ``with`` exit, and from an ``atexit`` hook if the caller
forgot or crashed. Install etcd with ``scripts/install-etcd.sh``.

Usage::

    with EtcdCluster() as etcd:
        etcd.start()              # waits until every member is healthy
        print(etcd.endpoints, etcd.leader_endpoint(), etcd.pids)
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import weakref
from typing import Any

_LIVE: "weakref.WeakSet[EtcdCluster]" = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    for c in list(_LIVE):
        try:
            c.stop()
        except Exception:
            pass


atexit.register(_stop_all_at_exit)


def _free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def etcd_binary() -> str:
    path = shutil.which("etcd")
    if not path:
        raise FileNotFoundError("etcd not found on PATH; run scripts/install-etcd.sh first")
    return path


def etcd_version(binary: str | None = None) -> dict[str, str]:
    """``{"etcd": "3.4.23", "go": "go1.19.8", "arch": "linux/amd64"}`` from ``etcd --version``."""
    out = subprocess.run(
        [binary or etcd_binary(), "--version"], capture_output=True, text=True, env=_env(), timeout=30
    ).stdout
    info: dict[str, str] = {}
    for key, pat in (
        ("etcd", r"etcd Version:\s*(\S+)"),
        ("go", r"Go Version:\s*(\S+)"),
        ("arch", r"Go OS/Arch:\s*(\S+)"),
    ):
        m = re.search(pat, out)
        if m:
            info[key] = m.group(1)
    return info


def _goarch() -> str:
    import platform

    m = platform.machine().lower()
    return {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "arm",
        "armv6l": "arm",
        "i686": "386",
        "i386": "386",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
        "mips64": "mips64",
        "mips64el": "mips64le",
    }.get(m, m)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # etcd 3.4 refuses to start on architectures other than amd64 and ppc64le
    # unless ETCD_UNSUPPORTED_ARCH names the running GOARCH (arm64 included).
    arch = _goarch()
    if arch not in ("amd64", "ppc64le"):
        env.setdefault("ETCD_UNSUPPORTED_ARCH", arch)
    # Keep any ETCD_* settings of the caller's shell out of our members: they
    # would override flags (etcd reads ETCD_<FLAG> for every flag).
    for k in list(env):
        if k.startswith("ETCD_") and k != "ETCD_UNSUPPORTED_ARCH":
            del env[k]
    return env


def _post(url: str, body: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


class EtcdCluster:
    def __init__(self, members: int = 3, *, base_dir: str | None = None, keep_data: bool = False) -> None:
        self.n = members
        self.base_dir = base_dir
        self.keep_data = keep_data
        self.tmpdir: str | None = None
        self.names = [f"e{i}" for i in range(members)]
        self.client_urls: list[str] = []
        self.peer_urls: list[str] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.version: dict[str, str] = {}

    # ---- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "EtcdCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def endpoints(self) -> list[str]:
        """Client URLs, e.g. ``http://127.0.0.1:41234``."""
        return list(self.client_urls)

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items() if p.poll() is None}

    def log_path(self, name: str) -> str:
        assert self.tmpdir
        return os.path.join(self.tmpdir, f"{name}.log")

    def start(self, timeout: float = 30.0) -> None:
        binary = etcd_binary()
        self.version = etcd_version(binary)
        self.tmpdir = tempfile.mkdtemp(prefix="etcd-bench-", dir=self.base_dir)
        _LIVE.add(self)
        ports = _free_ports(2 * self.n)
        self.client_urls = [f"http://127.0.0.1:{ports[2 * i]}" for i in range(self.n)]
        self.peer_urls = [f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(self.n)]
        initial = ",".join(f"{n}={u}" for n, u in zip(self.names, self.peer_urls))
        token = "bench-" + uuid.uuid4().hex[:12]
        env = _env()
        try:
            for i, name in enumerate(self.names):
                data = os.path.join(self.tmpdir, name)
                cmd = [
                    binary,
                    "--name",
                    name,
                    "--data-dir",
                    data,
                    "--listen-client-urls",
                    self.client_urls[i],
                    "--advertise-client-urls",
                    self.client_urls[i],
                    "--listen-peer-urls",
                    self.peer_urls[i],
                    "--initial-advertise-peer-urls",
                    self.peer_urls[i],
                    "--initial-cluster",
                    initial,
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    token,
                    "--logger",
                    "zap",
                    "--log-outputs",
                    "stderr",
                    # Defaults, spelled out so the yardstick is explicit:
                    "--heartbeat-interval",
                    "100",
                    "--election-timeout",
                    "1000",
                ]
                log = open(self.log_path(name), "ab")
                try:
                    self.procs[name] = subprocess.Popen(
                        cmd,
                        stdout=log,
                        stderr=log,
                        stdin=subprocess.DEVNULL,
                        env=env,
                        start_new_session=True,
                        close_fds=True,
                    )
                finally:
                    log.close()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL, every member this object started; remove the data unless kept."""
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        _LIVE.discard(self)
        if self.tmpdir and not self.keep_data and os.path.isdir(self.tmpdir):
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # ---- health ------------------------------------------------------------
    def _check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                tail = ""
                try:
                    with open(self.log_path(name), "rb") as f:
                        tail = f.read()[-2000:].decode(errors="replace")
                except OSError:
                    pass
                raise RuntimeError(f"etcd member {name} exited with {p.returncode}; log tail:\n{tail}")

    def status(self, url: str) -> dict[str, Any]:
        return _post(url + "/v3/maintenance/status", {})

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every member answers /health with true and they agree on a leader."""
        deadline = time.monotonic() + timeout
        last: Exception | str | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                ok = True
                for url in self.client_urls:
                    with urllib.request.urlopen(url + "/health", timeout=1.0) as r:
                        if json.loads(r.read()).get("health") not in ("true", True):
                            ok = False
                            last = f"{url}/health not true"
                leaders = {self.status(u).get("leader") for u in self.client_urls}
                if ok and len(leaders) == 1 and None not in leaders and "0" not in leaders:
                    # One linearizable write + read through the gateway proves the path.
                    k = base64.b64encode(b"__bench_health").decode()
                    _post(self.client_urls[0] + "/v3/kv/put", {"key": k, "value": k})
                    _post(self.client_urls[0] + "/v3/kv/range", {"key": k})
                    return
            except (OSError, urllib.error.URLError, ValueError) as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"etcd cluster not healthy after {timeout} s: {last}")

    def leader_endpoint(self) -> str:
        """The client URL of the current leader."""
        for url in self.client_urls:
            st = self.status(url)
            if st.get("leader") and st.get("leader") == st.get("header", {}).get("member_id"):
                return url
        raise RuntimeError("no etcd member reports itself leader")

    def follower_endpoint(self) -> str:
        leader = self.leader_endpoint()
        return next(u for u in self.client_urls if u != leader)


if __name__ == "__main__":  # quick manual check: python benchmarks/etcd_cluster.py
    with EtcdCluster() as c:
        t0 = time.monotonic()
        c.start()
        print(
            f"healthy in {time.monotonic() - t0:.2f} s: {c.version} endpoints={c.endpoints} pids={c.pids} "
            f"leader={c.leader_endpoint()} dir={c.tmpdir}"
        )
