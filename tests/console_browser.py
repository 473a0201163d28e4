"""Selenium helpers for the review console in real headless Chromium (Debian's chromium +
chromium-driver). Used by tests/modgate/console/test_console_browser.py and the end-to-end
test that moderates through the gateway first.

    reason = browser_missing()        # None, or why the browser tests must skip
    with chromium(artifacts) as driver:
        login(driver, console.url, token)
        verdict_id = open_first_item(driver)
        timeline_marks(driver)          # [{modality, start_ms, end_ms, percent, category}]
        reveal_thumbnail(driver, frame_index)
        decide(driver, "BLOCK", category="violence", note="...")
        screenshot(driver, artifacts, "item")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("MODGATE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MODGATE_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_S = 10.0


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} not found: install Debian's {package} (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def artifacts_dir(name: str) -> Path:
    """$MODGATE_TEST_ARTIFACTS/<name> (CI keeps it), else a temporary folder."""
    root = os.environ.get("MODGATE_TEST_ARTIFACTS", "").strip()
    base = Path(root) if root else Path(tempfile.gettempdir()) / "modgate-test-artifacts"
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def chromium(artifacts: Path, *, width: int = 1280, height: int = 1600) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=CHROMEDRIVER, log_output=str(artifacts / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(2)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait_for(driver: Any, condition: Any) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # A form POST reloads the page: an element found just before the new page replaced the old
    # one goes stale; the condition is simply asked again.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, WAIT_S, ignored_exceptions=ignored).until(condition)


def login(driver: Any, url: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login").click()
    _wait_for(driver, lambda d: d.current_url.endswith("/queue"))


def queue_ids(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.get_attribute("data-verdict-id") for row in driver.find_elements(By.CSS_SELECTOR, "tr.entry")]


def open_first_item(driver: Any) -> str:
    """Claim the queue's first item and open it; its verdict id."""
    from selenium.webdriver.common.by import By

    row = driver.find_element(By.CSS_SELECTOR, "tr.entry")
    verdict_id = row.get_attribute("data-verdict-id")
    row.find_element(By.CSS_SELECTOR, "button.claim").click()
    _wait_for(driver, lambda d: d.current_url.endswith(f"/items/{verdict_id}"))
    return str(verdict_id)


def timeline_marks(driver: Any) -> list[dict[str, Any]]:
    from selenium.webdriver.common.by import By

    marks = []
    for mark in driver.find_elements(By.CSS_SELECTOR, "#timeline rect.mark"):
        marks.append(
            {
                "modality": mark.get_attribute("data-modality"),
                "category": mark.get_attribute("data-category"),
                "start_ms": int(mark.get_attribute("data-start-ms")),
                "end_ms": int(mark.get_attribute("data-end-ms")),
                "percent": float(mark.get_attribute("data-percent")),
                "shown": mark.is_displayed(),
            }
        )
    return marks


def thumbnail_filter(driver: Any, frame_index: int) -> str:
    """The computed CSS filter of a thumbnail ('blur(...)' until revealed)."""
    from selenium.webdriver.common.by import By

    image = driver.find_element(By.CSS_SELECTOR, f"#frame-{frame_index} img")
    return str(image.value_of_css_property("filter"))


def reveal_thumbnail(driver: Any, frame_index: int) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"#frame-{frame_index} button.reveal").click()
    _wait_for(
        driver,
        lambda d: "revealed" in d.find_element(By.ID, f"frame-{frame_index}").get_attribute("class"),
    )


def toggle_greyscale(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "label[for=greyscale]").click()


def decide(driver: Any, decision: str, *, category: str = "", note: str = "") -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.find_element(By.ID, f"decision-{decision.lower()}").click()
    if category:
        Select(driver.find_element(By.ID, "category")).select_by_value(category)
    if note:
        driver.find_element(By.ID, "note").send_keys(note)
    driver.find_element(By.ID, "decide").click()
    _wait_for(driver, lambda d: d.current_url.endswith("/queue"))


def screenshot(driver: Any, artifacts: Path, name: str, *, full_page: bool = True) -> Path:
    """A PNG of the page (the whole page: the window is grown to its height first)."""
    path = artifacts / f"{name}.png"
    if full_page:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, max(800, min(int(height) + 40, 6000)))
        driver.execute_script("window.scrollTo(0, 0)")  # after a #frame-N anchor, from the top
    driver.save_screenshot(str(path))
    return path
