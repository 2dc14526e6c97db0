"""The state directory of a local cluster: where each file lives, ``state.json``, and the address slot.

One cluster per directory (default ``~/.raykube``, or ``$RAYKUBE_STATE_DIR``, or ``--state-dir``; like
kind's and k3d's per-user state)::

    state.json            what is running: Ray address, the head's session id and PIDs, ports, actors
    pki/                  ca.crt ca.key apiserver.crt apiserver.key (made at first start, reused)
    tokens.json           bearer tokens (admin, viewer, components, one per node), 0600
    kubeconfig            admin kubeconfig (CA embedded), 0600
    kubeconfig-viewer     read-only kubeconfig
    raftstore/            cluster.json + m0/ m1/ m2/ (journal, dump, member.pid, member.log)
    ray-auth-token        the Ray head's auth token (Ray token auth stays on)
    ray/                  the Ray head's temp dir (or /tmp/raykube-<hash> if the path is too long
                          for Unix sockets)
    actors/               restart counters of the actors
    components/actors/    restart counters of the scheduler and the controller manager
    nodes/<name>/         each node's kubelet state (container working directories live below it)
    logs/ray-start.log

The cluster's address slot (its node and pod addresses, ``cluster.addresses``) is recorded in
``state.json`` and claimed machine-wide for this directory.

Concurrency: one ``raykube`` command at a time per state dir (nothing locks it); ``state.json`` and
private files are replaced atomically (temp file + rename), so a reader never sees half a file. Address
slots are shared by every cluster on the machine: ``cluster.addresses`` coordinates them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from .. import addresses
from .errors import LauncherError

STATE_VERSION = 1
MAX_SOCKET_DIR = 40  # Ray appends ~65 chars (session_.../sockets/plasma_store); Unix sockets allow 107


def default_state_dir() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get("RAYKUBE_STATE_DIR") or "~/.raykube"))


@dataclass(frozen=True)
class Paths:
    root: str

    @property
    def state(self) -> str:
        return os.path.join(self.root, "state.json")

    @property
    def pki(self) -> str:
        return os.path.join(self.root, "pki")

    @property
    def ca_cert(self) -> str:
        return os.path.join(self.pki, "ca.crt")

    @property
    def apiserver_cert(self) -> str:
        return os.path.join(self.pki, "apiserver.crt")

    @property
    def apiserver_key(self) -> str:
        return os.path.join(self.pki, "apiserver.key")

    @property
    def tokens(self) -> str:
        return os.path.join(self.root, "tokens.json")

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.root, "kubeconfig")

    @property
    def kubeconfig_viewer(self) -> str:
        return os.path.join(self.root, "kubeconfig-viewer")

    @property
    def raftstore(self) -> str:
        return os.path.join(self.root, "raftstore")

    @property
    def components(self) -> str:
        return os.path.join(self.root, "components")

    @property
    def nodes(self) -> str:
        return os.path.join(self.root, "nodes")

    def node_dir(self, name: str) -> str:
        return os.path.join(self.nodes, name)

    @property
    def ray_token(self) -> str:
        return os.path.join(self.root, "ray-auth-token")

    @property
    def logs(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def ray_start_log(self) -> str:
        return os.path.join(self.logs, "ray-start.log")

    @property
    def ray_temp(self) -> str:
        d = os.path.join(self.root, "ray")
        if len(d) <= MAX_SOCKET_DIR:
            return d
        return "/tmp/raykube-" + hashlib.sha1(self.root.encode()).hexdigest()[:10]


def paths_for(state_dir: str | None) -> Paths:
    """The paths of ``state_dir`` (default: ``default_state_dir()``), made absolute."""
    return Paths(os.path.abspath(state_dir or default_state_dir()))


def load_state(p: Paths) -> dict[str, Any]:
    try:
        with open(p.state) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save_state(p: Paths, st: dict[str, Any]) -> None:
    os.makedirs(p.root, exist_ok=True)
    tmp = p.state + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f, indent=2, sort_keys=True)
    os.replace(tmp, p.state)


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def claim_address_slot(p: Paths, st: dict[str, Any]) -> int:
    """This cluster's address slot: node and pod addresses of its own, apart from other clusters on
    this machine."""
    # A cluster brought up again keeps its slot (its Nodes' podCIDRs cannot change); one made before
    # slots existed has slot 0's addresses.
    prefer = st.get("address_slot", 0 if st.get("up_at") else None)
    try:
        return addresses.claim(p.root, prefer=prefer)
    except addresses.NoFreeSlot as exc:
        raise LauncherError(str(exc)) from None


def release_address_slot(p: Paths) -> None:
    addresses.release(p.root)
