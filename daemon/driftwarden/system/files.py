"""Files that the config names (the config itself, a target's url_file or apprise config,
the passphrase, the web token, the audit key, a plugin binary): each must be the kind of
file it claims to be, and is read with a size cap. A device, a FIFO or a directory is
refused by name instead of being read forever (`/dev/zero`) or blocking (a FIFO)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

# What a secret, token or URL file may hold at most; the config and apprise configs get more.
SMALL_FILE_LIMIT = 64 * 1024
TEXT_FILE_LIMIT = 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


class UnusableFileError(ValueError):
    """Why a path cannot be used: "does not exist", "is a directory", … (no path in it:
    the caller says which file it is about)."""


def kind_of(mode: int) -> str:
    """What a stat mode is, in words: "a directory", "a character device", …"""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def path_problem(path: Path, want: Literal["file", "directory"]) -> str | None:
    """Why `path` is not a `want` ("does not exist", "is a directory", "is not a
    directory (a regular file)", "is not a regular file (a character device)"), or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "does not exist"
    except NotADirectoryError:
        return "does not exist (a parent is not a directory)"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if want == "directory":
        if stat.S_ISDIR(mode):
            return None
        if stat.S_ISREG(mode):
            return "is a file, not a directory"
        return f"is not a directory (it is {kind_of(mode)})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    return f"is not a regular file (it is {kind_of(mode)})"


def read_capped(path: Path, limit: int = SMALL_FILE_LIMIT) -> bytes:
    """The content of the regular file `path`, at most `limit` bytes; UnusableFileError if it is
    not a regular file, is larger, or cannot be read. The open does not block on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnusableFileError("does not exist") from None
    except OSError as exc:
        raise UnusableFileError(f"cannot be read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            if stat.S_ISDIR(mode):
                raise UnusableFileError("is a directory, not a file")
            raise UnusableFileError(f"is not a regular file (it is {kind_of(mode)})")
        chunks = []
        size = 0
        while chunk := os.read(fd, min(65536, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UnusableFileError(f"is larger than {_size(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise UnusableFileError(f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_text_capped(path: Path, limit: int = SMALL_FILE_LIMIT) -> str:
    """`read_capped`, decoded as UTF-8 (a BOM dropped); UnusableFileError if it is not UTF-8."""
    try:
        return read_capped(path, limit).decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise UnusableFileError(f"is not UTF-8 text (byte {exc.start})") from None


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
