"""The audit hash chain (CORE-08): hashing and verification, with no Flask and no database.

Every audit entry stores ``hash = HMAC-SHA256(key, prev_hash ‖ canonical JSON)``
where ``prev_hash`` is the previous entry's hash (``GENESIS`` for the first one,
or the hash a purge checkpoint kept) and the canonical JSON holds the entry's
fields with sorted keys and no spaces.  Without the key nobody can forge an
entry; editing, deleting, inserting or reordering entries breaks the chain, and
``verify_chain`` names the first place where it breaks.

``verify_chain`` reads the entries as an iterator in ``seq`` order (ties by id)
and keeps one entry of look-ahead, so its memory does not grow with the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

GENESIS = "0" * 64

#: The fields that are hashed, in the order they are documented.
HASHED_FIELDS = (
    "seq", "at", "actor_id", "actor_name", "unit_id", "object_type", "object_id", "action",
    "before", "after", "remote_addr",
)

# Kinds of damage ``verify_chain`` reports.
EDITED = "edited"
DELETED = "deleted"
INSERTED = "inserted"
REORDERED = "reordered"
HEAD = "head"
CHECKPOINT = "checkpoint"

_RENUMBER_SEARCH = 1000  # after a break: how far to look for entries renumbered after a deletion


def _key_bytes(key: str | bytes) -> bytes:
    if not key:
        raise ValueError("the audit key is empty (setting PORTAL_AUDIT_KEY)")
    return key if isinstance(key, bytes) else key.encode("utf-8")


def iso_utc(at: datetime) -> str:
    """``at`` as ISO-8601 in UTC with microseconds: ``2026-03-05T01:02:03.000004+00:00``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r} in an audit entry")
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The canonical JSON of an entry's hashed fields (UTF-8 bytes)."""
    data = {name: fields.get(name) for name in HASHED_FIELDS}
    data["at"] = iso_utc(data["at"])
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def entry_hash(key: str | bytes, prev_hash: str, fields: Mapping[str, Any]) -> str:
    """``HMAC-SHA256(key, prev_hash ‖ canonical JSON)`` as 64 hex digits."""
    message = prev_hash.encode("ascii") + canonical(fields)
    return hmac.new(_key_bytes(key), message, hashlib.sha256).hexdigest()


