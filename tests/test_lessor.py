"""Unit tests for raftstore.lessor: lease expiry decisions, no network, no clock."""

from __future__ import annotations

from raftstore.lessor import Lessor


def test_a_new_leader_gives_every_lease_a_full_ttl_from_its_first_look() -> None:
    ls = Lessor()
    assert ls.expired(1, {1: 5, 2: 10}, now=100.0) == []
    assert ls.remaining(1, now=100.0) == 5.0
    assert ls.remaining(2, now=103.0) == 7.0
    assert ls.expired(1, {1: 5, 2: 10}, now=104.9) == []
    assert ls.expired(1, {1: 5, 2: 10}, now=105.0) == [1]


def test_an_expired_lease_is_returned_once_until_its_revoke_finishes() -> None:
    ls = Lessor()
    ls.expired(1, {1: 5}, now=0.0)
    assert ls.expired(1, {1: 5}, now=6.0) == [1]
    assert ls.expired(1, {1: 5}, now=7.0) == []
    ls.revoke_finished(1, None)
    assert ls.remaining(1, now=7.0) is None


def test_a_failed_revoke_is_proposed_again() -> None:
    ls = Lessor()
    ls.expired(1, {1: 5}, now=0.0)
    assert ls.expired(1, {1: 5}, now=6.0) == [1]
    ls.revoke_finished(1, {"code": "timeout", "message": "outcome unknown"})
    assert ls.remaining(1, now=6.0) == 0.0
    assert ls.expired(1, {1: 5}, now=6.1) == [1]


def test_a_revoke_of_a_lease_the_store_lost_counts_as_done() -> None:
    ls = Lessor()
    ls.expired(1, {1: 5}, now=0.0)
    assert ls.expired(1, {1: 5}, now=6.0) == [1]
    ls.revoke_finished(1, {"code": "lease_not_found", "message": "lease 1 not found"})
    assert ls.remaining(1, now=6.0) is None


def test_a_new_term_restarts_every_ttl() -> None:
    ls = Lessor()
    ls.expired(1, {1: 5}, now=0.0)
    assert ls.expired(2, {1: 5}, now=4.0) == []
    assert ls.expired(2, {1: 5}, now=8.9) == []
    assert ls.remaining(1, now=8.0) == 1.0
    assert ls.expired(2, {1: 5}, now=9.0) == [1]


def test_grant_and_keepalive_start_a_new_ttl() -> None:
    ls = Lessor()
    ls.expired(1, {}, now=0.0)
    ls.granted(7, 10, now=1.0)
    assert ls.remaining(7, now=1.0) == 10.0
    assert ls.expired(1, {7: 10}, now=9.0) == []
    ls.kept_alive(7, 10, now=9.0)
    assert ls.expired(1, {7: 10}, now=18.0) == []
    assert ls.expired(1, {7: 10}, now=19.0) == [7]


def test_leases_gone_from_the_store_are_forgotten_and_new_ones_get_a_full_ttl() -> None:
    ls = Lessor()
    ls.expired(1, {1: 5}, now=0.0)
    assert ls.expired(1, {2: 3}, now=2.0) == []
    assert ls.remaining(1, now=2.0) is None
    assert ls.remaining(2, now=2.0) == 3.0


def test_leases_are_returned_in_the_order_given() -> None:
    ls = Lessor()
    leases = {9: 1, 3: 1, 5: 1}
    ls.expired(1, leases, now=0.0)
    assert ls.expired(1, leases, now=1.0) == [9, 3, 5]


def test_stepping_down_forgets_deadlines_but_not_revokes_in_flight() -> None:
    ls = Lessor()
    ls.expired(1, {1: 5, 2: 5}, now=0.0)
    assert ls.expired(1, {1: 5, 2: 5}, now=5.0) == [1, 2]
    ls.step_down()
    assert ls.remaining(1, now=5.0) is None
    # Leader again, even in the same term: fresh TTLs for all.
    assert ls.expired(1, {1: 5, 2: 5}, now=6.0) == []
    assert ls.remaining(2, now=6.0) == 5.0
    ls.revoke_finished(2, {"code": "leader_changed", "message": "outcome unknown"})
    # Lease 1's revoke is still in flight, so only lease 2 comes back.
    assert ls.expired(1, {1: 5, 2: 5}, now=11.0) == [2]


def test_remaining_never_goes_negative() -> None:
    ls = Lessor()
    ls.granted(4, 2, now=10.0)
    assert ls.remaining(4, now=100.0) == 0.0
    assert ls.remaining(5, now=100.0) is None
