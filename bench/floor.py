"""The benchmark's floor: the cheapest useful request this deployment can serve.

A plain Django view (no DRF, no authentication) that runs one indexed query (a user by primary
key, as values()) and returns JSON. It goes through the same middleware, database connection and
gunicorn workers as the API, so the API's ratio to it measures what the API adds on top of its
stack. Mounted only by bench/urls.py (DJANGO_SETTINGS_MODULE=bench.settings); never in a real deployment.
"""

from django.http import JsonResponse

from accounts.models import User

_FIELDS = ("id", "email", "given_name", "family_name", "status", "created_at")


def floor(request):
    user_id = request.GET.get("id")
    try:
        row = User.objects.filter(pk=user_id).values(*_FIELDS).first() if user_id else None
    except Exception:  # a malformed id: same shape as not found
        row = None
    if row is None:
        return JsonResponse({"found": False}, status=404)
    return JsonResponse({"found": True, **row})
