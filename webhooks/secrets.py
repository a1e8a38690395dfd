"""Signing secrets: generated here, encrypted at rest, decrypted only to sign.

The signer needs the raw secret (HMAC), so it can't be hashed. It is stored encrypted with
Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from SECRET_KEY, so a database dump alone
yields no secret. Changing SECRET_KEY makes stored secrets unreadable: rotate every endpoint's
secret afterwards (admin or API)."""

import base64
import hashlib
import secrets as _random

from cryptography.fernet import Fernet
from django.conf import settings

PREFIX = "whsec_"


def generate() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(_random.token_bytes(32)).decode("ascii")


def _fernet() -> Fernet:
    key = hashlib.sha256(b"webhooks.secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode("ascii")).decode("ascii")


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode("ascii")).decode("ascii")