def checkpoint_mac(key: str | bytes, seq: int, hash_: str, purged_at: datetime, by: str | None) -> str:
    """The MAC that makes a purge checkpoint unforgeable without the key."""
    body = json.dumps(
        {"kind": "audit-checkpoint", "seq": seq, "hash": hash_, "purged_at": iso_utc(purged_at),
         "by": by},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    ).encode("utf-8")
    return hmac.new(_key_bytes(key), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """Where verification starts after a purge: the last purged entry's seq and hash."""

    seq: int
    hash: str
    purged_at: datetime | None = None
    by: str | None = None
    mac: str | None = None


@dataclass(frozen=True)
class Problem:
    kind: str  # EDITED, DELETED, INSERTED, REORDERED, HEAD or CHECKPOINT
    seq: int
    message: str


@dataclass(frozen=True)
class Result:
    count: int  # entries checked
    last_seq: int
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        if self.problem is None:
            return f"audit chain OK: {self.count} entries"
        return f"audit chain BROKEN at seq {self.problem.seq} ({self.problem.kind}): {self.problem.message}"


class _Peekable:
    def __init__(self, items: Iterable[Mapping[str, Any]]):
        self._it: Iterator[Mapping[str, Any]] = iter(items)
        self._next: Mapping[str, Any] | None = None
        self._has_next = False

    def peek(self) -> Mapping[str, Any] | None:
        if not self._has_next:
            self._next = next(self._it, None)
            self._has_next = True
        return self._next

    def pop(self) -> Mapping[str, Any] | None:
        item = self.peek()
        self._has_next = False
        return item


def verify_checkpoints(key: str | bytes, checkpoints: Iterable[Checkpoint]) -> Problem | None:
    """Each checkpoint must carry a valid MAC and they must move forward."""
    last = 0
    for cp in checkpoints:
        expected = checkpoint_mac(key, cp.seq, cp.hash, cp.purged_at, cp.by) if cp.purged_at else None
        if cp.mac is None or expected is None or not hmac.compare_digest(cp.mac, expected):
            return Problem(CHECKPOINT, cp.seq, "the purge checkpoint was forged or altered (its MAC does not match)")
        if cp.seq < last:
            return Problem(CHECKPOINT, cp.seq, "purge checkpoints go backwards")
        last = cp.seq
    return None


def verify_chain(
    rows: Iterable[Mapping[str, Any]],
    key: str | bytes,
    *,
    start: Checkpoint | None = None,
    head: tuple[int, str] | None = None,
    find_hash: Callable[[str], int | None] | None = None,
) -> Result:
    """Walk ``rows`` (mappings with the hashed fields plus ``prev_hash`` and ``hash``, in
    ``seq`` order, ties by id) and return the first damage found.

    ``start`` is the latest purge checkpoint (default: the beginning, seq 0 / ``GENESIS``);
    ``head`` the ``(seq, hash)`` the database's head row holds (None: no head row);
    ``find_hash(h)`` returns the seq of a stored entry whose hash is ``h`` (used only
    after a break, to tell an entry moved elsewhere from one that is gone).

    Kinds: *edited* (the entry's content no longer matches its hash), *deleted*
    (a seq is missing, or the tail ends before the head), *inserted* (an extra
    entry: a repeated seq, a seq past the head, or an entry the chain skips),
    *reordered* (the entry links to an entry that is somewhere else in the chain).
    """
    start = start or Checkpoint(0, GENESIS)
    prev_seq, prev_hash = start.seq, start.hash
    count = 0
    stream = _Peekable(rows)
    while (row := stream.pop()) is not None:
        seq = row["seq"]
        problem = _check(row, stream, key, prev_seq, prev_hash, head, find_hash)
        if problem is not None:
            return Result(count, prev_seq, problem)
        count += 1
        prev_seq, prev_hash = seq, row["hash"]
    return _check_tail(count, prev_seq, prev_hash, head)


def _check(row, stream: _Peekable, key, prev_seq: int, prev_hash: str, head, find_hash) -> Problem | None:
    """The damage at ``row``, or None when it continues the chain."""
    seq = row["seq"]
    if seq is None or seq <= prev_seq:
        return Problem(INSERTED, seq or 0, f"an extra entry repeats seq {seq} (after seq {prev_seq})")
    if seq > prev_seq + 1:
        missing = prev_seq + 1 if seq == prev_seq + 2 else f"{prev_seq + 1}..{seq - 1}"
        return Problem(DELETED, prev_seq + 1, f"entry {missing} is missing")
    if head is not None and seq > head[0]:
        return Problem(INSERTED, seq, f"entry {seq} lies past the chain head (seq {head[0]})")
    stored_prev, stored_hash = str(row["prev_hash"] or ""), str(row["hash"] or "")
    link_ok = hmac.compare_digest(stored_prev, prev_hash)
    content_ok = hmac.compare_digest(stored_hash, entry_hash(key, stored_prev, row))
    if link_ok and content_ok:
        return None
    nxt = stream.peek()
    skipped = nxt is not None and nxt["prev_hash"] == prev_hash  # the next entry links past this one
    if link_ok:
        if skipped:
            return Problem(INSERTED, seq, "an entry the chain does not link to was inserted here")
        return Problem(EDITED, seq, "the entry was changed after it was written (hash mismatch)")
    elsewhere = find_hash(stored_prev) if find_hash and stored_prev else None
    if elsewhere is not None and elsewhere != seq - 1:
        return Problem(REORDERED, seq, f"the entry belongs after entry {elsewhere}: entries were swapped "
                                       "or reordered")
    if skipped:
        return Problem(INSERTED, seq, "an entry the chain does not link to was inserted here")
    if content_ok:
        return Problem(DELETED, seq, "the entry links to an entry that is no longer there")
    if hmac.compare_digest(stored_hash, entry_hash(key, prev_hash, row)):
        return Problem(EDITED, seq, "the entry's link to the previous entry was changed")
    for gap in range(1, _RENUMBER_SEARCH + 1):  # entries deleted before it and the rest renumbered?
        if hmac.compare_digest(stored_hash, entry_hash(key, stored_prev, {**row, "seq": seq + gap})):
            return Problem(DELETED, seq, f"{gap} entr{'y' if gap == 1 else 'ies'} before this one "
                                         f"{'was' if gap == 1 else 'were'} deleted and the rest renumbered "
                                         f"(this entry was written as seq {seq + gap})")
    return Problem(INSERTED, seq, "an entry that does not belong to the chain (forged or moved here)")


def _check_tail(count: int, prev_seq: int, prev_hash: str, head) -> Result:
    if head is None:
        if count:
            return Result(count, prev_seq, Problem(HEAD, prev_seq, "the chain head row is missing"))
        return Result(count, prev_seq)
    head_seq, head_hash = head
    if prev_seq < head_seq:
        tail = prev_seq + 1 if head_seq == prev_seq + 1 else f"{prev_seq + 1}..{head_seq}"
        return Result(count, prev_seq, Problem(DELETED, prev_seq + 1, f"entry {tail} at the end is missing"))
    if head_hash != prev_hash:
        return Result(count, prev_seq, Problem(HEAD, prev_seq, "the last entry does not match the chain head"))
    return Result(count, prev_seq)
