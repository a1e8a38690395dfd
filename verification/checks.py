"""`check --deploy` warnings: the register not configured, verification not required, a
certificate that expires within 30 days (or has expired)."""

from datetime import timedelta

from django.conf import settings
from django.core import checks
from django.utils import timezone

from hi_service import client as hi_client

EXPIRY_WARNING_DAYS = 30


def certificate_warnings(now=None) -> list[str]:
    """One sentence per configured HI Service certificate that expires within 30 days or has expired
    (the admin's index shows the same)."""
    now = now or timezone.now()
    sentences = []
    try:
        expiries = hi_client.certificate_expiry()
    except Exception:  # an unreadable certificate is hi_service's to report; the check never crashes
        return sentences
    for label, not_after in expiries:
        if not_after <= now:
            sentences.append(
                f"{label} expired on {not_after:%Y-%m-%d}: every register check ends `error` until it is renewed."
            )
        elif not_after - now <= timedelta(days=EXPIRY_WARNING_DAYS):
            sentences.append(f"{label} expires on {not_after:%Y-%m-%d} (within {EXPIRY_WARNING_DAYS} days): renew it.")
    return sentences


def hi_service_deploy_checks(app_configs=None, **kwargs):
    found = []
    if not hi_client.configured():
        found.append(
            checks.Warning(
                "HI_SERVICE_URL is not set: the HI Service is never asked, every provider stays "
                "`unverified` and nobody can prescribe.",
                hint="Set HI_SERVICE_URL and the HI_SERVICE_* certificates (docs: connecting to the HI Service).",
                id="verification.W001",
            )
        )
    if not settings.HI_VERIFICATION_REQUIRED:
        found.append(
            checks.Warning(
                "HI_VERIFICATION_REQUIRED is off: providers whose details the register has not verified can prescribe.",
                hint="Turn it on once the first verification outcomes have been reviewed.",
                id="verification.W002",
            )
        )
    for sentence in certificate_warnings():
        found.append(checks.Warning(sentence, id="verification.W003"))
    return found


def register():
    checks.register(hi_service_deploy_checks, checks.Tags.security, deploy=True)
