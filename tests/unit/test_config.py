"""Config validation: every error names the file and line and says how to fix it."""

from datetime import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwarden.cli import app
from driftwarden.cli.config_check import describe
from driftwarden.config import NOTIFY_EVENTS, load_config
from driftwarden.domain.errors import ConfigError
from driftwarden.domain.model import Check
from driftwarden.domain.schedule import Schedule
from tests.conftest import REPO

DEMO = REPO / "stacks" / "local-demo"

VALID = f"""\
[daemon]
max_parallel = 3

[[stacks]]
name = "demo"
project_dir = "{DEMO}"
stack = "dev"
schedule = "every 15m"

[[stacks]]
name = "other"
project_dir = "{DEMO}"
stack = "prod"
checks = ["drift"]
schedule = "daily at 03:30"
timeout = "5m"

[notifications]
default_targets = ["chat"]

[[targets]]
name = "chat"
url_env = "DW_CHAT_URL"
min_severity = "high"
digest = "daily at 09:00"
"""
DIGEST_LINE = VALID.splitlines().index('digest = "daily at 09:00"') + 1
PLUGIN = REPO / "scripts" / "kube-cluster"  # any executable file stands in for a binary here
WITH_EXTRAS = (
    VALID
    + f"""
[[plugins]]
name = "kubernetes"
version = "4.25.0"
path = "{PLUGIN}"

[[ignore]]
type = "kubernetes:apps/v1:Deployment"
path = "spec.replicas"
reason = "the autoscaler owns replicas"
"""
)
PLUGIN_PATH_LINE = len(VALID.splitlines()) + 5
IGNORE_LINE = len(VALID.splitlines()) + 7

