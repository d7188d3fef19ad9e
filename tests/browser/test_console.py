"""The IG console in a real browser: headless Chromium (Debian's chromium and
chromium-driver) signs in with an officer's personal certificate from the dev PKI, as a
new officer would after importing the PKCS#12 bundle, and works through the pages.
axe-core checks every page it opens; screenshots of the main pages are saved.

Run by .ci/browser.sh against a running `safegate demo`. Environment:
  CONSOLE_URL   e.g. https://localhost:8443
  SAFEGATE_PKI  the demo's PKI directory (ca.pem, officer-*.p12)
  AXE_JS        path of axe-core's axe.min.js
  SCREENSHOTS   directory for the screenshots
  P12_PASSWORD  the bundles' password
  BREAK_GLASS_SUBJECT  the NHS number a break-glass query was made about
  ALERT_PRACTITIONER   the practitioner whose refused queries raised a privacy alert
"""

import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

CONSOLE_URL = os.environ["CONSOLE_URL"].rstrip("/")
PKI = pathlib.Path(os.environ["SAFEGATE_PKI"])
AXE_JS = pathlib.Path(os.environ["AXE_JS"]).read_text()
SCREENSHOTS = pathlib.Path(os.environ["SCREENSHOTS"])
P12_PASSWORD = os.environ.get("P12_PASSWORD", "safegate-demo")
BREAK_GLASS_SUBJECT = os.environ.get("BREAK_GLASS_SUBJECT", "9990000042")
ALERT_PRACTITIONER = os.environ.get("ALERT_PRACTITIONER", "DSL-0901")
AMY_NHS = "999 000 0018"
OFFICERS_CA_CN = "safegate development IG office CA"
PAGE_LOAD_TIMEOUT = 30


def nss_home(p12: str | None) -> pathlib.Path:
    """A HOME whose NSS database trusts the dev CA (the console's server certificate)
    and, when given, holds an officer's certificate and key imported from its bundle."""
    home = pathlib.Path(tempfile.mkdtemp(prefix="safegate-browser-"))
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)
    run("certutil", "-d", f"sql:{db}", "-N", "--empty-password")
    run("certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "safegate dev CA",
        "-i", str(PKI / "ca.pem"))
    if p12:
        run("pk12util", "-d", f"sql:{db}", "-i", str(PKI / p12), "-W", P12_PASSWORD)
    return home


def browser(p12: str | None):
    home = nss_home(p12)
    downloads = home / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1280,900",
                     "--disable-dev-shm-usage", f"--user-data-dir={home / 'profile'}"):
        options.add_argument(argument)
    # Choose the officer's certificate without a dialog (headless has none to show).
    origin = CONSOLE_URL + ",*"
    options.add_experimental_option("prefs", {
        "profile.content_settings.exceptions.auto_select_certificate": {
            origin: {"setting": {"filters": [{"ISSUER": {"CN": OFFICERS_CA_CN}}]}},
        },
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
    })
    service = Service(executable_path="/usr/bin/chromedriver",
                      env={**os.environ, "HOME": str(home)})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    # Elements are looked for until the page that shows them has loaded (a form's
    # submission may still be navigating when the next step looks).
    driver.implicitly_wait(10)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    driver.home = home
    return driver


@pytest.fixture
def officer():
    driver = browser("officer-ig-0001.p12")
    yield driver
    driver.quit()
    shutil.rmtree(driver.home, ignore_errors=True)


def axe_violations(driver):
    driver.execute_script(AXE_JS)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations.map(v => "
        "({id: v.id, impact: v.impact, help: v.help, "
        "nodes: v.nodes.map(n => n.target.join(' '))})))).catch(e => done(String(e)));"
    )
    assert isinstance(result, list), f"axe did not run: {result}"
    return result


