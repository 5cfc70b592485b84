"""Misuse of the command line: one line on stderr and exit 2 (SPEC.md), whatever the
option parser or the value; `--debug` shows the traceback it promises; a config file
that is not a file is refused at once instead of being read forever."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from driftwarden.domain.errors import UsageError
from tests.cli import DRIFTWARDEN, driftwarden
from tests.conftest import write_demo_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_demo_config(tmp_path)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("scan", "--bogus"), "error: No such option: --bogus — see `driftwarden scan --help`"),
        (("nosuch",), "error: No such command 'nosuch'. — see `driftwarden --help`"),
        (("audit", "log", "--page", "99999999999999999999"),
         "error: Invalid value for '--page': "),
        (("audit", "log", "--since", "99999999999999d"),
         "error: --since: duration '99999999999999d' is too long: use at most 36500d"),
        (("audit", "log", "--limit", "0"), "error: Invalid value for '--limit': "),
        (("db", "prune", "--older-than", "0d"),
         "error: --older-than: duration '0d' must be greater than zero"),
        (("db", "prune", "--older-than", "99999999999999d"),
         "error: --older-than: duration '99999999999999d' is too long: use at most 36500d"),
        (("remediate", "demo"),
         "error: Missing option '--mode'. Choose from: refresh, up — see `driftwarden remediate"),
    ],
)  # fmt: skip
def test_misuse_is_one_line_and_exit_2(config: Path, args: tuple[str, ...], line: str) -> None:
    ran = driftwarden(config, *args)
    assert ran.code == 2, ran.stderr
    assert ran.stdout == ""
    assert one_line(ran.stderr).startswith(line)


def test_debug_shows_the_traceback_it_promises(config: Path) -> None:
    args = ("audit", "log", "--since", "99999999999999d")
    with pytest.raises(UsageError, match="too long"):
        driftwarden(config, "--debug", *args)  # in process: the error is raised, not printed
    ran = subprocess.run(
        [str(DRIFTWARDEN), "--debug", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback (most recent call last)" in ran.stderr
    assert "UsageError: --since: duration" in ran.stderr
    assert "rerun with --debug" not in ran.stderr


def test_a_config_with_a_byte_order_mark_loads(config: Path) -> None:
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    ran = driftwarden(config, "config", "check", "--json")
    assert ran.code == 0, ran.stderr
    assert ran.json["stacks"][0]["name"] == "demo"


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/dev/zero", "config file is not a regular file (it is a character device)"),
     ("/tmp", "config file is a directory, not a file")],
)  # fmt: skip
def test_a_config_that_is_not_a_file_is_refused_at_once(path: str, reason: str) -> None:
    ran = driftwarden(Path(path), "status", timeout=30)
    assert ran.code == 2
    assert one_line(ran.stderr) == f"error: {path}: {reason}"


def test_a_fifo_as_config_neither_blocks_nor_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    done: list[int] = []
    runner = threading.Thread(target=lambda: done.append(driftwarden(fifo, "status").code))
    runner.start()
    runner.join(timeout=30)
    assert done == [2], "config check blocked on a FIFO without a writer"


def test_a_huge_config_is_refused_not_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of nothing, no disk used
    ran = driftwarden(big, "status")
    assert ran.code == 2
    assert one_line(ran.stderr) == f"error: {big}: config file is larger than 1 MiB"
