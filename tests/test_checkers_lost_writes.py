"""Lost-write checkers: the set workload and acknowledged register writes."""

from __future__ import annotations

from typing import Any

from checker_fixtures import call

from raftstore.chaos.checkers import check_acknowledged_writes, check_lost_writes
from raftstore.chaos.history import History

# -- lost writes: set workload -------------------------------------------------


def _set_history(adds: list[tuple[int, str, float, float]], final: list[Any], read_at: float = 100.0) -> History:
    h = History()
    for element, status, start, end in adds:
        call(h, 1000 + element, "add", "s", element, start, end, status=status)
    call(h, 0, "read_set", "s", None, read_at, read_at + 1, out=final)
    return h


def test_set_all_present_is_valid() -> None:
    h = _set_history([(1, "ok", 0, 1), (2, "ok", 1, 2), (3, "info", 2, 3), (4, "fail", 3, 4)], [1, 2])
    r = check_lost_writes(h)
    assert r.valid is True
    k = r.keys["s"]
    assert (k.ok_count, k.info_count, k.fail_count) == (2, 1, 1)
    assert k.final_read_size == 2 and not k.recovered


def test_set_info_add_present_is_recovered() -> None:
    h = _set_history([(1, "ok", 0, 1), (3, "info", 2, 3)], [1, 3])
    r = check_lost_writes(h)
    assert r.valid is True
    assert r.recovered == [("s", 3)]


def test_set_lost_add() -> None:
    h = _set_history([(1, "ok", 0, 1), (2, "ok", 1, 2)], [1])
    r = check_lost_writes(h)
    assert r.valid is False
    assert r.lost == [("s", 2)]
    assert r.to_dict()["lost_count"] == 1


def test_set_unexpected_element() -> None:
    r = check_lost_writes(_set_history([(1, "ok", 0, 1)], [1, 99]))
    assert r.valid is False and r.unexpected == [("s", 99)]
    # An add that failed must not show up either.
    r = check_lost_writes(_set_history([(1, "ok", 0, 1), (2, "fail", 1, 2)], [1, 2]))
    assert r.valid is False and r.unexpected == [("s", 2)]


def test_set_duplicated_element() -> None:
    r = check_lost_writes(_set_history([(1, "ok", 0, 1), (2, "ok", 1, 2)], [1, 2, 2]))
    assert r.valid is False and r.duplicated == [("s", 2)]
    assert not r.lost and not r.unexpected


def test_set_uses_last_ok_read_and_spares_concurrent_adds() -> None:
    h = History()
    call(h, 1, "add", "s", 1, 0.0, 1.0)
    call(h, 0, "read_set", "s", None, 2.0, 3.0, out=[])  # an early read
    call(h, 2, "add", "s", 2, 9.0, 12.0)  # acknowledged after the last read began
    call(h, 0, "read_set", "s", None, 10.0, 11.0, out=[1])
    call(h, 3, "read_set", "s", None, 20.0, 21.0, status="fail")
    r = check_lost_writes(h)
    assert r.valid is True
    assert r.keys["s"].unconfirmed == [2]


def test_set_without_final_read_is_unknown() -> None:
    h = History()
    call(h, 1, "add", "s", 1, 0.0, 1.0)
    call(h, 1, "add", "t", 1, 0.0, 1.0)
    call(h, 0, "read_set", "t", None, 2.0, 3.0, out=[1])
    r = check_lost_writes(h)
    assert r.valid == "unknown"
    assert r.keys["s"].valid == "unknown" and r.keys["t"].valid is True


def test_set_keys_are_independent() -> None:
    h = History()
    for key in ("a", "b"):
        call(h, 1, "add", key, 1, 0.0, 1.0)
        call(h, 1, "add", key, 2, 1.0, 2.0)
    call(h, 0, "read_set", "a", None, 5.0, 6.0, out=[1, 2])
    call(h, 0, "read_set", "b", None, 5.0, 6.0, out=[1])
    r = check_lost_writes(h)
    assert r.valid is False and r.lost == [("b", 2)]
    assert r.keys["a"].valid is True


# -- lost writes: register final values ----------------------------------------


def test_acknowledged_write_survives() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 0, "write", "x", 2, 2.0, 3.0)
    call(h, 1, "cas", "y", [None, 5], 0.0, 1.0)
    r = check_acknowledged_writes(h, {"x": 2, "y": 5, "z": None})
    assert r.valid is True
    assert r.checked_count == 3
    assert r.keys["x"].last_acknowledged is not None


def test_acknowledged_write_lost() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 0, "write", "x", 2, 2.0, 3.0)
    r = check_acknowledged_writes(h, {"x": 1})
    assert r.valid is False and r.lost == ["x"]
    assert r.keys["x"].explanations == [2]
    r = check_acknowledged_writes(h, {"x": None})
    assert r.valid is False and r.lost == ["x"]


def test_acknowledged_write_final_explained_by_others() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 0, "write", "x", 2, 2.0, 3.0)
    call(h, 1, "write", "x", 3, 2.5, 4.0)  # overlaps the last acknowledged write
    call(h, 2, "write", "x", 4, 0.0, 0.5, status="info")  # may land any time
    call(h, 3, "write", "x", 5, 5.0, 6.0, status="fail")  # did not happen
    for final in (2, 3, 4):
        assert check_acknowledged_writes(h, {"x": final}).valid is True
    for final in (1, 5, None):
        assert check_acknowledged_writes(h, {"x": final}).lost == ["x"]


def test_unacknowledged_key_unexpected_and_unchecked() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0, status="info")
    call(h, 0, "write", "y", 1, 0.0, 1.0)
    for final in (None, 1):
        assert check_acknowledged_writes(h, {"x": final}).valid is True
    r = check_acknowledged_writes(h, {"x": 7, "w": 3})
    assert r.valid is False and r.unexpected == ["x", "w"]
    assert r.keys["y"].status == "unchecked" and r.unchecked_count == 1
