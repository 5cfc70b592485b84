"""`driftwarden scan` against the real Pulumi engine on local-demo stacks."""

from __future__ import annotations

from typing import Any

import pytest

from driftwarden.service.locks import stack_lock
from tests.integration.conftest import SECRET_TOKEN, DemoStack, Fleet

pytestmark = pytest.mark.engine


def changes_by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {change["urn"].rsplit("::", 1)[-1]: change for change in result["changes"]}


def test_fresh_deploy_is_in_sync(fleet: Fleet, demo: DemoStack) -> None:
    scan = fleet.scan("--json")
    assert scan.code == 0, scan.stderr
    assert [(r["check"], r["status"]) for r in scan.json["results"]] == [
        ("drift", "in_sync"),
        ("code", "in_sync"),
    ]
    drift = scan.result("demo", "drift")
    assert drift["project"] == "local-demo"
    assert drift["pulumi_stack"] == "dev"
    assert drift["error"] is None
    assert drift["operation_id"].startswith("op-")


def test_content_edited_out_of_band_is_drift_with_exact_values(
    fleet: Fleet, demo: DemoStack
) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    scan = fleet.scan("--check", "drift", "--json")
    assert scan.code == 3, scan.stderr
    result = scan.result("demo", "drift")
    assert result["status"] == "drifted"
    (motd,) = result["changes"]
    assert motd["urn"] == "urn:pulumi:dev::local-demo::pulumi-python:dynamic:Resource::motd"
    assert motd["type"] == "pulumi-python:dynamic:Resource"
    assert motd["change"] == "update"
    assert motd["properties"] == [
        {
            "path": "content",
            "kind": "update",
            "expected": "hello\n",
            "actual": "HACKED\n",
            "secret": False,
            "source": "diff",
            "severity": None,
            "rule": None,
        }
    ]


def test_table_output_shows_the_property_and_both_values(fleet: Fleet, demo: DemoStack) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    scan = fleet.scan("--check", "drift")
    assert scan.code == 3
    row = next(line for line in scan.stdout.splitlines() if "motd" in line)
    assert "drifted" in scan.stdout
    assert "content (update)" in row
    assert '"hello\\n" → "HACKED\\n"' in row


def test_deleted_file_is_a_delete_change(fleet: Fleet, demo: DemoStack) -> None:
    (demo.files / "README.txt").unlink()
    scan = fleet.scan("--check", "drift", "--json")
    assert scan.code == 3
    readme = changes_by_name(scan.result("demo", "drift"))["readme"]
    assert readme["change"] == "delete"
    assert readme["properties"] == []


def test_mode_change_is_its_own_property_difference(fleet: Fleet, demo: DemoStack) -> None:
    (demo.files / "app" / "settings.ini").chmod(0o666)
    (demo.files / "motd.txt").write_text("HACKED\n")
    scan = fleet.scan("--check", "drift", "--json")
    changes = changes_by_name(scan.result("demo", "drift"))
    assert changes["settings"]["properties"] == [
        {
            "path": "mode",
            "kind": "update",
            "expected": "0640",
            "actual": "0666",
            "secret": False,
            "source": "diff",
            "severity": "high",
            "rule": "file made world-writable",
        }
    ]
    assert [p["path"] for p in changes["motd"]["properties"]] == ["content"]


def test_program_change_is_pending_in_the_code_check_only(fleet: Fleet, demo: DemoStack) -> None:
    fleet.pulumi(demo, "config", "set", "port", "9090")
    scan = fleet.scan("--json")
    assert scan.code == 3
    assert scan.result("demo", "drift")["status"] == "in_sync"
    code = scan.result("demo", "code")
    assert code["status"] == "changes_pending"
    (settings,) = code["changes"]
    (content,) = settings["properties"]
    assert content["path"] == "content"
    assert content["expected"] == "[server]\nport = 8080\nlog_level = info\n"
    assert content["actual"] == "[server]\nport = 9090\nlog_level = info\n"


def test_changed_secret_is_flagged_and_never_printed(fleet: Fleet, demo: DemoStack) -> None:
    new_token = "rotated-by-hand-4c1e8b"
    (demo.files / "secrets" / "api-token").write_text(new_token)
    outputs = []
    for args in (("--json",), ()):
        scan = fleet.scan(*args)
        assert scan.code == 3
        outputs += [scan.stdout, scan.stderr]
        if args:
            token = changes_by_name(scan.result("demo", "drift"))["api-token"]
            assert token["properties"] == [
                {
                    "path": "content",
                    "kind": "update",
                    "expected": "[secret]",
                    "actual": "[secret]",
                    "secret": True,
                    "source": "diff",
                    "severity": None,
                    "rule": None,
                }
            ]
    for text in outputs:
        assert SECRET_TOKEN not in text
        assert new_token not in text


def test_failing_program_fails_alone_with_a_one_line_reason(fleet: Fleet, demo: DemoStack) -> None:
    broken = fleet.add("broken", checks=("code",), pulumi_stack="broken")
    (broken.workdir / "__main__.py").write_text(
        'raise RuntimeError("cannot reach the inventory service")\n'
    )
    (demo.files / "motd.txt").write_text("HACKED\n")
    scan = fleet.scan("--json")
    assert scan.code == 1  # an operation failed
    failed = scan.result("broken", "code")
    assert failed["status"] == "failed"
    assert failed["error"].startswith(
        "the Pulumi program failed: RuntimeError: cannot reach the inventory service"
    )
    assert "\n" not in failed["error"]
    assert failed["changes"] == []
    # The other stack in the same scan completed and found its drift.
    assert scan.result("demo", "drift")["status"] == "drifted"
    # The code check compares program and state: an out-of-band edit is not its business.
    assert scan.result("demo", "code")["status"] == "in_sync"


