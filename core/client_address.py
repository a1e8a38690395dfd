"""The client's address, as the rate limits count it.

Behind N trusted proxies (`DJANGO_TRUSTED_PROXY_COUNT`), the client is the address the outermost
of them saw: the N-th entry from the right of X-Forwarded-For. Entries further left were written
by the client itself and can say anything. With no trusted proxy (the default) the header is
ignored and the socket's address is the client.
"""

from django.conf import settings


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        # Fewer hops than proxies: the request did not come through all of them (or a proxy
        # dropped the header); the nearest address we have is the safest answer.
        return forwarded[0] if forwarded else remote
    return forwarded[-proxies]
