from django.http import Http404


def organization_for_caller(*, principal, organization_id):
    """A token only ever sees its own organization; any other id is 404, never 403."""
    if str(principal.organization.pk) != str(organization_id):
        raise Http404("No such organization.")
    return principal.organization
