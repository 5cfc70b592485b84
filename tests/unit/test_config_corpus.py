"""The malformed-config corpus (tests/fixtures/bad-configs, one file per case): each is
refused by `config check`, `status` and `scan` alike (or the commands its header names)
with exit 2 and one line on stderr — the file and line (the line marked `# <- here`),
the key, what is wrong and how to fix it — never a traceback, and before any engine or
store is touched. Add a file whenever a new case is found.

Header lines of a case: `# expect: TEXT` (each must be in the line), `# expect-line: none`
(an error about the whole file), `# commands: config check, scan`. Placeholders: @DEMO@
(the local demo project), @STATE@ (a state directory), @TMP@ (a directory holding an empty
file `empty-urls`), @BAD_PROJECT@ (a project whose Pulumi.yaml name is invalid), @CONFIG@
(the config file itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli import driftwarden
from tests.conftest import REPO

CORPUS = REPO / "tests" / "fixtures" / "bad-configs"
DEMO = REPO / "stacks" / "local-demo"
COMMANDS = {"config check": ("config", "check"), "status": ("status",), "scan": ("scan",)}
MARK = "# <- here"


@dataclass(frozen=True)
class Case:
    path: Path
    expected: list[str]
    commands: list[str]
    has_line: bool

    @classmethod
    def read(cls, path: Path) -> Case:
        header = [line for line in path.read_bytes().decode(errors="replace").splitlines()
                  if line.startswith("# ")]  # fmt: skip
        values = {"expect": [], "commands": [], "expect-line": []}  # type: dict[str, list[str]]
        for line in header:
            key, sep, value = line[2:].partition(": ")
            if sep and key in values:
                values[key].append(value)
        commands = values["commands"][0].split(", ") if values["commands"] else list(COMMANDS)
        assert values["expect"], f"{path.name} says nothing it expects"
        return cls(path, values["expect"], commands, values["expect-line"] != ["none"])


CASES = [Case.read(path) for path in sorted(CORPUS.glob("*.toml"))]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "empty-urls").write_text("\n")
    bad_project = tmp_path / "bad-project"
    bad_project.mkdir()
    (bad_project / "Pulumi.yaml").write_text("name: d🔥v\nruntime: python\n")
    return {"@DEMO@": str(DEMO), "@STATE@": str(tmp_path / "state"), "@TMP@": str(scratch),
            "@BAD_PROJECT@": str(bad_project)}  # fmt: skip


def materialize(case: Case, places: dict[str, str], directory: Path) -> tuple[Path, int | None]:
    """The case as a config file in `directory`, and the line it marks."""
    config = directory / case.path.name
    raw = case.path.read_bytes()
    for placeholder, value in {**places, "@CONFIG@": str(config)}.items():
        raw = raw.replace(placeholder.encode(), value.encode())
    config.write_bytes(raw)
    lines = raw.split(b"\n")
    marked = [number for number, line in enumerate(lines, 1) if MARK.encode() in line]
    return config, (marked[0] if marked else None)


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.path.stem for case in CASES])
def test_each_malformed_config_is_one_line_with_its_place_and_fix(
    case: Case, places: dict[str, str], tmp_path: Path
) -> None:
    config, line = materialize(case, places, tmp_path)
    if case.has_line:
        assert line is not None, f"{case.path.name} marks no line with {MARK!r}"
    expected = [text.replace("@CONFIG@", str(config)) for text in case.expected]
    for placeholder, value in places.items():
        expected = [text.replace(placeholder, value) for text in expected]
    for command in case.commands:
        ran = driftwarden(config, *COMMANDS[command], timeout=60)
        assert ran.code == 2, (command, ran.stdout, ran.stderr)
        lines = ran.stderr.strip().splitlines()
        assert len(lines) == 1, (command, ran.stderr)
        (message,) = lines
        where = f"error: {config}:{line}: " if case.has_line else f"error: {config}: "
        assert message.startswith(where), (command, message)
        for text in expected:
            assert text in message, (command, text, message)
        assert "Traceback" not in ran.stderr
        assert "pydantic" not in message
        assert "<class" not in message
    assert not (Path(places["@STATE@"]) / "driftwarden.db").exists(), "a refused config wrote"
