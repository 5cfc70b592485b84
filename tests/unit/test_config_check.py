"""`config check` refuses configs that cannot work, and warns about what it cannot reach,
in one line each, never showing a password. Run in process (Typer's runner)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwarden.cli import app
from tests.conftest import REPO

PROJECT = REPO / "stacks" / "local-demo"
STACK = f'[[stacks]]\nname = "demo"\nproject_dir = "{PROJECT}"\nstack = "dev"\n'


def check(tmp_path: Path, text: str, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "driftwarden.toml"
    config.write_text(text)
    result = CliRunner().invoke(app, ["--config", str(config), "config", "check", *args])
    return result.exit_code, result.stdout, result.stderr


def daemon(tmp_path: Path, extra: str = "") -> str:
    return f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n{extra}\n'


@pytest.mark.parametrize(
    ("extra", "tables", "expected"),
    [
        ('database_url = "mysql://dw:pw-7c1@db/dw"', STACK, "mysql:// is not an audit store"),
        ('backend_url = "ftp://files.example/pulumi"', STACK, "ftp:// is not a Pulumi backend"),
        ("", STACK.replace('stack = "dev"', 'stack = "dev"\ntimeout = "999999999999d"'),
         "longer than a week"),
        ("", STACK + '[[targets]]\nname = "ops"\nurls = ["not a url at all"]\n',
         "invalid notification URL"),
        ("", STACK + '[[targets]]\nname = "ops"\nurl_env = "DW_TEST_UNSET_URL"\n',
         "DW_TEST_UNSET_URL is not set"),
        ("", STACK + '[[targets]]\nname = "ops"\nurl_file = "/nonexistent/dw-url"\n',
         "/nonexistent/dw-url"),
        ("", "", "no stacks configured"),
    ],
)  # fmt: skip
def test_a_config_that_cannot_work_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, tables: str, expected: str
) -> None:
    monkeypatch.delenv("DW_TEST_UNSET_URL", raising=False)
    code, out, err = check(tmp_path, daemon(tmp_path, extra) + tables)
    assert code == 2, out + err
    assert expected in err
    assert "pw-7c1" not in out + err
    assert len([line for line in err.splitlines() if line.startswith("error")]) == 1


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    code, _, err = check(tmp_path, "")
    assert code == 2
    assert "no stacks configured" in err


def test_a_state_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory\n")
    code, _, err = check(tmp_path, daemon(tmp_path) + STACK)
    assert code == 2
    assert "is a file, not a directory" in err


def test_an_unreachable_database_is_a_warning(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    extra = 'database_url = "postgresql://dw:pw-7c1@127.0.0.1:1/dw"'
    code, out, err = check(tmp_path, daemon(tmp_path, extra) + STACK, "--json")
    assert code == 0, err
    problems = json.loads(out)["problems"]
    assert [(p["level"], p["subject"]) for p in problems] == [("warning", "audit store")]
    assert "pw-7c1" not in out + err


def test_a_config_that_works_has_no_problems(tmp_path: Path) -> None:
    code, out, err = check(tmp_path, daemon(tmp_path) + STACK, "--json")
    assert code == 0, err
    assert json.loads(out)["problems"] == []


def test_run_refuses_a_config_without_stacks(tmp_path: Path) -> None:
    config = tmp_path / "driftwarden.toml"
    config.write_text(daemon(tmp_path))
    # A subprocess with a timeout: a daemon that did start would never return.
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "driftwarden"), "--config", str(config), "run"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no stacks configured" in result.stderr