def test_drift_check_leaves_the_state_file_byte_identical(fleet: Fleet, demo: DemoStack) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    (demo.files / "README.txt").unlink()
    before = fleet.state_file(demo).read_bytes()
    scan = fleet.scan("--check", "drift")
    assert scan.code == 3
    assert fleet.state_file(demo).read_bytes() == before
    # …and a second check still sees the same drift: nothing was accepted into state.
    again = fleet.scan("--check", "drift", "--json")
    assert {c["change"] for c in again.result("demo", "drift")["changes"]} == {"update", "delete"}


def test_stack_not_deployed_is_a_clear_failure(fleet: Fleet, demo: DemoStack) -> None:
    fleet.config_path.write_text(
        fleet.config_path.read_text().replace('stack = "dev"', 'stack = "prod"')
    )
    scan = fleet.scan("--check", "drift", "--json")
    assert scan.code == 1
    error = scan.result("demo", "drift")["error"]
    assert "Pulumi stack 'prod' has not been deployed" in error
    assert "pulumi up --stack prod" in error


def test_missing_and_wrong_passphrase_are_named(fleet: Fleet, demo: DemoStack) -> None:
    missing = fleet.root / "no-such-passphrase"
    fleet.write_config(f'passphrase_file = "{missing}"')
    scan = fleet.scan("--check", "drift", "--json")
    assert scan.code == 1
    assert f"passphrase file {missing} does not exist" in scan.result("demo", "drift")["error"]

    wrong = fleet.root / "wrong-passphrase"
    wrong.write_text("not the passphrase\n")
    fleet.write_config(f'passphrase_file = "{wrong}"')
    scan = fleet.scan("--check", "drift", "--json")
    assert "the passphrase is missing or wrong" in scan.result("demo", "drift")["error"]


def test_unreachable_backend_is_named_without_its_credentials(
    fleet: Fleet, demo: DemoStack
) -> None:
    fleet.write_config('backend_url = "https://user:hunter2@127.0.0.1:9"')
    fleet.config_path.write_text(
        fleet.config_path.read_text() + '[stacks.env]\nPULUMI_ACCESS_TOKEN = "pul-not-a-token"\n'
    )
    scan = fleet.scan("--check", "drift", "--json")
    assert scan.code == 1
    error = scan.result("demo", "drift")["error"]
    assert error.startswith("the state backend https://***@127.0.0.1:9 is unreachable")
    assert "hunter2" not in scan.stdout + scan.stderr
    assert "pul-not-a-token" not in scan.stdout + scan.stderr


def test_missing_engine_is_one_line_exit_1(fleet: Fleet, demo: DemoStack) -> None:
    empty = fleet.root / "empty-bin"
    empty.mkdir()
    fleet.write_config(f'pulumi_bin = "{empty}"')
    scan = fleet.scan("--json")
    assert scan.code == 1
    assert scan.stdout == ""
    (line,) = scan.stderr.strip().splitlines()
    assert line.startswith(f"error: {empty} lacks pulumi")
    assert "ensure-pulumi" in line


def test_unknown_stack_name_is_a_usage_error(fleet: Fleet, demo: DemoStack) -> None:
    scan = fleet.scan("nope")
    assert scan.code == 2
    assert "no stack named 'nope'" in scan.stderr
    assert "known stacks: demo" in scan.stderr


def test_no_wait_fails_fast_while_another_process_scans(fleet: Fleet, demo: DemoStack) -> None:
    with stack_lock(fleet.state_dir / "locks", "demo"):  # as a running daemon scan holds it
        scan = fleet.scan("--no-wait")
    assert scan.code == 1
    (line,) = scan.stderr.strip().splitlines()
    assert line == (
        "error: stack 'demo' is being scanned by another driftwarden process — wait for it, "
        "or drop --no-wait to wait automatically"
    )
    assert fleet.scan("--no-wait", "--check", "drift").code == 0  # free again


def test_world_writable_file_is_high_listed_first_and_gates_fail_on(
    fleet: Fleet, demo: DemoStack
) -> None:
    (demo.files / "motd.txt").write_text("HACKED\n")
    (demo.files / "app" / "settings.ini").chmod(0o666)
    scan = fleet.scan("--check", "drift", "--json")
    assert scan.code == 3
    first, second = scan.result("demo", "drift")["changes"]
    assert first["urn"].endswith("::settings")  # the dangerous one first
    assert first["severity"] == "high"
    assert first["properties"][0]["rule"] == "file made world-writable"
    assert second["severity"] is None

    shown = fleet.scan("--check", "drift")
    rows = [line for line in shown.stdout.splitlines() if "(update)" in line]
    assert "settings" in rows[0]
    assert "high" in rows[0]

    assert fleet.scan("--check", "drift", "--fail-on", "high").code == 3
    assert fleet.scan("--check", "drift", "--fail-on", "critical").code == 0
    assert fleet.scan("--check", "drift", "--fail-on", "bogus").code == 2

    findings = fleet.cli("drift", "show", "demo", "--json").json["findings"]
    assert [(f["path"], f["severity"]) for f in findings] == [("mode", "high"), ("content", None)]
