"""Headless Chromium on the page (Selenium), for the screenshot and webcam-rate scripts and the tests.

Needs Debian's ``chromium`` and ``chromium-driver``. The fake camera (Chromium's own test
pattern) stands in for a webcam, at the size the page asks for (640x480).
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np


def chromium_available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def start_chromium(profile: Path, width: int = 1400, height: int = 1000, extra_args: Sequence[str] = ()):
    """A headless Chromium with the fake camera allowed; quit it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--window-size={width},{height}", f"--user-data-dir={profile}", *extra_args]:
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    drv.set_page_load_timeout(60)
    return drv


def wait(drv, condition: Callable, seconds: float = 90):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, seconds, poll_frequency=0.25).until(condition)


def open_tab(drv, *labels: str) -> None:
    """Click through the tab path, e.g. ("Fast style", "Webcam")."""
    from selenium.webdriver.common.by import By

    for label in labels:
        tab = wait(drv, lambda d: next((b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                                        if b.text.strip() == label and b.is_displayed()), None))
        tab.click()


def selected_tabs(drv) -> list[str]:
    from selenium.webdriver.common.by import By

    return [b.text.strip() for b in drv.find_elements(By.CSS_SELECTOR, "button[role=tab][aria-selected=true]")
            if b.is_displayed()]


def image_src(drv, elem_id: str) -> str | None:
    from selenium.webdriver.common.by import By

    imgs = drv.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
    return next((i.get_attribute("src") for i in imgs if i.get_attribute("src")), None)


def fetch_image(src: str) -> np.ndarray:
    """An image the page shows (its URL), as BGR."""
    data = np.frombuffer(urllib.request.urlopen(src, timeout=30).read(), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise AssertionError(f"{src} is not an image")
    return img


def click_picker_tile(drv, caption_part: str) -> None:
    """Click the picker tile whose caption contains ``caption_part``."""
    from selenium.webdriver.common.by import By

    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException

    def click(d):
        for button in d.find_elements(By.CSS_SELECTOR, "#style-picker button"):
            if caption_part in (button.text or "") and button.is_displayed():
                try:  # the picker may be covered while the page refreshes it
                    button.click()
                    return True
                except (ElementClickInterceptedException, StaleElementReferenceException):
                    return False
        return False
    wait(drv, click, 60)


def set_slider(drv, elem_id: str, fraction: float) -> None:
    """Click a slider's track at ``fraction`` of its width (as a user drags it: fires 'release')."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    track = wait(drv, lambda d: d.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=range]"))
    width = track.size["width"]
    offset = int(round((fraction - 0.5) * (width - 2)))
    ActionChains(drv).move_to_element_with_offset(track, offset, 0).click().perform()


def start_webcam(drv) -> None:
    """On the open Webcam tab: allow the camera and start streaming."""
    from selenium.webdriver.common.by import By

    def click(text: str):
        def find(d):
            for el in d.find_elements(By.CSS_SELECTOR, "#webcam button, #webcam [role=button]"):
                label = f"{el.text} {el.get_attribute('aria-label') or ''} {el.get_attribute('title') or ''}"
                if text.lower() in label.lower() and el.is_displayed():
                    return el
            return None
        wait(drv, find, 30).click()

    click("access webcam")
    time.sleep(2)
    click("record")


# Counts the frames the live output shows: each new frame is a new <img> src.
_COUNT_FRAMES = """
const box = document.getElementById(arguments[0]);
window.__frames = [];
let last = null;
const seen = () => { const img = box.querySelector('img'); const src = img && img.getAttribute('src');
  if (src && src !== last) { last = src; window.__frames.push(performance.now()); } };
new MutationObserver(seen).observe(box, {subtree: true, childList: true, attributes: true,
                                         attributeFilter: ['src']});
"""


def measure_stream(drv, seconds: float = 15.0, elem_id: str = "live-output") -> dict:
    """Frames per second the live output shows over ``seconds`` (after its first frame)."""
    wait(drv, lambda d: image_src(d, elem_id), 120)
    drv.execute_script(_COUNT_FRAMES, elem_id)
    time.sleep(seconds)
    stamps = drv.execute_script("return window.__frames;") or []
    if len(stamps) < 2:
        return {"frames": len(stamps), "fps": 0.0, "seconds": seconds}
    span = (stamps[-1] - stamps[0]) / 1000
    gaps = np.diff(stamps)
    return {"frames": len(stamps), "fps": (len(stamps) - 1) / span, "seconds": span,
            "gap_ms_median": float(np.median(gaps)), "gap_ms_p95": float(np.percentile(gaps, 95))}
