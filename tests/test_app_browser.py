"""The character creator in a real browser: `python -m eval.app` on a free loopback port, driven by Debian's headless
chromium through its chromedriver (both installed by `make setup`; nothing downloaded, Selenium Manager never runs).

The browser resolves no host but 127.0.0.1, so the page must work with no network, and every request it made is
checked to have stayed on the machine. A screenshot of the page lands in runs/app/app_page.png for a person to look at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from io import BytesIO
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image
from skimage import data

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = REPO / "runs" / "app" / "app_page.png"
WAIT_S = 60  # the first photo loads the detector; the machine may be busy
MOVED = "head_width"


@pytest.fixture(scope="module")
def app_url():
    """The app's URL, started as a user would (`python -m eval.app --port P`, the shipped model); stopped after."""
    import fakes

    port = fakes.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "eval.app", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while not any(f"serving on {url}" in line for line in lines):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"python -m eval.app did not start serving on {url}:\n{''.join(lines)[-3000:]}")
        time.sleep(0.2)
    yield url
    process.terminate()  # SIGTERM stops it as Ctrl-C does: the server closes, the download files go
    assert process.wait(30) == 0, "".join(lines)[-3000:]


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:  # a failure, not a skip: CI runs `make setup`, which installs them
        pytest.fail(f"{', '.join(missing)} not installed: run `make setup` (Debian's chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1400,1600",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # no network: any other host fails to resolve
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    # A driver path given: Selenium Manager is skipped, nothing is looked up or downloaded.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def wait_for(driver, condition, what: str, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message=f"waited for {what}")


def front_view(driver, view: str = "front-view") -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"#{view} img").get_attribute("src")


def picture(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=30) as response:
        return np.asarray(Image.open(BytesIO(response.read())).convert("RGB")).astype(np.int16)


def requests_made(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def off_the_machine(urls: list[str]) -> list[str]:
    return [
        url for url in urls if urlparse(url).scheme not in ("data", "blob") and urlparse(url).hostname != "127.0.0.1"
    ]


def upload(driver, path: Path, status_says: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "#photos input[type=file]").send_keys(str(path))
    wait_for(
        driver, lambda d: status_says in d.find_element(By.ID, "status").text, f"the status to say {status_says!r}"
    )


def test_a_damaged_upload_is_named_in_the_page_with_no_network(app_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(app_url)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#front-view img"), "the neutral character")
    damaged = tmp_path / "damaged.jpg"
    buffer = BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG")
    damaged.write_bytes(buffer.getvalue()[:4000])
    upload(browser, damaged, "damaged.jpg")
    status = browser.find_element(By.ID, "status").text
    assert "damaged.jpg: cannot read damaged.jpg: damaged image" in status and "unchanged" not in status
    assert "No photo could be used" in status
    assert not off_the_machine(requests_made(browser))


def test_a_photo_gives_a_character_a_slider_changes_it_and_the_preset_holds_the_sliders(
    app_url, browser, downloads, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(app_url)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#front-view img"), "the neutral character")
    neutral = front_view(browser)
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    upload(browser, photo, "astronaut.png: one face")
    wait_for(browser, lambda d: front_view(d) != neutral, "the character of the photo")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#faces img")) >= 2  # the face found and its aligned crop

    for group in browser.find_elements(By.CSS_SELECTOR, "[id^=group-] button.label-wrap"):
        group.click()  # a closed group's sliders are not in the page
    every = "[id^=slider-] input[type=number]"
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, every)) == 267, "all 267 sliders")
    browser.execute_script("window.scrollTo(0, 0)")  # the model's reading, before any slider moves
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    before = {view: front_view(browser, view) for view in ("front-view", "three-quarter-view")}
    browser.find_element(By.CSS_SELECTOR, f"#slider-{MOVED} input[type=range]").send_keys(Keys.END)
    for view, src in before.items():
        wait_for(browser, lambda d, view=view, src=src: front_view(d, view) != src, f"the {view} to follow the slider")
        change = np.abs(picture(front_view(browser, view)) - picture(src)).mean(-1)
        assert (change > 30).mean() > 0.01, view  # a wider head: a visible band of pixels changed

    browser.find_element(By.ID, "preset-download").click()
    preset_file = downloads / "astronaut.json"
    wait_for(browser, lambda d: preset_file.is_file() and preset_file.stat().st_size > 0, "the preset download", 30)
    preset = json.loads(preset_file.read_text())
    shown = {
        element.get_attribute("id").removeprefix("slider-"): float(
            element.find_element(By.CSS_SELECTOR, "input[type=number]").get_attribute("value")
        )
        for element in browser.find_elements(By.CSS_SELECTOR, "[id^=slider-]")
    }
    assert preset["parameters"][MOVED] == 2.5 and preset["edited"] == [MOVED]
    assert preset["source"] == "astronaut.png" and preset["skin_tone_snapped"] is True
    assert set(shown) == set(preset["parameters"])
    worst = max(abs(shown[name] - value) for name, value in preset["parameters"].items())
    assert worst <= 0.005 + 1e-6  # the sliders show two decimals of the preset's values

    import trimesh

    from game import parameters as P
    from game.engine import game_engine

    browser.find_element(By.ID, "mesh-download").click()
    mesh_file = downloads / "astronaut.glb"
    wait_for(browser, lambda d: mesh_file.is_file() and mesh_file.stat().st_size > 0, "the mesh download", 30)
    mesh = trimesh.load(mesh_file, force="mesh", process=False)
    vertices = game_engine(256).vertices(np.array([preset["parameters"][name] for name in P.names()], np.float32))
    assert len(mesh.vertices) == len(vertices)
    np.testing.assert_allclose(mesh.bounds, [vertices.min(0), vertices.max(0)], atol=1e-5)  # the edited character
    assert not off_the_machine(requests_made(browser))
