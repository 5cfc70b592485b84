"""What a person sees in a real browser: the fleet at a glance, a filter that works, the
drifted property with its severity, the hostile value shown as text, never a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.conftest import SECRET_TOKEN
from tests.web.conftest import HOSTILE, ROTATED_TOKEN, Served, screenshot

pytestmark = pytest.mark.engine


def follow(browser: webdriver.Chrome, by: str, value: str) -> None:
    """Click what navigates, and wait for the new page: a click does not wait for the
    navigation it starts (reading the table right after it once found the old page gone
    and the new one not there yet)."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(by, value).click()
    WebDriverWait(browser, 15).until(expected_conditions.staleness_of(page))


def rows(browser: webdriver.Chrome, table: str) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    ]


def no_secret_and_no_script(browser: webdriver.Chrome) -> None:
    source = browser.page_source
    assert SECRET_TOKEN not in source
    assert ROTATED_TOKEN not in source
    assert browser.find_elements(By.TAG_NAME, "script") == [], "a value became a script"
    assert browser.execute_script("return window.pwned === undefined")


def test_fleet_page_counts_filters_and_sorts(
    dashboard: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(dashboard.url + "/")
    assert browser.title == "Fleet · driftwarden"
    counts = browser.find_element(By.ID, "counts").text.split()
    assert counts[:2] == ["2", "stacks"]
    by_stack = {row[0]: row for row in rows(browser, "stacks")}
    assert set(by_stack) == {"demo", "calm"}
    assert by_stack["demo"][1] == "drifted"
    assert by_stack["demo"][2] == "2"
    assert by_stack["demo"][3] == "1 high 1 unrated"
    assert by_stack["calm"][1:4] == ["in_sync", "0", ""]
    screenshot(browser, "fleet", tmp_path)

    Select(browser.find_element(By.NAME, "severity")).select_by_value("high")
    follow(browser, By.CSS_SELECTOR, "form.filters button")
    assert [row[0] for row in rows(browser, "stacks")] == ["demo"]
    assert "severity=high" in browser.current_url

    browser.get(dashboard.url + "/?state=in_sync")
    assert [row[0] for row in rows(browser, "stacks")] == ["calm"]
    browser.get(dashboard.url + "/?name=zzz")
    assert rows(browser, "stacks") == [["no stack matches"]]

    browser.get(dashboard.url + "/")
    follow(browser, By.LINK_TEXT, "open findings")  # ascending by findings
    assert [row[0] for row in rows(browser, "stacks")] == ["calm", "demo"]
    follow(browser, By.PARTIAL_LINK_TEXT, "open findings")  # and back
    assert [row[0] for row in rows(browser, "stacks")] == ["demo", "calm"]
    no_secret_and_no_script(browser)


def test_stack_page_shows_each_drifted_property_and_no_secret(
    dashboard: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(dashboard.url + "/")
    follow(browser, By.LINK_TEXT, "demo")
    assert browser.find_element(By.TAG_NAME, "h1").text == "demo drifted"
    findings = {row[2].split()[0]: row for row in rows(browser, "findings")}
    motd = findings["motd"]
    assert motd[0].startswith("high")
    assert "message of the day rewritten" in motd[0]
    assert motd[3] == "content (update)"
    assert motd[4] == '"hello\\n"'
    whole = json.dumps(HOSTILE)
    assert motd[5] == f"{whole[:300]}… ({len(whole)} characters)", "folded, as text"
    folded = browser.find_element(By.CSS_SELECTOR, "#findings details")
    assert str(folded.get_attribute("textContent")).endswith(whole), "the whole value, as text"
    folded.find_element(By.TAG_NAME, "summary").click()
    assert whole in folded.text
    token = findings["api-token"]
    assert token[4:6] == ["[secret]", "[secret]"]
    assert token[0] == "unrated"
    kinds = [row[1] for row in rows(browser, "operations")]
    assert kinds == ["drift"]
    updates = rows(browser, "updates")
    assert [row[1:3] for row in updates] == [["update", "succeeded"]]
    written = {row[4]: row for row in rows(browser, "state-changes")}  # by the deployment
    created = ("local-demo-demo", "motd", "settings", "readme", "api-token")
    assert set(written) == {f"{name} (create)" for name in created}
    assert {row[2] for row in written.values()} == {"update"}
    assert '"content": "[secret]"' in written["api-token (create)"][7]
    no_secret_and_no_script(browser)
    screenshot(browser, "stack", tmp_path)


def test_finding_page_tells_its_timeline(
    dashboard: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(dashboard.url + "/stacks/demo")
    follow(browser, By.LINK_TEXT, "motd")
    assert "/stacks/demo/findings/" in browser.current_url
    facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "message of the day rewritten" in facts
    assert "resolved\nopen" in facts
    activities = [row[3] for row in rows(browser, "timeline")]
    assert activities == ["finding.opened"]
    no_secret_and_no_script(browser)
    screenshot(browser, "finding", tmp_path)


def test_audit_page_verifies_on_demand_and_filters(
    dashboard: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(dashboard.url + "/audit")
    head = browser.find_element(By.ID, "head").text
    assert head.startswith("Head ")
    follow(browser, By.PARTIAL_LINK_TEXT, "Verify the whole chain")
    verify = browser.find_element(By.ID, "verify").text
    assert verify.startswith("verified: ")
    assert head.removeprefix("Head ") in verify
    Select(browser.find_element(By.NAME, "action")).select_by_value("finding")
    Select(browser.find_element(By.NAME, "stack")).select_by_value("demo")
    follow(browser, By.CSS_SELECTOR, "form.filters button")
    events = rows(browser, "events")
    assert [row[3] for row in events] == ["finding.opened", "finding.opened"]
    assert {row[4] for row in events} == {"demo"}
    browser.get(dashboard.url + "/audit?actor=nobody-at-all")
    assert rows(browser, "events") == [["no audit events match"]]
    screenshot(browser, "audit", tmp_path)
