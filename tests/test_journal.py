"""Unit tests of the durable Raft journal: group commit, torn tails, Raft's
truncation rule, snapshot rebase, atomic compaction and meta durability."""

from __future__ import annotations

import os

import pytest

from raftstore.journal import DurableJournal


def entries(j: DurableJournal) -> list[tuple[bytes, int, int]]:
    return [tuple(e) for e in j]  # type: ignore[misc]


def reopen(path: str, dump: str | None = None) -> DurableJournal:
    return DurableJournal(path, dump)


def test_add_is_buffered_until_sync_then_durable(tmp_path) -> None:
    path = str(tmp_path / "journal")
    j = DurableJournal(path)
    j.add(b"a", 1, 1)
    j.add(b"b", 2, 1)
    assert j.needs_sync
    assert j.sync() is True
    assert not j.needs_sync
    assert j.sync() is False  # nothing new: no I/O
    j._f.close()
    assert entries(reopen(path)) == [(b"a", 1, 1), (b"b", 2, 1)]


def test_term_and_vote_are_written_only_by_sync(tmp_path) -> None:
    path = str(tmp_path / "journal")
    j = DurableJournal(path)
    j.setCurrentTerm(7, "127.0.0.1:1")
    assert j.needs_sync, "a vote must not count as durable before sync"
    assert not os.path.exists(path + ".meta") or reopen(path).getCurrentTerm() != 7
    j.sync()
    r = reopen(path)
    assert (r.getCurrentTerm(), r.getVotedForNodeId()) == (7, "127.0.0.1:1")


def test_torn_tail_is_cut_at_the_last_whole_record(tmp_path) -> None:
    path = str(tmp_path / "journal")
    j = DurableJournal(path)
    for i in range(1, 6):
        j.add(f"cmd{i}".encode(), i, 1)
    j.sync()
    j._f.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 3)  # the last record was half-written
    r = reopen(path)
    assert [e[1] for e in r] == [1, 2, 3, 4]
    assert r.stats.torn_tail_bytes > 0
    r.add(b"cmd5", 5, 2)
    r.sync()
    r._f.close()
    assert [e[1:] for e in reopen(path)] == [(1, 1), (2, 1), (3, 1), (4, 1), (5, 2)]


def test_corrupt_record_is_detected_by_crc(tmp_path) -> None:
    path = str(tmp_path / "journal")
    j = DurableJournal(path)
    j.add(b"aaaa", 1, 1)
    j.add(b"bbbb", 2, 1)
    j.sync()
    j._f.close()
    data = bytearray(open(path, "rb").read())
    data[-2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    assert [e[1] for e in reopen(path)] == [1]


def test_overlapping_append_does_not_truncate_matching_entries(tmp_path) -> None:
    """pysyncobj deletes every entry after prevLogIdx and re-adds what the
    message carries. With a shorter message that would drop entries this
    member already acknowledged; Raft only truncates on a conflict."""
    j = DurableJournal(str(tmp_path / "journal"))
    for i in range(1, 11):
        j.add(f"e{i}".encode(), i, 1)
    j.sync()
    # An append-entries with prevLogIdx=5 carrying entries 6..8 (same term).
    j.deleteEntriesFrom(5)  # list offset of index 6
    for i in range(6, 9):
        j.add(f"e{i}".encode(), i, 1)
    assert [e[1] for e in j] == list(range(1, 11)), "acknowledged entries 9 and 10 were dropped"
    assert not j.needs_sync


def test_conflicting_append_truncates_from_the_conflict(tmp_path) -> None:
    j = DurableJournal(str(tmp_path / "journal"))
    for i in range(1, 11):
        j.add(f"e{i}".encode(), i, 1)
    j.sync()
    j.deleteEntriesFrom(5)
    j.add(b"e6", 6, 1)  # matches
    j.add(b"x7", 7, 2)  # conflicts: 7.. go, x7 replaces them
    assert [e[1:] for e in j] == [(i, 1) for i in range(1, 7)] + [(7, 2)]
    j.sync()
    j._f.close()
    assert [e[1:] for e in reopen(str(tmp_path / "journal"))] == [(i, 1) for i in range(1, 7)] + [(7, 2)]


def test_snapshot_load_keeps_entries_after_the_snapshot(tmp_path) -> None:
    """pysyncobj loads a dump by clear() + add(second-last) + add(last). If the
    log already holds the last snapshot entry, entries after it stay (Raft's
    InstallSnapshot rule); this is also the crash-between-dump-and-compaction case."""
    j = DurableJournal(str(tmp_path / "journal"))
    for i in range(1, 21):
        j.add(f"e{i}".encode(), i, 3)
    j.sync()
    j.clear()
    j.add(b"e9", 9, 3)
    j.add(b"e10", 10, 3)
    assert [e[1] for e in j] == list(range(9, 21))
    j.sync()
    j._f.close()
    assert [e[1] for e in reopen(str(tmp_path / "journal"))] == list(range(9, 21))


def test_snapshot_load_with_unknown_entry_replaces_the_log(tmp_path) -> None:
    j = DurableJournal(str(tmp_path / "journal"))
    for i in range(1, 6):
        j.add(f"e{i}".encode(), i, 1)
    j.clear()
    j.add(b"s", 49, 4)
    j.add(b"s", 50, 4)
    assert [e[1:] for e in j] == [(49, 4), (50, 4)]


def test_compaction_fsyncs_the_dump_and_rewrites_atomically(tmp_path, monkeypatch) -> None:
    dump = tmp_path / "dump"
    dump.write_bytes(b"snapshot")
    path = str(tmp_path / "journal")
    j = DurableJournal(path, str(dump))
    for i in range(1, 11):
        j.add(f"e{i}".encode(), i, 1)
    j.sync()
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    j.deleteEntriesTo(7)
    assert str(dump) in synced, "the dump must be durable before log entries are dropped"
    assert [e[1] for e in j] == [8, 9, 10]
    j._f.close()
    assert [e[1] for e in reopen(path)] == [8, 9, 10]
    assert not os.path.exists(path + ".rewrite")


def test_not_a_journal_is_refused(tmp_path) -> None:
    path = tmp_path / "journal"
    path.write_bytes(b"garbage that is not ours")
    with pytest.raises(RuntimeError, match="not a raftstore journal"):
        DurableJournal(str(path))


def test_power_loss_simulation_drops_unsynced_bytes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RAFTSTORE_SIMULATE_POWER_LOSS", "1")
    path = str(tmp_path / "journal")
    j = DurableJournal(path)
    j.add(b"a", 1, 1)
    j.sync()
    j.add(b"b", 2, 1)  # never synced: lost with the process
    j._f.close()
    assert [e[1] for e in reopen(path)] == [1]