# (name, config text, the line the error must name, words the message must contain)
BROKEN = [
    (
        "distributed without PostgreSQL",
        VALID.replace("max_parallel = 3", 'max_parallel = 3\nmode = "distributed"'),
        1,
        ['mode = "distributed" needs database_url = "postgresql://', "only PostgreSQL"],
    ),
    ("bad TOML", VALID.replace('stack = "prod"', 'stack = "prod'), 13, ["invalid TOML"]),
    (
        "unknown key",
        VALID.replace('stack = "prod"', 'stack = "prod"\nschedul = "every 1h"'),
        14,
        ["unknown key", "stacks[1].schedul", "valid keys here", "schedule"],
    ),
    (
        "missing project dir",
        VALID.replace(
            f'project_dir = "{DEMO}"\nstack = "prod"', 'project_dir = "nope"\nstack = "prod"'
        ),
        12,
        ["stacks[1].project_dir", "does not exist"],
    ),
    (
        "duplicate stack name",
        VALID.replace('name = "other"', 'name = "demo"'),
        11,
        ["duplicate stack name 'demo'", "stacks[0]"],
    ),
    (
        "bad schedule",
        VALID.replace('"daily at 03:30"', '"every fortnight"'),
        15,
        ["stacks[1].schedule", "invalid schedule 'every fortnight'", "every 15m"],
    ),
    (
        "bad digest schedule",
        VALID.replace('"daily at 09:00"', '"weekly"'),
        DIGEST_LINE,
        ["targets[0].digest", "invalid schedule 'weekly'", "daily at 03:00"],
    ),
    (
        "missing plugin binary",
        WITH_EXTRAS.replace(str(PLUGIN), "/nonexistent/pulumi-resource-kubernetes"),
        PLUGIN_PATH_LINE,
        ["plugins[0].path", "does not exist", "scripts/ensure-kubernetes"],
    ),
    (
        "plugin binary not executable",
        WITH_EXTRAS.replace(str(PLUGIN), str(REPO / "README.md")),
        PLUGIN_PATH_LINE,
        ["plugins[0].path", "not executable", "chmod +x"],
    ),
    (
        "bad plugin version",
        WITH_EXTRAS.replace('version = "4.25.0"', 'version = "latest"'),
        PLUGIN_PATH_LINE - 1,
        ["plugins[0].version"],
    ),
    (
        "ignore without a reason",
        WITH_EXTRAS.replace('reason = "the autoscaler owns replicas"\n', ""),
        IGNORE_LINE,
        ["ignore[0].reason", "required"],
    ),
    (
        "unknown key in ignore",
        WITH_EXTRAS.replace('owns replicas"', 'owns replicas"\nwhy = "autoscaling"'),
        IGNORE_LINE + 4,
        ["unknown key", "ignore[0].why", "valid keys here: path, type, reason"],
    ),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftwarden.toml"
    path.write_text(text)
    return path


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    demo, other = config.stacks
    assert demo.project_dir == DEMO
    assert demo.checks == (Check.DRIFT, Check.CODE)
    assert config.schedule_of(demo) == Schedule(interval_seconds=900)
    assert str(config.schedule_of(other)) == "daily at 03:30"
    assert (config.timeout_of(demo), config.timeout_of(other)) == (1800, 300)
    assert config.daemon.max_parallel == 3
    assert len(config.digest) == 64
    (chat,) = config.targets
    assert chat.digest == Schedule(daily_at=time(9, 0))
    assert config.targets_of(demo) == [chat]


def test_relative_project_dir_is_relative_to_the_config_file() -> None:
    config = load_config(REPO / "config" / "driftwarden.toml")
    assert config.stacks[0].project_dir == DEMO


@pytest.mark.parametrize(("name", "text", "line", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_the_line_and_the_fix(
    tmp_path: Path, name: str, text: str, line: int, words: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    for word in words:
        assert word in message
    assert "\n" not in message


@pytest.mark.parametrize(("name", "text", "line", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_config_check_prints_one_line_and_exits_2(
    tmp_path: Path, name: str, text: str, line: int, words: list[str]
) -> None:
    path = write(tmp_path, text)
    result = CliRunner().invoke(app, ["--config", str(path), "config", "check"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}:{line}: ")
    assert "Traceback" not in result.stderr


def test_config_check_shows_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_CHAT_URL", "json://127.0.0.1:9/hook")  # url_env must be set
    path = write(tmp_path, VALID)
    result = CliRunner().invoke(app, ["--config", str(path), "config", "check", "--json"])
    assert result.exit_code == 0, result.stderr
    import json

    plan = json.loads(result.stdout)
    assert [s["name"] for s in plan["stacks"]] == ["demo", "other"]
    assert plan["stacks"][1] == {
        "name": "other",
        "project_dir": str(DEMO),
        "pulumi_stack": "prod",
        "checks": ["drift"],
        "schedule": "daily at 03:30",
        "timeout": "5m",
        "sensitive_paths": [],
        "env": [],
        "notify": ["chat"],
    }
    assert plan["targets"] == [
        {
            "name": "chat",
            "sources": ["env DW_CHAT_URL"],
            "events": list(NOTIFY_EVENTS),
            "min_severity": "high",
            "digest": "daily at 09:00",
        }
    ]
    assert plan["backend_url"].startswith("file://")


def test_ignore_rules_and_plugins_load_and_show_in_the_plan(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, WITH_EXTRAS))
    (plugin,) = config.plugins
    assert (plugin.kind, plugin.name, plugin.bare_version, plugin.path) == (
        "resource", "kubernetes", "4.25.0", PLUGIN,
    )  # fmt: skip
    noise = config.noise_rules()
    assert noise[-1].matches("kubernetes:apps/v1:Deployment", "spec.replicas")
    assert not noise[-1].matches("kubernetes:apps/v1:StatefulSet", "spec.replicas")
    assert any(rule.matches("kubernetes:core/v1:ConfigMap", "metadata.managedFields[0]")
               for rule in noise)  # fmt: skip

    import json

    plan = describe(config)
    assert plan["plugins"] == [
        {"kind": "resource", "name": "kubernetes", "version": "4.25.0", "path": str(PLUGIN)}
    ]
    assert plan["ignore"][-1] == {
        "type": "kubernetes:apps/v1:Deployment", "path": "spec.replicas",
        "reason": "the autoscaler owns replicas", "builtin": False,
    }  # fmt: skip
    builtin = [rule for rule in plan["ignore"] if rule["builtin"]]
    assert {"type": "kubernetes:*", "path": "status"} in [
        {"type": rule["type"], "path": rule["path"]} for rule in builtin
    ]
    assert json.dumps(plan)


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "nope.toml"), "config", "check"])
    assert result.exit_code == 2
    assert "file not found" in result.stderr