def check(driver, name: str):
    """The page has no axe-core violations; its screenshot is saved as NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    violations = axe_violations(driver)
    assert violations == [], f"{name}: axe-core violations: {violations}"


def follow(driver, element):
    """Clicks a link or a form's button and waits until the next page has replaced
    this one (so nothing of the old page is read as the new one's).

    The old document is marked and the wait is for a complete document without the
    mark. Asking the browser while it is between documents can fail (chromedriver's
    "Node with given id does not belong to the document", or no document at all):
    that only means the new page is not there yet, so it is asked again."""
    driver.execute_script("document.documentElement.dataset.safegateOld = '1'")
    element.click()
    WebDriverWait(driver, PAGE_LOAD_TIMEOUT).until(new_page_loaded)


def new_page_loaded(driver) -> bool:
    try:
        return driver.execute_script(
            "return document.readyState === 'complete'"
            " && document.documentElement.dataset.safegateOld === undefined")
    except WebDriverException:
        return False


def heading(driver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def wait_for(condition, seconds: float, what: str):
    """Asks CONDITION until it holds; a question the browser cannot answer while it
    is between documents (a page refreshing itself) counts as not yet."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = condition()
        except WebDriverException:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_refused_without_a_certificate():
    driver = browser(None)
    try:
        driver.get(CONSOLE_URL + "/")
        assert heading(driver) == "Sign in with your personal certificate"
        assert "Signed in as" not in driver.page_source
        assert "<form" not in driver.page_source
        check(driver, "refused-no-certificate")
    finally:
        driver.quit()


def test_refused_for_a_role_other_than_ig_officer():
    driver = browser("officer-hv-0001.p12")
    try:
        driver.get(CONSOLE_URL + "/")
        assert heading(driver) == "You do not have permission to do this"
        assert "audit.ig_officer_only" in driver.page_source
        assert "health_visitor" in driver.page_source
        check(driver, "refused-health-visitor")
    finally:
        driver.quit()


def test_sign_in_search_and_open_an_entry_with_its_proof(officer):
    officer.get(CONSOLE_URL + "/")
    assert heading(officer) == "Search the disclosure log"
    assert "Signed in as Priya Shah (IG-0001)" in officer.page_source
    check(officer, "search")

    officer.find_element(By.ID, "person").send_keys(AMY_NHS)
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action^='/search'] button[type=submit]"))
    caption = officer.find_element(By.CSS_SELECTOR, "#results ~ table caption").text
    assert "entries" in caption, caption
    rows = officer.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert rows, "no entries about Amy"
    # The identifier never reaches the address bar.
    assert "9990000018" not in officer.current_url
    check(officer, "search-results")

    follow(officer, rows[0].find_element(By.TAG_NAME, "a"))
    assert heading(officer).startswith("Entry ")
    assert "Proof checked" in officer.page_source
    assert "Lawful basis" in officer.page_source
    check(officer, "entry")


def test_a_break_glass_use_is_reviewed_with_an_outcome_and_note(officer):
    officer.get(CONSOLE_URL + "/break-glass")
    assert heading(officer) == "Break-glass queue"
    check(officer, "break-glass-queue")
    follow(officer, officer.find_element(By.CSS_SELECTOR, "tbody a"))
    officer.find_element(By.ID, "outcome").click()
    officer.find_element(By.ID, "note").send_keys(
        "The school DSL acted on a disclosure made that morning; appropriate.")
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action$='/review'] button"))
    banner = officer.find_element(By.CSS_SELECTOR, ".govuk-notification-banner--success")
    assert "recorded" in banner.text
    assert "Latest outcome: appropriate" in officer.find_element(By.ID, "main-content").text
    check(officer, "break-glass-reviewed")


def test_a_review_without_a_note_is_explained_in_an_error_summary(officer):
    officer.get(CONSOLE_URL + "/")
    Select(officer.find_element(By.ID, "break_glass")).select_by_value("yes")
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action^='/search'] button[type=submit]"))
    follow(officer, officer.find_element(By.CSS_SELECTOR, "#results ~ table tbody a"))
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action$='/review'] button"))
    summary = officer.find_element(By.CSS_SELECTOR, ".govuk-error-summary")
    assert "Enter a note" in summary.text
    assert officer.title.startswith("Error:")
    check(officer, "break-glass-error")


