"""The admin's lists at a laptop's 1366 px: every column of the users' and the audit events' lists
is in view beside the filter sidebar, none cut off under it. Screenshots go to test-artifacts/admin/."""

import pytest

from audit.context import Actor
from tests.admin.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]

WIDTH = 1366


@pytest.fixture
def page_at_1366(live_server, settings, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 800}, base_url=live_server.url)
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


# Every column's header and cells, measured in the page: the rightmost edge any of them reaches,
# the filter sidebar's left edge, and the viewport's width.
_MEASURE = """() => {
  const table = document.querySelector('#result_list');
  const filter = document.querySelector('#changelist-filter');
  const cells = [...table.querySelectorAll('th, td')];
  const right = Math.max(...cells.map(c => c.getBoundingClientRect().right));
  const last = [...table.querySelectorAll('thead th')].pop();
  return {
    right,
    lastColumn: last.textContent.trim(),
    lastColumnRight: last.getBoundingClientRect().right,
    filterLeft: filter ? filter.getBoundingClientRect().left : null,
    viewport: document.documentElement.clientWidth,
  };
}"""


def _assert_every_column_in_view(page, name, expected_last_column):
    page.evaluate("window.scrollTo(0, 0)")
    measured = page.evaluate(_MEASURE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{WIDTH}.png"))
    assert measured["lastColumn"].lower().startswith(expected_last_column), measured
    assert measured["filterLeft"] is not None, measured  # the sidebar is there, beside the list
    assert measured["right"] <= measured["filterLeft"] + 0.5, measured  # nothing under the sidebar
    assert measured["right"] <= measured["viewport"], measured


def test_the_user_and_audit_lists_fit_beside_the_filters_at_1366px(page_at_1366, organization, django_user_model):
    from accounts import services
    from core.request_id import reset_request_id, set_request_id

    token = set_request_id("pms-7f3c2a9e-51b4-4d0e-9a61-0c5e2b8d4f17")  # as long as a PMS's own ids get
    staff = django_user_model.objects.create_superuser(
        email="sam@platform.example", password=PASSWORD, given_name="Sam", family_name="Staff"
    )
    ben = services.user_create(
        organization=organization, actor=Actor.system("seed"), email="benjamin.alexander-smithson@practice.example",
        given_name="Benjamin", family_name="Alexander-Smithson", roles=["rx_reader", "admin"],
        partner_user_id="pms-000000042",
    )
    services.user_disable(user=ben, actor=Actor.staff(staff), reason="left the practice")
    reset_request_id(token)

    page = page_at_1366
    page.goto("/admin/")
    page.fill("#id_username", staff.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    failures = []
    for url, name, last in (("/admin/accounts/user/", "users-list", "cognito"),
                            ("/admin/audit/auditevent/", "audit-list", "request")):
        page.goto(url)
        try:
            _assert_every_column_in_view(page, name, last)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, failures
