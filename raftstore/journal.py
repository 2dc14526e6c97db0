"""A durable Raft log for pysyncobj.

pysyncobj's own ``FileJournal`` writes through an mmap and never fsyncs, stores
term and vote without fsync, rewrites itself non-atomically on compaction, and
(with the SyncObj code around it) truncates log entries unconditionally on every
overlapping AppendEntries. This journal closes those gaps:

* **Group commit.** ``add``/``setCurrentTerm`` only buffer; ``sync()`` makes
  everything durable with one ``fdatasync`` of the log and, when term or vote
  changed, an atomic fsync'd rewrite of the meta file. The member's transport
  holds every outgoing Raft message until ``sync()`` has run (see
  ``transport.py``), so nothing a member says (a vote, an append-entries
  acknowledgement, entries it replicates as leader) can reach a peer before
  the state behind it is on disk.
* **Torn tails.** Every record carries a CRC32; on open, the log is cut at the
  first short or corrupt record (the write that was in flight when the process
  or machine died).
* **Raft's truncation rule.** ``deleteEntriesFrom`` is lazy: entries are only
  removed when an ``add`` at the same index brings a different term (a real
  conflict, §5.3 of the Raft paper). pysyncobj calls it on every append-entries
  whose ``prevLogIdx`` is behind our last entry, which would otherwise drop
  entries this member already acknowledged.
* **Snapshots.** pysyncobj loads a dump by ``clear()`` followed by exactly two
  ``add`` calls (the entries the snapshot ends with). If our log holds the
  second of them with the same term, the entries after it are kept, as Raft's
  InstallSnapshot rule says; this also covers a crash between writing the dump
  and compacting the log. Before the log's prefix is dropped (compaction), the
  dump file and its directory are fsynced, and the new log file replaces the
  old one atomically.

**Power-loss simulation** (``RAFTSTORE_SIMULATE_POWER_LOSS=1``, for tests):
appended bytes stay in process memory until ``sync()``, so a SIGKILL loses
exactly what a power cut would lose: everything not yet fsynced. With
``RAFTSTORE_UNSAFE_SKIP_SYNC=1`` as well, ``sync()`` does nothing, which is
stock pysyncobj's behaviour; the durability tests use it to show they catch
the loss.

Concurrency: every method runs on the member's Raft thread only.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

_MAGIC = b"RSJ1"
_REC = struct.Struct("<IQQI")  # body length, index, term, crc32(index, term, body)

Entry = tuple[bytes, int, int]  # (command, index, term), pysyncobj's layout


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def _crc(idx: int, term: int, body: bytes) -> int:
    return zlib.crc32(body, zlib.crc32(struct.pack("<QQ", idx, term)))


@dataclass
class JournalStats:
    """Counters the member exports as metrics."""

    syncs: int = 0
    sync_seconds_total: float = 0.0
    sync_latencies: list[float] = field(default_factory=list)  # drained by the metrics exporter
    records_written: int = 0
    truncations: int = 0
    skipped_duplicate_adds: int = 0
    torn_tail_bytes: int = 0


class DurableJournal:
    """The pysyncobj ``Journal`` interface over an append-only, CRC-checked file."""

    def __init__(self, path: str, dump_path: str | None = None) -> None:
        self._path = path
        self._meta_path = path + ".meta"
        self._dump_path = dump_path
        self._dir = os.path.dirname(os.path.abspath(path))
        self._entries: list[Entry] = []
        self._offsets: list[int] = []  # file offset of each entry's record
        self._dirty = False
        self._meta_dirty = False
        self._pending_cut: int | None = None  # lazy deleteEntriesFrom position
        self._rebase: list[Entry] | None = None  # old entries stashed by clear()
        self._rebase_adds = 0
        self.stats = JournalStats()
        self._simulate = os.environ.get("RAFTSTORE_SIMULATE_POWER_LOSS") == "1"
        self._skip_sync = os.environ.get("RAFTSTORE_UNSAFE_SKIP_SYNC") == "1"
        self._staged = bytearray()  # simulation: bytes written after the durable end
        self._durable_end = 0
        self.fsync_delay = 0.0  # fault injection: a slow disk
        self.on_sync: Callable[[float], None] | None = None
        self._meta: dict[str, Any] = {"term": 0, "voted_for": None, "commit": 1}
        if os.path.exists(self._meta_path):
            with open(self._meta_path, "rb") as f:
                self._meta.update(json.loads(f.read() or b"{}"))
        self._meta_commit_written = self._meta.get("commit")
        self._open_and_recover()

    # ---- file handling -------------------------------------------------
    def _open_and_recover(self) -> None:
        if not os.path.exists(self._path):
            _atomic_write(self._path, _MAGIC)
        self._f = open(self._path, "r+b", buffering=0)
        data = self._f.read()
        if data[:4] != _MAGIC:
            raise RuntimeError(f"{self._path} is not a raftstore journal (bad magic)")
        pos = 4
        while pos + _REC.size <= len(data):
            length, idx, term, crc = _REC.unpack_from(data, pos)
            end = pos + _REC.size + length
            if end > len(data):
                break
            body = data[pos + _REC.size : end]
            if _crc(idx, term, body) != crc:
                break
            self._entries.append((bytes(body), idx, term))
            self._offsets.append(pos)
            pos = end
        if pos != len(data):
            # A record that was being written when we died: it was never
            # acknowledged (sync runs before any reply), so dropping it is safe.
            self.stats.torn_tail_bytes = len(data) - pos
            self._f.truncate(pos)
            os.fsync(self._f.fileno())
        self._end = pos
        self._durable_end = pos
        self._staged = bytearray()
        self._f.seek(pos)

    def _append_record(self, command: bytes, idx: int, term: int) -> None:
        body = bytes(command)
        rec = _REC.pack(len(body), idx, term, _crc(idx, term, body)) + body
        self._offsets.append(self._end)
        if self._simulate:
            self._staged += rec
        else:
            self._f.write(rec)
        self._end += len(rec)
        self._entries.append((body, idx, term))
        self._dirty = True
        self.stats.records_written += 1

    def _physical_cut(self, pos: int) -> None:
        if pos >= len(self._entries):
            return
        self._end = self._offsets[pos]
        del self._entries[pos:]
        del self._offsets[pos:]
        if self._simulate and self._end >= self._durable_end:
            del self._staged[self._end - self._durable_end :]
        else:
            self._staged = bytearray()
            self._durable_end = min(self._durable_end, self._end)
            self._f.truncate(self._end)
            self._f.seek(self._end)
        self._dirty = True
        self.stats.truncations += 1

    def _rewrite(self, entries: list[Entry]) -> None:
        tmp = self._path + ".rewrite"
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            for command, idx, term in entries:
                f.write(_REC.pack(len(command), idx, term, _crc(idx, term, command)) + command)
            f.flush()
            os.fsync(f.fileno())
        self._f.close()
        os.replace(tmp, self._path)
        _fsync_dir(self._dir)
        self._entries = []
        self._offsets = []
        self._open_and_recover()
        self._dirty = False

    # ---- durability ----------------------------------------------------
    def sync(self) -> bool:
        """Make every buffered change durable. Returns True if it did any I/O."""
        if not (self._dirty or self._meta_dirty):
            return False
        start = time.perf_counter()
        if self.fsync_delay > 0:
            time.sleep(self.fsync_delay)
        if self._skip_sync:
            self._dirty = self._meta_dirty = False
            return False
        if self._dirty:
            if self._staged:
                self._f.seek(self._durable_end)
                self._f.write(self._staged)
                self._staged = bytearray()
            os.fdatasync(self._f.fileno())
            self._durable_end = self._end
            self._dirty = False
        if self._meta_dirty:
            _atomic_write(self._meta_path, json.dumps(self._meta).encode())
            self._meta_dirty = False
        elapsed = time.perf_counter() - start
        self.stats.syncs += 1
        self.stats.sync_seconds_total += elapsed
        if len(self.stats.sync_latencies) < 100_000:
            self.stats.sync_latencies.append(elapsed)
        if self.on_sync is not None:
            self.on_sync(elapsed)
        return True

    @property
    def needs_sync(self) -> bool:
        return self._dirty or self._meta_dirty

    # ---- pysyncobj Journal interface -----------------------------------
    def add(self, command: bytes, idx: int, term: int) -> None:
        if self._rebase is not None:
            self._append_record(command, idx, term)
            self._rebase_adds += 1
            if self._rebase_adds == 2:
                self._finish_rebase()
            return
        if self._pending_cut is not None and self._entries:
            pos = idx - self._entries[0][1]
            if 0 <= pos < len(self._entries):
                if self._entries[pos][2] == term:
                    # Same index and term means the same entry (Log Matching):
                    # keep ours instead of truncating and rewriting it.
                    self._pending_cut = pos + 1
                    self.stats.skipped_duplicate_adds += 1
                    return
                self._physical_cut(pos)
            self._pending_cut = None
        self._append_record(command, idx, term)

    def _finish_rebase(self) -> None:
        old = self._rebase or []
        self._rebase = None
        last_cmd, last_idx, last_term = self._entries[-1]
        tail: list[Entry] = []
        for i, (_, idx, term) in enumerate(old):
            if idx == last_idx and term == last_term:
                tail = old[i + 1 :]
                break
        for entry in tail:
            self._append_record(*entry)

    def clear(self) -> None:
        self._rebase = list(self._entries)
        self._rebase_adds = 0
        self._pending_cut = None
        self._entries = []
        self._offsets = []
        self._f.truncate(4)
        self._f.seek(4)
        self._staged = bytearray()
        self._end = self._durable_end = 4
        self._dirty = True

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj's name)
        if entryFrom < len(self._entries):
            self._pending_cut = entryFrom

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802
        # Called after a snapshot up to here was written: make the dump durable
        # before the log entries it replaces disappear.
        if self._dump_path and os.path.exists(self._dump_path):
            fd = os.open(self._dump_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(os.path.dirname(os.path.abspath(self._dump_path)))
        self._pending_cut = None
        self._rewrite(self._entries[entryTo:])

    def __getitem__(self, item: int | slice) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def _destroy(self) -> None:
        try:
            self.sync()
        finally:
            self._f.close()

    def flush(self) -> None:
        self.sync()

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802
        # Not needed for safety (a lower commit index is always safe after a
        # restart), so it is written with the next term change or once a second.
        self._meta["commit"] = raftCommitIndex

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return int(self._meta.get("commit", 1))

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:  # noqa: N802
        self._meta["term"] = term
        self._meta["voted_for"] = votedForNodeId
        self._meta_dirty = True

    def getCurrentTerm(self) -> int:  # noqa: N802
        return int(self._meta.get("term", 0))

    def getVotedForNodeId(self) -> Any:  # noqa: N802
        return self._meta.get("voted_for")

    def onOneSecondTimer(self) -> None:  # noqa: N802
        if self._meta.get("commit") != self._meta_commit_written:
            self._meta_dirty = True
            self._meta_commit_written = self._meta.get("commit")