def test_work_an_alert(officer):
    officer.get(CONSOLE_URL + "/alerts")
    assert heading(officer) == "Privacy alerts"
    check(officer, "alerts")
    Select(officer.find_element(By.ID, "state")).select_by_value("open")
    Select(officer.find_element(By.ID, "rule")).select_by_value("alerts.repeated_refusals")
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action='/alerts'] button"))
    rows = [r for r in officer.find_elements(By.CSS_SELECTOR, "#results tbody tr")
            if ALERT_PRACTITIONER in r.text]
    assert rows, f"no open repeated-refusals alert about {ALERT_PRACTITIONER}"
    follow(officer, rows[0].find_element(By.TAG_NAME, "a"))
    assert heading(officer) == "Repeated refusals"
    assert "refused 5 times" in officer.find_element(By.ID, "why").text
    assert officer.find_element(By.ID, "case-state").text == "open"
    check(officer, "alert-case")
    officer.execute_script("document.getElementById('history').scrollIntoView()")
    officer.save_screenshot(str(SCREENSHOTS / "alert-case-forms.png"))

    officer.find_element(By.ID, "assignee").send_keys("IG-0001")
    officer.find_element(By.ID, "assign_note").send_keys("Taking this one.")
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action$='/assign'] button"))
    banner = officer.find_element(By.CSS_SELECTOR, ".govuk-notification-banner--success")
    assert "assignment is recorded" in banner.text
    assert officer.find_element(By.ID, "case-state").text == "assigned"

    # Without a note the close is refused, naming the field.
    officer.find_element(By.ID, "outcome-false_positive").click()
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action$='/close'] button"))
    summary = officer.find_element(By.CSS_SELECTOR, ".govuk-error-summary")
    assert "Enter a note" in summary.text
    assert officer.title.startswith("Error:")
    check(officer, "alert-case-error")

    officer.find_element(By.ID, "close_note").send_keys(
        "The DSL was trying the new system with a test pupil; no data was shown.")
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action$='/close'] button"))
    banner = officer.find_element(By.CSS_SELECTOR, ".govuk-notification-banner--success")
    assert "case is closed" in banner.text
    assert officer.find_element(By.ID, "case-state").text == "closed"
    history = officer.find_element(By.ID, "history").text
    assert "Assigned to IG-0001" in history
    assert "False positive" in history
    assert not officer.find_elements(By.CSS_SELECTOR, "form[action$='/close']")
    check(officer, "alert-closed")


def test_a_subject_access_report_holds_police_entries_back(officer):
    officer.get(CONSOLE_URL + "/subject-access")
    check(officer, "subject-access")
    officer.find_element(By.ID, "person").send_keys(BREAK_GLASS_SUBJECT)
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action='/subject-access'] button"))
    report = officer.find_element(By.ID, "main-content").text
    assert "Disclosures reported" in report
    assert "Police entries held back" in report
    check(officer, "subject-access-report")


def test_an_export_is_downloaded(officer):
    officer.get(CONSOLE_URL + "/exports")
    check(officer, "exports")
    officer.find_element(By.ID, "format-csv").click()
    officer.find_element(By.CSS_SELECTOR, "form[action='/exports'] button").click()
    done = lambda: [p for p in officer.downloads.glob("disclosure-log-csv-*.csv")]
    files = wait_for(done, 30, "the CSV export in the downloads directory")
    header = files[0].read_text().splitlines()[0]
    assert header.startswith("seq,entry_id,recorded_at,kind,decision"), header


def test_the_whole_log_verifies_with_progress_shown(officer):
    officer.get(CONSOLE_URL + "/verify")
    check(officer, "verify")
    follow(officer, officer.find_element(By.CSS_SELECTOR, "form[action='/verify'] button"))
    # The job page refreshes itself (meta refresh) until the verification is done; the
    # title is read, not an element, as each refresh replaces the document.
    wait_for(lambda: officer.title.startswith("Verification finished"), 60,
             "the verification")
    assert "The log verifies" in officer.page_source
    check(officer, "verify-finished")


def test_charts_have_text_alternatives(officer):
    officer.get(CONSOLE_URL + "/charts")
    assert heading(officer) == "Charts"
    charts = officer.find_elements(By.CSS_SELECTOR, "svg[role=img]")
    assert len(charts) == 4
    for chart in charts:
        assert chart.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    captions = [c.text for c in officer.find_elements(By.CSS_SELECTOR, "caption")]
    assert "Disclosures and refusals per agency per week" in captions
    assert "Privacy alerts by rule" in captions
    check(officer, "charts")
    officer.execute_script("document.getElementById('alerts-heading').scrollIntoView()")
    officer.save_screenshot(str(SCREENSHOTS / "charts-alerts.png"))
