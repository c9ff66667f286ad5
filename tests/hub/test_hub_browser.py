"""What a student and an organizer do, in a real browser: Debian's chromium driven by Playwright."""
from playwright.sync_api import expect

from conftest import ROOT
from hubstack import log_in

PASSWORD = "lenas-long-password"


def test_sign_up_get_approved_log_in_and_run_a_cell(hub, browser):
    hub.restart()
    screenshots = ROOT / ".build" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    student = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()

    # The student signs up; the account waits for approval.
    student.goto(hub.url + "/hub/signup")
    student.fill("#username_input", "lena")
    student.fill("#password_input", PASSWORD)
    student.fill("#password_confirmation_input", PASSWORD)
    student.click("#signup_submit")
    expect(student.locator(".alert")).to_contain_text("sent to the admin")

    # The organizer approves it on the authorization page.
    organizer = browser.new_context().new_page()
    # (Straight to the page: a login without next starts the organizer's server, which would outlive
    # this test and meet the next one that starts it.)
    log_in(organizer, hub.url, hub.admin, hub.admin_password, next_page="authorize")
    organizer.locator("tr", has_text="lena").get_by_role("button", name="Authorize", exact=True).click()
    expect(organizer.locator("tr", has_text="lena").get_by_role("button", name="Unauthorize", exact=True)).to_be_visible()

    # The student logs in: their server starts and JupyterLab opens with the labs.
    log_in(student, hub.url, "lena", PASSWORD)
    student.wait_for_url("**/user/lena/lab**", timeout=300_000)
    labs = student.locator(".jp-DirListing-item", has_text="labs")
    expect(labs).to_be_visible(timeout=120_000)
    labs.dblclick()
    expect(student.locator(".jp-DirListing-item", has_text="00-welcome.ipynb")).to_be_visible(timeout=30_000)
    student.screenshot(path=screenshots / "hub-labs.png")

    # The organizer's admin panel now lists her, with her server running.
    organizer.goto(hub.url + "/hub/admin")
    row = organizer.locator("tr", has_text="lena")
    expect(row.get_by_role("button", name="Stop Server")).to_be_visible(timeout=30_000)

    # A new notebook: run a cell, see its output.
    student.locator(".jp-LauncherCard[data-category='Notebook']", has_text="Python 3").click()
    # Run only once the kernel is connected and idle (the status bar says so).
    expect(student.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=120_000)
    cell = student.locator(".jp-Notebook .jp-Cell .cm-content").first
    expect(cell).to_be_visible(timeout=60_000)
    cell.click()
    student.keyboard.type("import getpass; print(getpass.getuser(), 6 * 7)")
    student.keyboard.press("Shift+Enter")
    try:
        expect(student.locator(".jp-OutputArea-output").first).to_have_text("jovyan 42", timeout=120_000)
    finally:
        student.screenshot(path=screenshots / "hub-cell.png")
    hub.stop_server("lena")
