"""The web page in a real browser: Debian's Chromium, driven by its chromedriver through Selenium.

It opens the page, uploads a grey photo through the file input, waits for
the before/after view and checks, from the pixels the page shows, that the
result is in colour. Without Chromium the test skips, except where
RETINT_REQUIRE_BROWSER=1 (CI sets it, and installs Chromium) makes a skip a
failure. RETINT_SERVE_SCREENSHOT=PATH saves the page as a PNG (docs/serve.png
is made that way).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from retint.benchmarks.serve_load import ServerProcess
from imagemaker import grey_photo
from servers import encoded

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The page draws the shown result on a canvas and measures it (max - min over RGB, mean over pixels).
RESULT_COLOURFULNESS = """
const image = document.getElementById("after");
const canvas = document.createElement("canvas");
canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
const context = canvas.getContext("2d");
context.drawImage(image, 0, 0);
const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
let total = 0;
for (let i = 0; i < pixels.length; i += 4) {
  const r = pixels[i], g = pixels[i + 1], b = pixels[i + 2];
  total += Math.max(r, g, b) - Math.min(r, g, b);
}
return [canvas.width, canvas.height, total / (pixels.length / 4)];
"""


def _browser_or_skip():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium (the 'dev' extra)")
    if missing:
        reason = f"no browser to test with: {', '.join(missing)} missing (apt-get install chromium chromium-driver)"
        if os.environ.get("RETINT_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # This machine's network is closed: without the background-networking flags Chromium keeps
    # trying to reach Google's hosts.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1100,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_the_page_colours_an_uploaded_grey_photo(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "grey-photo.jpg"
    photo.write_bytes(encoded(grey_photo(480, 640, seed=3), quality=92))
    browser = _browser_or_skip()
    try:
        with ServerProcess(tmp_path / "serve.log") as server:
            browser.get(server.url + "/")
            assert browser.find_element(By.CSS_SELECTOR, "form#upload input[type=file]")
            browser.find_element(By.ID, "file").send_keys(str(photo))
            WebDriverWait(browser, 60).until(
                lambda driver: driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done",
                                                                                                       "error"))
            status = browser.find_element(By.ID, "status").text
            assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", status
            width, height, colourfulness = browser.execute_script(RESULT_COLOURFULNESS)
            assert (width, height) == (640, 480)
            assert colourfulness > 3.0, colourfulness
            download = browser.find_element(By.ID, "download")
            assert download.get_attribute("href").startswith("blob:")
            assert download.get_attribute("download") == "grey-photo-colour.jpg"
            assert "coloured in" in status
            screenshot = os.environ.get("RETINT_SERVE_SCREENSHOT")
            if screenshot:
                Path(screenshot).write_bytes(browser.get_screenshot_as_png())
            assert " POST /colorize 200 " in server.log()
    finally:
        browser.quit()
