"""The browsing pages in a real browser: Debian's headless Chromium driven through
chromedriver by selenium (WebDriver, the W3C protocol both speak).

Usage: browser_e2e.py URL TOKEN PROJECT_PATH JOB_ID SCREENSHOT_DIR [ARTIFACTS_ORIGIN]

Signs in with TOKEN from the job list, goes from the job list to the job's artifacts, into
the coverage report's folder and opens its index.html (through the grant URL a signed-in
browser is sent to); checks that the report's stylesheet
and script (relative to it, in the archive) were loaded, that its script could read neither
the server's cookie nor its API, and follows a relative link inside the report; opens a
text file's page; follows every link of the folder names/, whose files' names are the
JSON list in $BROWSER_E2E_NAMES (each file holds "this is <its name>"), to that very file.
With ARTIFACTS_ORIGIN (the server's --artifacts-origin), the report is
opened there, outside any sandbox: its script reads that origin's cookies (not the
server's) and finds no API there. Saves screenshots of the listing, the report and the
text page in SCREENSHOT_DIR. Prints "browser e2e ok".
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    # What a headless Chromium needs on a closed, root-run machine (no sandbox user
    # namespaces, no GPU, no calls home).
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,760",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def names_table(driver, wait, folder, names):
    """Follows each link of the listing at FOLDER (names/) in turn, as a click does, and
    checks that it lands on the page of the file it names: its own contents."""
    driver.get(folder)
    wait.until(ready.url_to_be(folder))
    count = len(driver.find_elements(By.CSS_SELECTOR, "tbody a")) - 1  # without ".."
    assert count == len(names), [a.text for a in driver.find_elements(By.CSS_SELECTOR, "tbody a")]
    seen = []
    for i in range(count):
        link = driver.find_elements(By.CSS_SELECTOR, "tbody a")[i + 1]
        # The DOM's text, exactly (WebDriver's visible text drops the invisible mark).
        name, href = link.get_property("textContent"), link.get_attribute("href")
        link.click()
        wait.until(ready.staleness_of(link))
        pre = wait.until(ready.presence_of_element_located((By.TAG_NAME, "pre")))
        text = pre.get_property("textContent")
        assert "/artifacts/file/names/" in driver.current_url, (name, href, driver.current_url)
        assert text == f"this is {name}\n", (name, href, driver.current_url, text)
        seen.append(name)
        driver.back()
        wait.until(ready.url_to_be(folder))
    assert sorted(seen) == sorted(names), (seen, names)


def main():
    url, token, project, job, shots = sys.argv[1:6]
    origin = sys.argv[6] if len(sys.argv) > 6 else ""
    os.makedirs(shots, exist_ok=True)
    driver = browser()
    wait = WebDriverWait(driver, 20)
    try:
        # A private project: the job list sends an anonymous visitor to sign in.
        driver.get(f"{url}/{project}/-/jobs")
        wait.until(ready.presence_of_element_located((By.NAME, "token")))
        assert "/users/sign_in" in driver.current_url, driver.current_url
        driver.find_element(By.NAME, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(ready.url_to_be(f"{url}/{project}/-/jobs"))
        cookie = driver.get_cookie("_artifact_session")
        assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
        assert token not in str(driver.get_cookies()), "the token stays on the server"

        # Job list -> the job's artifacts -> the report's folder.
        driver.find_element(By.CSS_SELECTOR, f"a[href$='/-/jobs/{job}/artifacts/browse']").click()
        wait.until(ready.url_contains(f"/-/jobs/{job}/artifacts/browse"))
        driver.find_element(By.LINK_TEXT, "coverage/").click()
        wait.until(ready.url_contains("/artifacts/browse/coverage"))
        names = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "tbody a")]
        assert names[:2] == ["..", "details/"], names
        # The page says where the visitor is: project, job, status, ref, pipeline, expiry.
        head = driver.find_element(By.CSS_SELECTOR, "header.job").text
        assert project in head and f"Job coverage #{job}" in head, head
        assert "success" in head and "ref main" in head and "pipeline #" in head, head
        assert "artifacts never expire" in head, head
        pipeline = driver.find_element(By.CSS_SELECTOR, "header.job a[href*='/-/pipelines/']")
        assert pipeline.text.startswith("#"), pipeline.text
        driver.save_screenshot(os.path.join(shots, "listing.png"))

        # A text file opens in a page of this server, shown as text.
        driver.find_element(By.LINK_TEXT, "lcov.info").click()
        wait.until(ready.url_contains("/artifacts/file/coverage/lcov.info"))
        assert driver.current_url.startswith(url), driver.current_url
        assert "LH:42" in driver.find_element(By.TAG_NAME, "pre").text
        driver.save_screenshot(os.path.join(shots, "text.png"))
        driver.back()
        wait.until(ready.url_contains("/artifacts/browse/coverage"))

        # Every link of a folder of awkward names leads to its own file.
        names = json.loads(os.environ["BROWSER_E2E_NAMES"])
        names_table(driver, wait, f"{url}/{project}/-/jobs/{job}/artifacts/browse/names", names)
        driver.get(f"{url}/{project}/-/jobs/{job}/artifacts/browse/coverage")
        wait.until(ready.url_contains("/artifacts/browse/coverage"))

        # The report, opened in one click, runs in its sandbox.
        driver.find_element(By.LINK_TEXT, "index.html").click()
        # Signed in by cookie, a file opens through a grant in its URL (its sandbox sends no
        # cookie): /artifacts/view/<grant>/coverage/index.html.
        wait.until(ready.url_contains("/coverage/index.html"))
        assert "/artifacts/view/" in driver.current_url, driver.current_url
        assert driver.current_url.startswith(origin or url), driver.current_url
        try:
            wait.until(lambda d: d.find_element(By.ID, "probe").text != "pending")
        except Exception:
            print("page:", driver.page_source[:2000], file=sys.stderr)
            for entry in driver.get_log("browser"):
                print("console:", entry, file=sys.stderr)
            raise
        assert driver.find_element(By.ID, "js").text == "script ran", "its script (app.js) ran"
        color = driver.find_element(By.ID, "title").value_of_css_property("color")
        assert color in ("rgb(0, 128, 0)", "rgba(0, 128, 0, 1)"), f"its stylesheet (style.css) applied: {color}"
        probe = driver.find_element(By.ID, "probe").text
        if origin:
            # No sandbox there: its own origin's cookies (none), never the server's, and
            # no API on that origin.
            assert "cookie read: []" in probe, probe
            assert "api read: status 404" in probe, probe
        else:
            assert "cookie blocked" in probe, probe
            assert "api blocked" in probe, probe
        driver.save_screenshot(os.path.join(shots, "report.png"))

        # A relative link inside the report resolves to another file of the archive.
        driver.find_element(By.ID, "next").click()
        wait.until(ready.presence_of_element_located((By.ID, "detail")))
        here = driver.current_url
        assert "/artifacts/view/" in here and here.endswith("/coverage/details/module.html"), here
        print(f"report probe: {probe}")
        print("browser e2e ok")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
