"""Sign in with the institution: an OpenID Connect provider run by the test in a container of its
own (oidc-provider on Node 24, tests/oidc) on the class network, and chromium logging in through
its pages, beside the class's own accounts."""
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT, docker, image_exists
from hubstack import PREFIX, free_port, wait_until

PROVIDER = f"{PREFIX}-oidc"  # its name on the class network, which chromium maps to this machine


@pytest.fixture
def provider(hub):
    """The provider, at http://dlabtest-oidc:PORT for the hub (the class network) and for the
    browser (the same port, published on this machine's loopback)."""
    if not image_exists("dlab-test/oidc:latest"):
        import subprocess
        out = subprocess.run(["scripts/build-images.sh", "oidc"], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    hub.restart()  # the class network exists
    port = free_port()
    issuer = f"http://{PROVIDER}:{port}"
    docker("rm", "-f", PROVIDER, check=False)
    docker("run", "-d", "--name", PROVIDER, "--network", PREFIX, "-p", f"127.0.0.1:{port}:{port}",
           "-e", f"ISSUER={issuer}", "-e", f"PORT={port}", "-e", "CLIENT_ID=dlab-class", "-e", "CLIENT_SECRET=s3cret-of-the-class",
           "-e", f"REDIRECT_URI={hub.url}/hub/oauth_callback", "dlab-test/oidc:latest")
    try:
        wait_until(lambda: hub.request("GET", f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=5).ok,
                   60, "the identity provider")
        hub.restart(DLAB_OIDC_ISSUER=issuer, DLAB_OIDC_CLIENT_ID="dlab-class", DLAB_OIDC_CLIENT_SECRET="s3cret-of-the-class",
                    DLAB_OIDC_NAME="Test University", DLAB_OIDC_ALLOWED_USERS=f"ola.nordmann, {hub.admin}, kari")
        yield port
    finally:
        docker("rm", "-f", PROVIDER, check=False)
        hub.restart()


def sign_in_with_the_institution(page, hub, login):
    page.goto(hub.url + "/hub/login")
    page.click("#institution_login")  # "Sign in with Test University"
    page.fill("input[name=login]", login)  # the provider's own sign-in page
    page.fill("input[name=password]", "the-institutions-password")
    page.click("button[type=submit]")
    page.get_by_role("button", name="Continue").click()  # the provider asks to share the name and email


def test_a_student_signs_in_with_the_institution(hub, provider):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: `make test` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", f"--host-resolver-rules=MAP {PROVIDER} 127.0.0.1"])
        try:
            page = browser.new_context().new_page()
            page.goto(hub.url + "/hub/login")
            expect(page.locator("#institution_login")).to_have_text("Sign in with Test University")
            # A student of the institution: its name for her becomes her account; her server starts.
            sign_in_with_the_institution(page, hub, "Ola.Nordmann")
            page.wait_for_url("**/user/ola.nordmann/lab**", timeout=300_000)
            assert hub.api("GET", "/users/ola.nordmann").status_code == 200

            # The institution cannot sign anyone in as one of the class's own accounts (the organizer's here).
            other = browser.new_context().new_page()
            sign_in_with_the_institution(other, hub, hub.admin)
            expect(other.locator("body")).to_contain_text(f"{hub.admin} is an account of this class server", timeout=30_000)
            # Nor anyone the organizer did not list (DLAB_OIDC_ALLOWED_USERS), like every other GitHub user.
            stranger = browser.new_context().new_page()
            sign_in_with_the_institution(stranger, hub, "Per.Hansen")
            expect(stranger.locator("body")).to_contain_text("per.hansen is not on this class's list", timeout=30_000)
            assert hub.api("GET", "/users/per.hansen").status_code == 404
            # Nor under a name that is no username here.
            third = browser.new_context().new_page()
            sign_in_with_the_institution(third, hub, "ola nordmann")
            expect(third.locator("body")).to_contain_text("which cannot be a username here", timeout=30_000)
        finally:
            browser.close()
    # No one can sign up with a password under the institution's name for her.
    assert "signs in with Test University" in hub.signup("ola.nordmann", "a-password-of-mine")
    # The class's own accounts still log in with their passwords.
    assert hub.try_login(hub.admin, hub.admin_password)[0]
    hub.stop_server("ola.nordmann")


def test_a_provider_that_cannot_be_reached_stops_make_up_with_a_message(hub):
    hub.restart()
    out = hub.script("up", {"DLAB_OIDC_ISSUER": f"http://{PROVIDER}-gone:9", "DLAB_OIDC_CLIENT_ID": "x",
                            "DLAB_OIDC_CLIENT_SECRET": "y"}, check=False)
    try:
        assert out.returncode != 0 and "cannot read the sign-in provider's" in out.stderr, out.stderr[-2000:]
    finally:
        hub.settings = None
        hub.restart()
