"""The engine's version is read once per binary and kept for the next process, keyed by
the binary's path, mtime and size: a rebuilt binary is checked again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftwarden.domain.model import ErrorKind
from driftwarden.engine.errors import EngineError
from driftwarden.engine.locate import VERIFIED, locate_engine, pinned_version
from driftwarden.engine.runner import Engine

pytestmark = pytest.mark.engine


def test_a_version_read_once_is_kept_and_a_changed_binary_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = Engine().bin_dir  # the real engine
    monkeypatch.setenv("DRIFTWARDEN_PULUMI_CACHE", str(tmp_path))  # where VERIFIED lives

    assert str(locate_engine(bin_dir)[1].version) == pinned_version()
    verified = tmp_path / VERIFIED
    key = str(bin_dir / "pulumi")
    mtime, size, version = json.loads(verified.read_text())[key]
    assert version == pinned_version()

    # What was verified is believed: the same binary claimed to be another version fails.
    verified.write_text(json.dumps({key: [mtime, size, "3.1.0"]}))
    with pytest.raises(EngineError) as wrong:
        locate_engine(bin_dir)
    assert wrong.value.kind is ErrorKind.CLI_VERSION

    # A binary that changed since (another mtime) is read again, and the record mended.
    verified.write_text(json.dumps({key: [mtime - 1, size, "3.1.0"]}))
    assert str(locate_engine(bin_dir)[1].version) == pinned_version()
    assert json.loads(verified.read_text())[key] == [mtime, size, pinned_version()]
