"""`driftwarden report`: one standalone file from a store filled by real scans, with
hostile values in the drifted resources and a secret that drifted too."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from driftwarden.domain.model import attribution_from_dict, describe_attribution
from tests.integration.conftest import SECRET_TOKEN, DemoStack, Fleet

pytestmark = pytest.mark.engine

HOSTILE = "<script>alert('x')</script> \"quoted\" | pipe ` tick " + "long " * 200 + "\n"
NEW_TOKEN = "rotated-token-4c1e88"


@pytest.fixture
def drifted(fleet: Fleet, demo: DemoStack) -> Fleet:
    """The demo with its motd rewritten to hostile text and its secret changed by hand."""
    (demo.files / "motd.txt").write_text(HOSTILE)
    (demo.files / "secrets" / "api-token").write_text(NEW_TOKEN)
    scan = fleet.scan("--check", "drift", "--json")
    assert scan.code == 3, scan.stderr
    return fleet


class _Text(HTMLParser):
    """What a browser shows as text, and every tag and attribute it would load."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_is_standalone_escaped_and_shows_each_finding(
    drifted: Fleet, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = drifted.cli("report", "--format", "html", "--output", str(out))
    assert result.code == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    page = out.read_text()
    parsed = _Text()
    parsed.feed(page)
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags, "a value became markup"
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    loaded = [attrs.get("src") or attrs.get("href") for _, attrs in parsed.tags]
    assert all(link is None or link.startswith("#") for link in loaded), "an external asset"
    text = " ".join(" ".join(parsed.text).split())
    assert "1 stacks" in text
    assert "1 drifted" in text
    assert "2 open findings" in text
    assert "motd · content (update)" in text
    assert "<script>alert('x')</script>" in text  # shown to the reader as text
    assert "[secret] → [secret]" in text
    assert SECRET_TOKEN not in page
    assert NEW_TOKEN not in page
    assert 'href="#stack-demo"' in page
    assert 'id="stack-demo"' in page
    assert re.search(r"Audit chain: verified: \d+ events, head \d+:[0-9a-f]{64}", text)
    findings = drifted.cli("drift", "show", "demo", "--json").json["findings"]
    for finding in findings:  # each with the attribution `drift show` gives it
        said = describe_attribution(attribution_from_dict(finding["attribution"]))
        assert said
        assert said in text


def test_markdown_report_pastes_as_one_table_row_per_finding(drifted: Fleet) -> None:
    result = drifted.cli("report", "demo", "--format", "md")
    assert result.code == 0, result.stderr
    md = result.stdout
    assert md.startswith("# Drift report\n")
    assert SECRET_TOKEN not in md
    assert NEW_TOKEN not in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "· content" in line]
    assert len(rows) == 2, md
    motd = next(row for row in rows if "motd" in row)
    # GFM splits cells on unescaped pipes: the hostile value must stay in its cell.
    cells = re.split(r"(?<!\\)\|", motd.strip("|"))
    assert len(cells) == 7, cells
    assert "<script>" in cells[3]
    assert cells[3].strip().startswith("``")
    assert "…" in cells[3], "long values are cut in Markdown"
    assert "| demo | drifted | 2 |" in md


def test_json_report_is_the_data_drift_show_and_audit_verify_print(drifted: Fleet) -> None:
    report = drifted.cli("report", "--format", "json")
    assert report.code == 0, report.stderr
    data = json.loads(report.stdout)
    shown = drifted.cli("drift", "show", "demo", "--json").json
    verify = drifted.cli("audit", "verify", "--json").json
    (stack,) = data["stacks"]
    assert stack["findings"] == shown["findings"]
    assert data["audit"] == verify
    assert data["summary"] == {
        "stacks": 1,
        "states": {"drifted": 1},
        "open_findings": 2,
        "open_findings_by_severity": {"unrated": 2},
    }
    assert data["generated_at"].endswith("Z")
    assert SECRET_TOKEN not in report.stdout
    assert NEW_TOKEN not in report.stdout


def test_unknown_format_stack_and_output_are_refused_clearly(
    drifted: Fleet, tmp_path: Path
) -> None:
    bad = drifted.cli("report", "--format", "pdf")
    assert bad.code == 2
    assert "--format 'pdf' is not one of html, md, json" in bad.stderr
    missing = drifted.cli("report", "nope")
    assert missing.code == 2, missing.stderr

    # A device is written in place, never replaced by a file (issue 20: /dev/full and,
    # as root, /dev/null became regular files holding the report).
    full = drifted.cli("report", "--format", "md", "--output", "/dev/full")
    assert full.code == 1
    assert full.stderr == "error: cannot write /dev/full: No space left on device\n"
    written = drifted.cli("report", "--format", "md", "--output", "/dev/null")
    assert written.code == 0, written.stderr
    for device in ("/dev/full", "/dev/null"):
        assert stat.S_ISCHR(os.stat(device).st_mode), f"{device} is no longer a device"
    # A FIFO gets the report through the pipe and stays a FIFO.
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    piped = drifted.cli("report", "--format", "md", "--output", str(fifo))
    reader.join(timeout=30)
    assert piped.code == 0, piped.stderr
    assert received[0].startswith(b"# "), received[0][:100]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    directory = drifted.cli("report", "--output", str(tmp_path))
    assert directory.code == 2
    assert directory.stderr == f"error: --output {tmp_path} is a directory — name a file\n"
