"""Reading a growing JSON-lines file from where the last reader stopped, safe across
rotation (renamed away, a new file in its place) and truncation (copytruncate).

The position is a `Cursor` that the caller stores with what it made of the lines, in one
transaction: a restart resumes from the last stored cursor, so nothing is lost, and what
is read twice (a crash between reading and storing) is idempotent by the event's id.

A rotated file is finished first: while a cursor's file (by inode) is still found beside
the path (`audit.log.1`, or the API server's `audit-<time>.log` backups), its remaining
lines are read before the new file's. A file whose inode is gone entirely restarts at the
new file's beginning, and the lines it still held after the cursor are lost: `Batch.lost`
says so (the tail was too slow, or the log was deleted under it).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Bytes read per batch, and the longest line kept (a longer one is skipped whole).
BATCH_BYTES = 4 * 1024 * 1024
LINE_LIMIT = 16 * 1024 * 1024


# The file's first bytes identify it beside its inode: an inode is reused at once when a
# log is deleted and created again.
HEAD_BYTES = 256


@dataclass(frozen=True)
class Cursor:
    """Where reading stopped: the file (inode, device and a digest of its first bytes)
    and the byte offset."""

    inode: int = 0
    device: int = 0
    offset: int = 0
    head: str = ""  # sha256 of the file's first `head_size` bytes
    head_size: int = 0

    def to_json(self) -> str:
        return json.dumps({"inode": self.inode, "device": self.device, "offset": self.offset,
                           "head": self.head, "head_size": self.head_size})  # fmt: skip

    @classmethod
    def from_json(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(int(data["inode"]), int(data["device"]), int(data["offset"]),
                   str(data.get("head", "")), int(data.get("head_size", 0)))  # fmt: skip

    def same_file(self, path: Path, info: os.stat_result) -> bool:
        if (info.st_ino, info.st_dev) != (self.inode, self.device):
            return False
        return not self.head_size or _head(path, self.head_size) == self.head


@dataclass(frozen=True)
class Batch:
    """Complete lines read, the cursor after them, and what could not be read."""

    lines: list[str]
    cursor: Cursor
    skipped: int = 0  # lines longer than LINE_LIMIT, skipped whole
    lost: bool = False  # the cursor's file vanished before it was read to its end
    missing: bool = False  # no file at the path (yet)


def read_batch(path: Path, cursor: Cursor, limit: int = BATCH_BYTES) -> Batch:
    """The next complete lines after `cursor` (a last line without its newline waits for
    the writer to finish it), up to about `limit` bytes."""
    try:
        current = path.stat()
    except FileNotFoundError:
        return Batch([], cursor, missing=True)
    if (
        cursor.inode
        and (current.st_ino, current.st_dev) == (cursor.inode, cursor.device)
        and (not cursor.same_file(path, current))
    ):  # the same file, rewritten from its start (copytruncate, then written past us)
        return _read(path, Cursor(current.st_ino, current.st_dev, 0), limit)
    if cursor.inode and not cursor.same_file(path, current):
        rotated = _rotated(path, cursor)
        if rotated is not None:  # finish the old file first
            batch = _read(rotated, cursor, limit)
            if batch.lines or batch.skipped:
                return batch
            try:
                if rotated.stat().st_size > batch.cursor.offset:
                    return batch  # an unfinished last line: wait for it
            except OSError:
                pass
        return _read(path, Cursor(current.st_ino, current.st_dev, 0), limit, lost=rotated is None)
    start = cursor if cursor.inode else Cursor(current.st_ino, current.st_dev, 0)
    if start.offset > current.st_size:  # truncated in place: start over
        start = Cursor(start.inode, start.device, 0)
    if start.offset == 0:
        start = Cursor(start.inode, start.device, 0)  # a fingerprint anew
    return _read(path, start, limit)


def _head(path: Path, size: int) -> str:
    try:
        with path.open("rb") as handle:
            return hashlib.sha256(handle.read(size)).hexdigest()
    except OSError:
        return ""


def _rotated(path: Path, cursor: Cursor) -> Path | None:
    """The file the cursor points into, if it still sits beside `path` under another name."""
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return None
    for sibling in siblings:
        if sibling.name.startswith(path.stem) and sibling != path:
            try:
                info = sibling.stat()
            except OSError:
                continue
            if cursor.same_file(sibling, info):
                return sibling
    return None


def _read(path: Path, cursor: Cursor, limit: int, *, lost: bool = False) -> Batch:
    lines: list[str] = []
    skipped = 0
    offset = cursor.offset
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            while offset - cursor.offset < limit:
                line = handle.readline(LINE_LIMIT + 1)
                if not line:
                    break
                if len(line) > LINE_LIMIT:  # too long: skip to its end
                    rest = _skip_line(handle)
                    if rest is None:
                        break  # its end is not written yet
                    offset += len(line) + rest
                    skipped += 1
                    continue
                if not line.endswith(b"\n"):
                    break  # the writer has not finished it
                offset += len(line)
                text = line.decode("utf-8", errors="replace").strip()
                if text:
                    lines.append(text)
    except FileNotFoundError:
        return Batch([], cursor, missing=True)
    head_size = cursor.head_size
    head = cursor.head
    if head_size < HEAD_BYTES and offset > head_size:  # the fingerprint grows to its size
        head_size = min(offset, HEAD_BYTES)
        head = _head(path, head_size)
    return Batch(lines, Cursor(cursor.inode, cursor.device, offset, head, head_size), skipped,
                 lost)  # fmt: skip


def _skip_line(handle: BinaryIO) -> int | None:
    """Bytes up to and including the next newline, or None if there is none yet."""
    skipped = 0
    while True:
        chunk = handle.readline(LINE_LIMIT)
        if not chunk:
            return None
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            return skipped


def at_end(path: Path) -> Cursor:
    """A cursor at the file's current end: a new source starts with what comes next
    (the inventory finds what was there before)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return Cursor()
    head_size = min(info.st_size, HEAD_BYTES)
    return Cursor(info.st_ino, info.st_dev, info.st_size, _head(path, head_size), head_size)
