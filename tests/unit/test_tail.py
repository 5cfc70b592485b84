"""Tailing a JSON-lines log across rotation and truncation (sources/tail.py), on real files:
nothing read twice, nothing skipped, a half-written line waits, a log deleted unread says
so."""

from __future__ import annotations

import os
from pathlib import Path

from driftwarden.sources.tail import LINE_LIMIT, Cursor, at_end, read_batch


def append(path: Path, *lines: str, newline: bool = True) -> None:
    with path.open("a") as handle:
        handle.write("\n".join(lines) + ("\n" if newline else ""))


def read_all(path: Path, cursor: Cursor) -> tuple[list[str], Cursor]:
    lines: list[str] = []
    while True:
        batch = read_batch(path, cursor, limit=64)
        if not batch.lines and batch.cursor == cursor:
            return lines, cursor
        lines += batch.lines
        cursor = batch.cursor


def test_reads_from_the_cursor_and_waits_for_a_half_written_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, "a", "b")
    lines, cursor = read_all(log, Cursor())
    assert lines == ["a", "b"]
    append(log, '{"half": ', newline=False)
    assert read_all(log, cursor) == ([], cursor)
    append(log, "1}")
    lines, cursor = read_all(log, cursor)
    assert lines == ['{"half": 1}']
    assert cursor.offset == log.stat().st_size


def test_a_rotated_file_is_finished_before_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, "1", "2")
    _, cursor = read_all(log, Cursor())
    append(log, "3")  # written before the rotation, not read yet
    log.rename(tmp_path / "audit.log.1")
    append(log, "4")
    lines, cursor = read_all(log, cursor)
    assert lines == ["3", "4"]
    assert cursor.inode == log.stat().st_ino


def test_a_file_truncated_in_place_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, "old-1", "old-2")
    _, cursor = read_all(log, Cursor())
    with log.open("w"):  # copytruncate
        pass
    append(log, "new")
    assert read_all(log, cursor)[0] == ["new"]


def test_a_log_deleted_unread_is_lost_and_said(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, "1")
    _, cursor = read_all(log, Cursor())
    append(log, "never read")
    log.unlink()
    assert read_batch(log, cursor).missing
    (tmp_path / "placeholder").touch()  # takes the freed inode: the new log has another
    append(log, "after")
    batch = read_batch(log, cursor)
    assert batch.lost
    assert batch.lines == ["after"]


def test_an_overlong_line_is_skipped_whole(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    with log.open("wb") as handle:
        handle.write(b"x" * (LINE_LIMIT + 10) + b"\nnext\n")
    batch = read_batch(log, Cursor(), limit=2 * LINE_LIMIT)
    assert batch.skipped == 1
    assert batch.lines == ["next"]


def test_a_file_rewritten_under_its_inode_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append(log, "first-file-1", "first-file-2")
    _, cursor = read_all(log, Cursor())
    with log.open("w"):  # truncated, then written past the cursor before the next read
        pass
    append(log, "second-file-1", "second-file-2", "second-file-3")
    assert read_all(log, cursor)[0] == ["second-file-1", "second-file-2", "second-file-3"]


def test_a_cursor_at_the_end(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    assert at_end(log) == Cursor()
    append(log, "before")
    cursor = at_end(log)
    append(log, "after")
    assert read_all(log, cursor)[0] == ["after"]
    assert Cursor.from_json(cursor.to_json()) == cursor
    assert os.stat(log).st_ino == cursor.inode
