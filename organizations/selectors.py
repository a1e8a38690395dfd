import uuid

from django.http import Http404


def organization_for_caller(*, principal, organization_id):
    """A token only ever sees its own organization; any other id is 404, never 403."""
    try:
        same = uuid.UUID(str(organization_id)) == principal.organization.pk
    except ValueError:
        same = False
    if not same:
        raise Http404("No such organization.")
    return principal.organization
