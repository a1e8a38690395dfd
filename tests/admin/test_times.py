"""One rule for times people read: the admin (inputs, lists, read-only fields) and operator commands
in TIME_ZONE, the zone named every time; the API in UTC."""

import datetime as dt
import io
import re
import zoneinfo

import pytest
from django.core.management import call_command

from accounts import services
from accounts.models import User
from audit.context import Actor

from .conftest import change_url, user_form_data

pytestmark = pytest.mark.django_db

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
ZONE_SHOWN = re.compile(r"\d{1,2}:\d\d AE[DS]T")


def test_the_expiry_input_names_the_zone_it_is_read_in_and_is_read_in_it(staff_client, ben, api, users_url):
    page = staff_client.get(change_url(ben)).text
    assert "In Australia/Sydney time (now AE" in page
    assert "(UTC)" not in page
    # Django's "You are N hours behind server time" note is hidden: the help text names the zone.
    assert ".timezonewarning { display: none; }" in page

    year = dt.date.today().year + 1
    response = staff_client.post(
        change_url(ben),
        user_form_data(ben, access_expires_at_0=f"{year}-01-15", access_expires_at_1="17:00:00"),
    )
    assert response.status_code == 302, response.content
    stored = User.objects.get(pk=ben.pk).access_expires_at
    assert stored == dt.datetime(year, 1, 15, 17, 0, tzinfo=SYDNEY)
    # The API says the same moment in UTC (AEDT is UTC+11 in January).
    assert api.get(f"{users_url}/{ben.pk}").json()["access_expires_at"] == f"{year}-01-15T06:00:00+00:00"
    # The page shows what was entered, the zone named beside it.
    assert 'value="17:00:00"' in staff_client.get(change_url(ben)).text


def test_lists_and_read_only_times_name_the_zone(staff_client, ben):
    services.user_disable(user=ben, actor=Actor.system("test"))
    audit_list = staff_client.get("/admin/audit/auditevent/").text
    assert ZONE_SHOWN.search(audit_list), audit_list[:3000]
    user_page = staff_client.get(change_url(ben)).text  # disabled_at, read-only
    assert ZONE_SHOWN.search(user_page)


def test_operator_commands_say_times_in_the_same_zone(ben, organization):
    services.user_disable(user=ben, actor=Actor.system("test"))
    out = io.StringIO()
    call_command("disable_user", str(ben.pk), "--organization", str(organization.pk), stdout=out)
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d AE[DS]T\)", out.getvalue()), out.getvalue()


def test_log_lines_carry_the_zone_offset(settings):
    import logging

    plain = settings.LOGGING["formatters"]["plain"]
    formatter = logging.Formatter(plain["format"], datefmt=plain["datefmt"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    line = formatter.format(record)
    # Django sets the process's TZ to TIME_ZONE: Sydney is +10:00 or +11:00.
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+1[01]00 INFO x hello$", line), line


def test_view_only_staff_read_the_expiry_with_the_same_zone(viewer_client, ben):
    page = viewer_client.get(change_url(ben)).text
    assert "In Australia/Sydney time (now AE" in page
    assert "(UTC)" not in page
