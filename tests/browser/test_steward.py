"""The identity steward's pages in a real browser: the MASH steward signs in with their
personal certificate, is sent to the review queue, opens the task .ci/browser.sh raised
(a school's record of a parent that may be Dean Mills), is refused a decision without a
note, then confirms it. axe-core checks every page; screenshots "identity-tasks" and
"identity-task" are saved.

Environment as for test_console.py, and:
  REVIEW_TASK_FAMILY_NAME  the family name on the record that raised the open task
  REVIEW_TASK_POSTCODE     its postcode
"""

import os
import shutil

import pytest
from selenium.webdriver.common.by import By

from test_console import CONSOLE_URL, browser, check, follow, heading

FAMILY_NAME = os.environ.get("REVIEW_TASK_FAMILY_NAME", "Mills")
POSTCODE = os.environ.get("REVIEW_TASK_POSTCODE", "SO50 5QT")


@pytest.fixture
def steward():
    driver = browser("officer-mash-0001.p12")
    yield driver
    driver.quit()
    shutil.rmtree(driver.home, ignore_errors=True)


def test_the_steward_opens_the_queue_and_confirms_a_task(steward):
    steward.get(CONSOLE_URL + "/")
    assert steward.current_url.endswith("/identity/tasks"), steward.current_url
    assert heading(steward) == "Review tasks"
    assert "Signed in as Sam Okafor (MASH-0001)" in steward.page_source
    nav = steward.find_element(By.ID, "navigation").text
    assert "Review tasks" in nav and "Identity links" in nav
    assert "Search the log" not in nav
    rows = steward.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1, "the one open task .ci/browser.sh raised"
    assert "%" in rows[0].text
    assert "different districts" in rows[0].text
    check(steward, "identity-tasks")

    follow(steward, rows[0].find_element(By.TAG_NAME, "a"))
    assert heading(steward) == "Are these the same person?"
    main = steward.find_element(By.ID, "main-content").text
    assert FAMILY_NAME in main and POSTCODE in main
    assert "As police records them" in main
    check(steward, "identity-task")

    # Without a note: the error summary names the field, nothing is decided.
    steward.find_element(By.ID, "decision").click()
    follow(steward, steward.find_element(By.CSS_SELECTOR, "form[action$='/decision'] button"))
    summary = steward.find_element(By.CSS_SELECTOR, ".govuk-error-summary")
    assert "Enter a note" in summary.text
    assert summary.find_element(By.TAG_NAME, "a").get_attribute("href").endswith("#note")
    assert steward.title.startswith("Error:")
    check(steward, "identity-task-error")

    steward.find_element(By.ID, "note").send_keys(
        "Same father: the school holds his new address, confirmed with the family")
    follow(steward, steward.find_element(By.CSS_SELECTOR, "form[action$='/decision'] button"))
    assert heading(steward) == "Review tasks"
    banner = steward.find_element(By.CSS_SELECTOR, ".govuk-notification-banner--success")
    assert "confirmed" in banner.text
    assert "No review task is waiting" in steward.page_source
    check(steward, "identity-tasks-done")

    follow(steward, steward.find_element(By.LINK_TEXT, "Identity links"))
    assert heading(steward) == "Identity links"
    assert "steward (review task confirmed)" in steward.page_source
    check(steward, "identity-links")


def test_the_steward_is_refused_the_ig_pages(steward):
    steward.get(CONSOLE_URL + "/break-glass")
    assert heading(steward) == "You do not have permission to do this"
    assert "audit.ig_officer_only" in steward.page_source
    assert "Review tasks" in steward.find_element(By.ID, "navigation").text
    check(steward, "identity-refused-ig-page")


def test_an_ig_officer_is_refused_the_steward_pages():
    driver = browser("officer-ig-0001.p12")
    try:
        driver.get(CONSOLE_URL + "/identity/tasks")
        assert heading(driver) == "You do not have permission to do this"
        assert "identity.steward_only" in driver.page_source
        assert "Search the log" in driver.find_element(By.ID, "navigation").text
        check(driver, "identity-refused-ig-officer")
    finally:
        driver.quit()
        shutil.rmtree(driver.home, ignore_errors=True)
