"""cluster.addresses: node/pod address arithmetic and the per-cluster address slots (pure logic on a
temporary slots dir; the claim files are the only shared state)."""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
from pathlib import Path

import pytest

from cluster import addresses as A


@pytest.fixture(autouse=True)
def slots_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "slots"
    monkeypatch.setenv("RAYKUBE_SLOTS_DIR", str(d))
    return d


def _cluster(tmp_path: Path, name: str, status: str | None = "running", slot: int | None = None) -> str:
    d = tmp_path / name
    d.mkdir()
    if status is not None:
        st: dict[str, object] = {"status": status}
        if slot is not None:
            st["address_slot"] = slot
        (d / "state.json").write_text(json.dumps(st))
    return str(d)


def test_slot_zero_keeps_the_historic_addresses_and_slots_do_not_overlap() -> None:
    assert A.node_addresses(1) == ("127.1.0.2", "127.16.1.0/24")
    seen_ips: set[str] = set()
    seen_nets: set[str] = set()
    for slot in range(A.SLOTS):
        for index in (0, 1, 2, A.NODES_PER_SLOT - 1):
            ip, cidr = A.node_addresses(index, slot)
            assert ip not in seen_ips and cidr not in seen_nets
            seen_ips.add(ip)
            seen_nets.add(cidr)
            net = ipaddress.ip_network(cidr)
            assert net.subnet_of(ipaddress.ip_network("127.0.0.0/8"))
            assert not net.overlaps(ipaddress.ip_network("127.96.0.0/16")), "clear of the service range"
            assert A.index_of_pod_cidr(cidr, slot) == index
    with pytest.raises(ValueError):
        A.node_addresses(0, A.SLOTS)
    with pytest.raises(ValueError):
        A.node_addresses(A.TOTAL_NODES - A.NODES_PER_SLOT + 1, A.SLOTS - 1)
    assert A.index_of_pod_cidr("10.0.0.0/24") is None
    assert A.index_of_pod_cidr(A.node_addresses(0, 1)[1], 2) is None, "another slot's CIDR is not ours"


def test_claims_are_per_state_dir_stable_and_released(tmp_path: Path) -> None:
    a, b = _cluster(tmp_path, "a"), _cluster(tmp_path, "b")
    assert A.claim(a) == 0 and A.claim(b) == 1
    assert A.claim(a) == 0, "a cluster keeps its slot"
    A.release(a)
    assert A.owner(0) is None
    c = _cluster(tmp_path, "c")
    assert A.claim(c) == 0, "the lowest free slot"
    with pytest.raises(A.NoFreeSlot) as ei:
        A.claim(a, prefer=0)  # a cluster brought up again wants its own addresses back
    assert c in str(ei.value)


def test_stale_claims_are_taken_over(tmp_path: Path) -> None:
    stopped = _cluster(tmp_path, "stopped", status="stopped", slot=0)
    gone = _cluster(tmp_path, "gone")
    moved = _cluster(tmp_path, "moved", slot=5)
    live = _cluster(tmp_path, "live", slot=3)
    for slot, owner in ((0, stopped), (1, gone), (2, moved), (3, live)):
        Path(A.slots_dir()).mkdir(exist_ok=True)
        Path(A.slots_dir(), f"slot-{slot}").write_text(owner + "\n")
    Path(gone, "state.json").unlink()
    Path(gone).rmdir()
    new = [_cluster(tmp_path, f"new{i}") for i in range(4)]
    assert [A.claim(d) for d in new] == [0, 1, 2, 4], "stopped, deleted and moved claims are stale; live is not"
    assert A.owner(3) == live


def _claim_in_child(args: tuple[str, str]) -> int:
    import os

    os.environ["RAYKUBE_SLOTS_DIR"] = args[0]
    return A.claim(args[1])


def test_concurrent_claims_get_distinct_slots(tmp_path: Path, slots_dir: Path) -> None:
    dirs = [_cluster(tmp_path, f"c{i}") for i in range(8)]
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        got = pool.map(_claim_in_child, [(str(slots_dir), d) for d in dirs])
    assert sorted(got) == list(range(8))


def test_all_slots_taken_is_a_clear_error(tmp_path: Path) -> None:
    for i in range(A.SLOTS):
        A.claim(_cluster(tmp_path, f"c{i}"))
    with pytest.raises(A.NoFreeSlot, match="raykube down"):
        A.claim(_cluster(tmp_path, "one-too-many"))
