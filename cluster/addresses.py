"""Node and pod addresses on one machine, and the address slot of each cluster.

``node_addresses(index, slot)``: every node InternalIP and pod CIDR comes
from loopback (127.0.0.0/8 routes locally on Linux). Without slots, node 1
of every cluster got the same ``127.16.1.0/24``, so two clusters on one
machine (a user's and the test suite's, say) handed out the same pod IPs and
their pods failed to bind ("Address already in use") and crash-looped. The
range is split into ``SLOTS`` slots of ``NODES_PER_SLOT`` node addresses;
``raykube up`` claims the lowest free slot for its state dir and ``raykube
down`` gives it back.

A claim is a file ``<slots dir>/slot-<k>`` holding the owner's state dir,
created with ``O_CREAT | O_EXCL`` (atomic: two clusters starting at once
never get the same slot). A claim is stale, and is taken over, when its
state dir no longer exists or its ``state.json`` says the cluster was
stopped, or names another slot. The slots dir is machine-wide
(``/tmp/raykube-address-slots``; ``RAYKUBE_SLOTS_DIR`` overrides it), as the
addresses are.

Concurrency: processes on one machine, coordinated only through the
exclusive creation of claim files.
"""

from __future__ import annotations

import json
import os

SLOTS = 16
NODES_PER_SLOT = 1280  # 16 x 1280 = 20,480 node addresses: 127.16.0.0/24 .. 127.95.255.0/24 for pods
DEFAULT_DIR = "/tmp/raykube-address-slots"


TOTAL_NODES = SLOTS * NODES_PER_SLOT


class NoFreeSlot(RuntimeError):
    pass


def node_addresses(index: int, slot: int = 0) -> tuple[str, str]:
    """(InternalIP, podCIDR) for node number ``index`` of the cluster in ``slot``.

    Node ``g = slot * NODES_PER_SLOT + index`` of the machine gets 127.1.x.y and
    the /24 127.(16 + g//256).(g%256).0, which stays clear of the service range
    127.96.0.0/16. A cluster's first ``NODES_PER_SLOT`` nodes stay inside its
    slot; hollow nodes (nothing listens on their addresses) may go beyond."""
    g = slot * NODES_PER_SLOT + index
    if not (0 <= slot < SLOTS and index >= 0 and g < TOTAL_NODES):
        raise ValueError(
            f"node index {index} in address slot {slot} is out of range "
            f"(slot 0..{SLOTS - 1}, index 0..{TOTAL_NODES - 1 - slot * NODES_PER_SLOT})"
        )
    return f"127.1.{g // 250}.{g % 250 + 1}", f"127.{16 + g // 256}.{g % 256}.0/24"


def index_of_pod_cidr(cidr: str, slot: int = 0) -> int | None:
    """The node index that ``node_addresses`` gave ``cidr`` in ``slot`` (None if it is not one of ours)."""
    parts = cidr.split("/")[0].split(".")
    if len(parts) != 4 or parts[0] != "127" or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    index = (int(parts[1]) - 16) * 256 + int(parts[2]) - slot * NODES_PER_SLOT
    return index if index >= 0 else None


def slots_dir() -> str:
    return os.environ.get("RAYKUBE_SLOTS_DIR") or DEFAULT_DIR


def _claim_path(slot: int) -> str:
    return os.path.join(slots_dir(), f"slot-{slot}")


def owner(slot: int) -> str | None:
    """The state dir that holds ``slot``, or None."""
    try:
        with open(_claim_path(slot)) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def _stale(slot: int, state_dir: str) -> bool:
    try:
        with open(os.path.join(state_dir, "state.json")) as f:
            st = json.load(f)
    except FileNotFoundError:
        return not os.path.isdir(state_dir)  # a state dir being created has no state.json yet
    except (OSError, ValueError):
        return False  # unreadable: don't take it over
    return st.get("status") == "stopped" or st.get("address_slot", slot) != slot


def claim(state_dir: str, prefer: int | None = None) -> int:
    """The slot of ``state_dir``: the one it already holds, else ``prefer`` (a cluster brought up again
    keeps its addresses: its Nodes' podCIDRs are immutable), else the lowest free (or stale) one."""
    state_dir = os.path.abspath(state_dir)
    os.makedirs(slots_dir(), exist_ok=True)
    for slot in range(SLOTS):
        if owner(slot) == state_dir:
            return slot
    for slot in range(SLOTS) if prefer is None else [prefer]:
        path = _claim_path(slot)
        held = owner(slot)
        if held is not None and held != state_dir:
            if not _stale(slot, held):
                continue
            try:
                os.unlink(path)  # take over a stale claim; a racing claimant may win the create below
            except FileNotFoundError:
                pass
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(state_dir + "\n")
        return slot
    if prefer is not None:
        raise NoFreeSlot(
            f"this cluster's address slot {prefer} (its node and pod addresses) is held by the running "
            f"cluster in {owner(prefer)}; stop that one first (`raykube down --state-dir ...`)"
        )
    raise NoFreeSlot(
        f"all {SLOTS} address slots are held by running raykube clusters "
        f"({', '.join(filter(None, (owner(s) for s in range(SLOTS))))}); stop one with `raykube down`"
    )


def release(state_dir: str) -> None:
    """Give back the slot ``state_dir`` holds (if any)."""
    state_dir = os.path.abspath(state_dir)
    for slot in range(SLOTS):
        if owner(slot) == state_dir:
            try:
                os.unlink(_claim_path(slot))
            except FileNotFoundError:
                pass
