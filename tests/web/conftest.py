"""The dashboard on a store filled by real scans, served by `driftwarden serve` as a real
process on loopback, read by a real browser (Debian's headless Chromium through its
chromedriver, driven by Selenium) and by HTTP.

`dashboard` (module): a fleet of two demo stacks scanned by the real engine — `demo`,
drifted with hostile text in its motd (markup, quotes, pipes, a long line) and its
secret rotated by hand, and `calm`, in sync — and the server on a free port.
`browser` (session): one headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.cli import DRIFTWARDEN
from tests.integration.conftest import DemoStack, Fleet, demo, deployed_demo, fleet
from tests.integration.deployed import Deployment

__all__ = ["demo", "deployed_demo", "fleet"]

HOSTILE = "<script>window.pwned = 1</script> \"quoted\" 'single' | pipe " + "x" * 3000 + "\n"
ROTATED_TOKEN = "rotated-by-hand-5b7c21"
RULES = """
[[rules]]
title = "message of the day rewritten"
severity = "high"
path = "content"
resource_contains = "motd"
"""
# Where the tests save the screenshots the README shows (`make screenshots`).
SCREENSHOTS = os.environ.get("DRIFTWARDEN_SCREENSHOTS")


@dataclass
class Served:
    """A running `driftwarden serve` and the fleet it shows."""

    fleet: Fleet
    demo: DemoStack
    calm: DemoStack
    url: str
    process: subprocess.Popen[str]

    def get(
        self, path: str, *, accept: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, _lower(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, _lower(error.headers.items()), error.read()

    def json(self, path: str) -> object:
        status, _, body = self.get(path, accept="application/json")
        assert status == 200, body
        return json.loads(body)


def _lower(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Header names in lower case; a repeated header's values joined by ", "."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def serve(fleet: Fleet, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `driftwarden serve` (a free port unless `args` say otherwise); its URL."""
    env = {k: v for k, v in os.environ.items() if k != "DRIFTWARDEN_STATE_DIR"}
    process = subprocess.Popen(
        [str(DRIFTWARDEN), "--config", str(fleet.config_path), "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"serving (http://\S+)", line)
    if match is None:
        process.kill()
        rest = process.stdout.read()
        raise AssertionError(f"serve did not start: {line}{rest}")
    return process, match.group(1)


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="module")
def dashboard(
    tmp_path_factory: pytest.TempPathFactory, deployed_demo: Deployment
) -> Iterator[Served]:
    fleet = Fleet(root=tmp_path_factory.mktemp("dashboard"), template=deployed_demo)
    demo = fleet.add("demo", checks=("drift",), pulumi_stack="demo")
    calm = fleet.add("calm", checks=("drift",), pulumi_stack="calm")
    fleet.write_config(RULES)
    (demo.files / "motd.txt").write_text(HOSTILE)
    (demo.files / "secrets" / "api-token").write_text(ROTATED_TOKEN)
    scan = fleet.scan("--json")
    assert scan.code == 3, scan.stderr
    process, url = serve(fleet, "--listen", "127.0.0.1:0")
    try:
        yield Served(fleet, demo, calm, url, process)
    finally:
        assert stop(process) in (0, -signal.SIGTERM), "serve did not stop cleanly"


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    assert chromium, "Debian's chromium is missing: run scripts/setup"
    assert driver, "Debian's chromium-driver is missing: run scripts/setup"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,900"):  # fmt: skip
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def screenshot(browser: webdriver.Chrome, name: str, tmp_path: Path) -> Path:
    """Save the page as PNG (into $DRIFTWARDEN_SCREENSHOTS when set, for the README)."""
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path)), f"no screenshot of {name}"
    assert path.read_bytes().startswith(b"\x89PNG"), path
    return path
