"""Keep credentials out of the logs, whatever level a logger is turned up to.

oauthlib logs the issued token response (`{'access_token': ...}`) and grants at DEBUG; anyone
running with DJANGO_LOG_LEVEL=DEBUG would write live bearer tokens to the log. The filter sits on
the emitting loggers themselves (not on a handler), so every handler, including a test's capture,
gets the redacted record.
"""

import importlib.util
import logging
import re
from pathlib import Path

_CREDENTIAL = re.compile(
    r"""(?P<key>['"]?(?:access_token|refresh_token|id_token|client_secret|password|code|code_verifier)['"]?"""
    r"""\s*[:=]\s*)(?P<quote>['"]?)[^'"&\s,}]+""",
    re.IGNORECASE,
)


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _CREDENTIAL.sub(r"\g<key>\g<quote>[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def credential_logger_names() -> list[str]:
    """Every module logger of oauthlib and django-oauth-toolkit (each logs under its module name).
    Found from the files, without importing anything: this runs while settings load."""
    names = []
    for package_name in ("oauthlib", "oauth2_provider"):
        spec = importlib.util.find_spec(package_name)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts or "tests" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join((package_name, *parts)))
    return sorted(set(names))
