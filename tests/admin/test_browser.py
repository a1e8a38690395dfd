"""The operator's journey in a real browser (Debian's headless Chromium) against a live server:
log in, find a user, make them a provider, get the HPI-I wrong and then right, disable them
through the confirmation page, and read the audit trail. Screenshots of each step go to
test-artifacts/admin/ (kept out of git) for a person to look at."""

from pathlib import Path

import pytest

from accounts.models import User
from audit.models import AuditEvent
from tests.admin.conftest import BAD_HPII, VALID_HPII

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a long staff passphrase"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser_page(live_server, settings, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Plain HTTP on loopback: cookies can't insist on HTTPS here.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still plain sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900}, base_url=live_server.url)
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def _shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_operator_makes_a_provider_then_disables_them(browser_page, organization, django_user_model):
    from accounts.services import user_create
    from audit.context import Actor

    staff = django_user_model.objects.create_superuser(
        email="sam@platform.example", password=PASSWORD, given_name="Sam", family_name="Staff"
    )
    ben = user_create(
        organization=organization,
        actor=Actor.system("seed"),
        email="ben.smith@practice.example",
        given_name="Ben",
        family_name="Smith",
        roles=["rx_reader"],
        partner_user_id="pms-42",
    )
    from accounts.services import user_roles_set

    priya = user_create(
        organization=organization,
        actor=Actor.system("seed"),
        email="priya.patel@practice.example",
        given_name="Priya",
        family_name="Patel",
        roles=["rx_reader"],
        provider_details={"sex": "F", "qualifications": "MBBS"},
    )
    user_roles_set(user=priya, actor=Actor.system("seed"), roles=["provider"])
    page = browser_page

    # 1. Log in.
    page.goto("/admin/")
    page.fill("#id_username", staff.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#needs-attention")
    _shot(page, "01-index")

    # 1b. Adding a user: the only practice is already chosen.
    page.goto("/admin/accounts/user/add/")
    assert page.locator("#id_organization").input_value() == str(organization.pk)
    _shot(page, "01b-add-user-organization-preselected")

    # 2. Find the user by their partner id.
    page.goto("/admin/accounts/user/")
    page.fill("#searchbar", "pms-42")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1
    _shot(page, "02-search")
    page.click("#result_list tbody tr th a")
    page.wait_for_selector("#set-roles-link")

    # 3. Upgrade to provider.
    page.click("#set-roles-link")
    page.uncheck("input[name=roles][value=rx_reader]")
    page.check("input[name=roles][value=provider]")
    _shot(page, "03-set-roles")
    page.click("input[name=apply]")
    page.wait_for_selector(".messagelist .success")
    assert User.objects.get(pk=ben.pk).roles == ["provider"]

    # 3b. A provider without details: the page and the list say what is missing to prescribe.
    description = page.locator("fieldset:has(#id_provider_hpii_number) .description")
    assert "still missing" in description.inner_text()
    assert "no provider details" in page.locator(".field-can_prescribe_display").inner_text()
    _shot(page, "03b-provider-details-missing")
    page.goto("/admin/accounts/user/?can_prescribe=incomplete")
    missing = page.locator("#result_list .missing-provider-fields")
    assert sorted(missing.all_inner_texts()) == [
        "missing: date of birth, HPI-I, prescriber type, prescriber number",
        "no provider details",
    ]
    ben_missing = page.locator("#result_list tr:has-text('ben.smith') .missing-provider-fields")
    assert "HPI-I" in ben_missing.get_attribute("title")
    ben_missing.hover()
    _shot(page, "03c-list-provider-details-missing")
    page.click("#result_list tbody tr th a:has-text('ben.smith')")
    page.wait_for_selector("#set-roles-link")

    # 4. Provider details with a bad HPI-I: the field says what is wrong.
    page.fill("#id_provider_date_of_birth", "1975-12-25")
    page.select_option("#id_provider_sex", "M")
    page.fill("#id_provider_hpii_number", BAD_HPII)
    page.select_option("#id_provider_prescriber_type", "M")
    page.fill("#id_provider_prescriber_number", "1234567")
    page.fill("#id_provider_qualifications", "MBBS")
    page.click("input[name=_continue]")
    error = page.locator(".field-provider_hpii_number .errorlist")
    error.wait_for()
    assert "check digit" in error.inner_text()
    error.scroll_into_view_if_needed()
    _shot(page, "04-bad-hpii")
    assert not hasattr(User.objects.get(pk=ben.pk), "provider_details")

    # 5. Fix it and save.
    page.fill("#id_provider_hpii_number", VALID_HPII)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    _shot(page, "05-provider-saved")
    ben = User.objects.select_related("provider_details").get(pk=ben.pk)
    assert ben.can_prescribe and ben.provider_details.hpii_number == VALID_HPII

    # 6. Disable through the confirmation page, which says what will happen.
    page.click("#disable-link")
    consequences = page.locator("#disable-consequences").inner_text()
    assert "sign it out everywhere" in consequences and "member" in consequences
    page.fill("#id_reason", "Left the practice")
    _shot(page, "06-disable-confirmation")
    page.click("input[name=confirm]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator(".field-disable_reason").inner_text().endswith("Left the practice")
    _shot(page, "07-disabled")
    ben.refresh_from_db()
    assert ben.is_disabled and ben.roles == ["member"]

    # 7. The audit trail names the staff member for each change.
    page.click("#audit-link")
    page.wait_for_selector("#result_list")
    _shot(page, "08-audit-trail")
    listed = page.locator("#result_list tbody").inner_text()
    for action in ("user.created", "user.roles_changed", "provider_details.updated", "user.disabled"):
        assert action in listed
    assert f"staff: {staff.email}" in listed
    staff_actions = set(
        AuditEvent.objects.filter(user=ben, actor_type="staff", actor_id=str(staff.pk)).values_list("action", flat=True)
    )
    assert staff_actions == {"user.roles_changed", "provider_details.updated", "user.disabled"}
