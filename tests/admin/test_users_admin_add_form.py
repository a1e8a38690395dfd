"""The users' admin's add form: with one active practice it has it chosen already; with several the
choice stays open, and a practice named in the address wins."""

import re

import pytest

from organizations.models import Organization

pytestmark = pytest.mark.django_db


def _chosen_organization(response):
    select = re.search(r'<select name="organization".*?</select>', response.text, flags=re.S).group(0)
    return [value for value in re.findall(r"<option value=\"([^\"]*)\" selected>", select) if value]  # "" is the blank


def test_the_add_form_preselects_the_only_active_organization(staff_client, organization):
    response = staff_client.get("/admin/accounts/user/add/")
    assert _chosen_organization(response) == [str(organization.pk)]


def test_the_add_form_leaves_the_choice_open_with_several_organizations(staff_client, organization,
                                                                         other_organization):
    assert _chosen_organization(staff_client.get("/admin/accounts/user/add/")) == []

    # An inactive practice is no choice: the one active practice is preselected again.
    Organization.objects.filter(pk=other_organization.pk).update(is_active=False)
    assert _chosen_organization(staff_client.get("/admin/accounts/user/add/")) == [str(organization.pk)]


def test_an_organization_in_the_address_wins(staff_client, organization, other_organization):
    Organization.objects.filter(pk=other_organization.pk).update(is_active=False)
    response = staff_client.get(f"/admin/accounts/user/add/?organization={other_organization.pk}")
    assert _chosen_organization(response) == [str(other_organization.pk)]
