"""import_users on the terminal: the first rejections with line, field and message, how many more are
in the report, and identifiers, dates of birth and phones masked (the report keeps them)."""

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db

HEADER = ["email", "given_name", "family_name", "phone", "date_of_birth", "hpii_number", "access_roles"]
BAD_HPII = "8003614900000001"


def import_rows(tmp_path, organization, rows):
    path = tmp_path / "staff.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_users", str(path), "--organization", str(organization.pk), stdout=out,
                     stderr=io.StringIO())
    assert raised.value.returncode == 2
    return out.getvalue(), tmp_path / "staff.csv.rejected.csv"


def test_import_prints_the_first_rejections_with_line_field_and_message(tmp_path, organization):
    rows = [
        ["ok@practice.example", "Ok", "Fine", "", "", "", ""],  # line 2
        ["a@practice.example", "", "Smith", "", "", "", ""],  # line 3: no given name
        ["b@practice.example", "B", "Role", "", "", "", "owner"],  # line 4
    ]

    out, report = import_rows(tmp_path, organization, rows)

    assert "Rejected rows (2 problems):" in out
    assert "  line 3, given_name (required): This field is required." in out
    assert "  line 4, access_roles (invalid_role): Unknown or unassignable role(s): owner." in out
    assert f"(also in {report})" in out
    assert "more, see" not in out


def test_import_shows_five_then_says_how_many_more_are_in_the_report(tmp_path, organization):
    rows = [[f"u{n}@practice.example", "", "Smith", "", "", "", ""] for n in range(8)]  # lines 2-9

    out, report = import_rows(tmp_path, organization, rows)

    shown = [line for line in out.splitlines() if line.startswith("  line ")]
    assert [line.split(",")[0] for line in shown] == ["  line 2", "  line 3", "  line 4", "  line 5", "  line 6"]
    assert f"  ... and 3 more, see {report}" in out


def test_the_terminal_masks_identifiers_dates_of_birth_and_phones_the_report_keeps_them(tmp_path, organization):
    rows = [
        ["h@practice.example", "H", "Hpii", "", "", BAD_HPII, "rx_reader"],  # line 2
        ["d@practice.example", "D", "Born", "", "1850-07-31", "", ""],  # line 3
        ["p@practice.example", "P", "Phone", "+1 212 555 0100", "", "", ""],  # line 4
    ]

    out, report = import_rows(tmp_path, organization, rows)

    assert "line 2, hpii_number (invalid): HPI-I [value] fails its check digit: the last digit should be 9." in out
    assert "line 3, date_of_birth" in out and "line 4, phone" in out
    for value in (BAD_HPII, "1850-07-31", "+1 212 555 0100"):
        assert value not in out
    assert "e.g. 0412 345 678" in out  # the message's own example is not a value of the row
    text = report.read_text(encoding="utf-8")
    assert BAD_HPII in text and "1850-07-31" in text and "+1 212 555 0100" in text
