"""Keep credentials out of the logs, whatever logger wrote them and whatever level it runs at.

Where they come from: a query string (`?access_token=...`, `?client_secret=...`) in a request line
that django.server (runserver) or an access log writes; an Authorization header in a message or a
repr of request.META; oauthlib, which logs the issued token response (`{'access_token': ...}`) and
grants at DEBUG. `RedactCredentials` sits on every handler of LOGGING (so every record that
reaches an output is redacted, whichever logger it came from) and on the oauthlib and
django-oauth-toolkit loggers themselves (so any other handler, a test's capture included, gets
those records redacted too).
"""

import importlib.util
import logging
import re
from pathlib import Path

# `_` may arrive percent-encoded in a query string (`client%5Fsecret=`).
_U = r"(?:_|%5[fF])"
_KEYS = "|".join(
    key.replace("_", _U)
    for key in (
        "access_token", "refresh_token", "id_token", "client_secret", "password", "token", "code_verifier",
        "secret", "api_key",
    )
)
# A quoted value runs to its closing quote (a password may hold spaces); a bare one to the next
# separator of a query string, a header list or a repr (not `;`: a secret may contain one). A key
# may carry PHP-style brackets (`access_token[]=`).
_VALUE = r"""(?:'[^'\r\n]*'|"[^"\r\n]*"|[^'"&\s,}]+)"""
# key=value (query strings, form bodies), 'key': 'value' and "key": "value" (reprs, JSON), and an
# authorization code only as a query or form parameter (`status code=200` stays readable).
_CREDENTIAL = re.compile(
    rf"""(?P<key>(?:\b['"]?(?:{_KEYS})|(?<=[?&])code)(?:\[\]|%5[bB]%5[dD])?['"]?\s*[:=]\s*){_VALUE}""",
    re.IGNORECASE,
)
# `Authorization: Bearer x`, `'HTTP_AUTHORIZATION': 'Basic x'`: the whole value, scheme included.
_AUTHORIZATION = re.compile(
    r"""(?P<key>\b(?:HTTP_)?(?:PROXY_)?AUTHORIZATION['"]?\s*[:=]\s*)(?:'[^'\r\n]*'|"[^"\r\n]*"|[^\r\n,}]+)""",
    re.IGNORECASE,
)
# A credential after its scheme anywhere else in a line.
_SCHEME = re.compile(r"""(?P<key>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=%-]+""", re.IGNORECASE)

REDACTED = "[redacted]"


def _replace(match: re.Match) -> str:
    value = match.group(0)[len(match.group("key")) :]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    for pattern in (_AUTHORIZATION, _CREDENTIAL, _SCHEME):
        text = pattern.sub(_replace, text)
    return text


class RedactCredentials(logging.Filter):
    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        # A traceback's text can quote a URL or a header too; format it once here, redacted (the
        # formatter then uses exc_text as it is).
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
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
