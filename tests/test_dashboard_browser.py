"""The dashboard in a real headless browser (Chromium driven by Playwright), against a
server on loopback: the planted alert of a replayed stream on the trend chart, live
updates, a correction stored from the feedback page, reports and promote behind a
confirmation, sign-in, keyboard use and a phone-width screen. Screenshots are saved in
test-artifacts/dashboard/ (git-ignored).

Skips, saying why, without the `playwright` package (`pip install -e ".[test]"`) or a
Chromium (Debian: `apt-get install chromium`; or TUNEHUB_CHROMIUM=/path/to/chrome)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tunehub.core.artifacts import hub
from tunehub.core.operations.feedback import FeedbackStore, list_feedback
from tunehub.core.serving.serve import BackgroundServer, ServeSettings

from _dashboard import KEY, TASK, Classifier, copy_versions, monitor, surge_start
from _trained import shared_artifact

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the "
                               "playwright package: pip install -e '.[test]'")
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
PHONE = {"width": 390, "height": 844}


def chromium() -> str | None:
    found = os.environ.get("TUNEHUB_CHROMIUM")
    if found:
        return found
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium to drive: apt-get install chromium (or set TUNEHUB_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shared(tiny_model, tmp_path_factory) -> str:
    return shared_artifact(tiny_model, tmp_path_factory)


@pytest.fixture
def served(shared, tunehub_home):
    """Start a loopback server with the dashboard (extra settings as keywords)."""
    versions = copy_versions(shared)
    running = []

    def start(**settings):
        store = FeedbackStore(tunehub_home / "feedback.sqlite3")
        server = BackgroundServer([Classifier(versions[-1])], ServeSettings(port=0, ui=True, **settings),
                                  store=store).__enter__()
        running.append((server, store))
        return server

    yield start
    for server, store in running:
        server.stop()
        store.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    problems = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on("requestfailed", lambda request: None if "ABORTED" in (request.failure or "")
              else problems.append(f"failed: {request.url} ({request.failure})"))
    yield opened
    context.close()
    assert problems == []  # no script error, no request that failed (or left this host)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    print(f"screenshot: {SHOTS / name}.png")


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_monitoring_shows_the_planted_alert_and_updates_live(page, served, tmp_path):
    expect = sync_api.expect
    monitor(tmp_path)  # BETA turns negative on day 7
    server = served()
    page.goto(f"{server.url}/ui/monitor")
    marks = page.locator(".alert-mark")
    expect(marks).to_have_count(1)
    assert marks.first.get_attribute("data-entity") == "BETA"
    assert float(marks.first.get_attribute("data-start")) == surge_start(7)
    expect(page.locator("#panels article")).to_have_count(3)
    expect(page.locator("#alerts details")).to_have_count(1)

    focused = []  # the page works from the keyboard: Tab reaches the filters and the marker
    for _ in range(20):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.getAttribute('class')"))
        if focused[-1] == "alert-mark":
            break
    assert focused[0] == "skip" and {"task", "entity", "since", "live", "alert-mark"} <= set(focused)
    page.keyboard.press("Enter")
    opened = page.locator("details.alert[open]")
    expect(opened).to_have_count(1)
    expect(opened).to_contain_text("Shares fell after the profit warning.")
    expect(opened).to_contain_text("BETA")
    shot(page, "monitoring-1280x800")

    monitor(tmp_path, days=12, surges=(("BETA", 7), ("GAMA", 11)))  # the monitor goes on
    expect(page.locator('.alert-mark[data-entity="GAMA"]')).to_have_count(1, timeout=15_000)
    expect(page.locator("#alert-count")).to_have_text("2")

    page.select_option("#entity", "GAMA")
    expect(page.locator("#panels article")).to_have_count(1)
    expect(page.locator("#alerts details")).to_have_count(1)
    assert "entity=GAMA" in page.url  # the filters live in the address
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(400)  # the chart is redrawn for the width
    assert fits_the_screen(page)
    shot(page, "monitoring-phone")


def test_feedback_page_stores_a_correction(page, served):
    expect = sync_api.expect
    server = served()
    texts = ["The meeting is in May.", "营收持平，等待下季度指引。", "Profit rose 20%."]
    outputs = httpx.post(f"{server.url}/v1/predict", json={"inputs": texts}).json()["outputs"]
    page.goto(f"{server.url}/ui/feedback")
    cards = page.locator("article.item")
    expect(cards).to_have_count(2)  # the two unsure ones; the sure one is not up for review
    chinese = cards.filter(has_text="营收持平")
    expect(chinese).to_be_visible()
    font = chinese.evaluate("node => getComputedStyle(node).fontFamily")
    assert "Noto Sans CJK SC" in font and "WenQuanYi" in font
    expect(page.locator("#retrain-command")).to_contain_text(f"app run-task {TASK} --with-feedback")

    card = cards.filter(has_text="The meeting is in May.")
    card.get_by_label("Right label").select_option("negative")
    card.get_by_role("button", name="Save correction").click()
    expect(card.locator(".status")).to_contain_text("Stored as feedback #")
    stored = list_feedback(TASK)
    assert len(stored) == 1
    assert (stored[0]["prediction_id"], stored[0]["label"], stored[0]["input"]) == (
        outputs[0]["prediction_id"], "negative", texts[0])
    assert stored[0]["source"] == "dashboard" and stored[0]["predicted"]["label"] == "neutral"
    shot(page, "feedback-1280x800")

    page.get_by_role("button", name="Refresh").click()
    expect(cards).to_have_count(1)  # reviewed: off the queue
    expect(page.locator("#retrain-count")).to_contain_text("1 correction stored since")
    page.set_viewport_size(PHONE)
    assert fits_the_screen(page)
    shot(page, "feedback-phone")


def test_versions_report_and_promote_behind_a_confirmation(page, served):
    expect = sync_api.expect
    server = served()
    page.goto(f"{server.url}/ui/versions")
    rows = page.locator("section[data-task] tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="v2").locator(".badge.serving")).to_have_count(1)
    page.get_by_role("button", name="Report of v1").click()
    expect(page.locator("#report h1")).to_contain_text(f"{TASK}: run report")
    page.wait_for_function("() => { const images = [...document.querySelectorAll('#report img')];"
                           " return images.length >= 2 && images.every(i => i.complete && i.naturalWidth > 0); }")

    page.get_by_role("button", name="Promote v1…").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"{TASK}@v1 becomes {TASK}@serving")
    page.keyboard.press("Enter")  # the focused button is Cancel
    expect(dialog).to_be_hidden()
    assert hub.serving_version(TASK) is None
    page.get_by_role("button", name="Promote v1…").click()
    page.get_by_role("button", name=f"Promote {TASK}@v1").click()
    expect(page.locator("#state")).to_contain_text(f"{TASK}@serving -> v1")
    assert hub.serving_version(TASK) == "v1"
    expect(rows.filter(has_text="v1").locator(".badge.serving")).to_have_count(1)
    shot(page, "versions-1280x800")
    page.set_viewport_size(PHONE)
    assert fits_the_screen(page)
    shot(page, "versions-phone")


def test_with_a_key_the_browser_signs_in_once_to_write(page, served):
    expect = sync_api.expect
    server = served(api_key=KEY)
    page.goto(f"{server.url}/ui/versions")
    page.get_by_role("button", name="Promote v1…").click()
    page.get_by_role("button", name=f"Promote {TASK}@v1").click()
    expect(page.locator("#state")).to_contain_text("needs the API key")
    assert hub.serving_version(TASK) is None
    page.locator("#state").get_by_role("link", name="Sign in with the API key").click()
    expect(page).to_have_url(f"{server.url}/ui/login?next=%2Fui%2Fversions")
    page.keyboard.type("x" * 20)
    page.keyboard.press("Enter")
    expect(page.locator("#failed")).to_be_visible()
    page.locator("#key").fill(KEY)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/ui/versions")
    expect(page.locator("#session")).to_contain_text("Signed in")
    cookies = page.context.cookies()
    assert [c["httpOnly"] for c in cookies] == [True] and KEY not in cookies[0]["value"]
    page.get_by_role("button", name="Promote v1…").click()
    page.get_by_role("button", name=f"Promote {TASK}@v1").click()
    expect(page.locator("#state")).to_contain_text(f"{TASK}@serving -> v1")
    assert hub.serving_version(TASK) == "v1"
