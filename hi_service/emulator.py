"""A local stand-in for the HI Service's provider-individual search, for `make run` and the tests.

At start it makes a throwaway CA with ``cryptography`` and, from it, the server's TLS certificate
(127.0.0.1 and localhost), a TLS client pair and a signing pair for the platform, and the
emulator's own reply-signing pair; it writes the PEMs into its directory. It serves HTTPS that
requires a client certificate from that CA, checks each request's XML Signature (over the body
and every header) and its headers, refuses an unsigned or altered request with a SOAP fault whose
detail is a ``serviceMessages``, as the real service does, and answers from the fixture
practitioners of :mod:`hi_service.fixtures`, its replies signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PATH = "/ProviderSearchForProviderIndividual/5.0.0"


@dataclass(frozen=True)
class EmulatorFiles:
    """PEM paths written at start."""

    ca_cert: Path
    client_cert: Path
    client_key: Path
    signing_cert: Path
    signing_key: Path
    reply_signing_cert: Path
    env_file: Path


class HIServiceEmulator:
    """The emulator on ``host``:``port`` (0: a free port), its files under ``directory``.

    ``slow_seconds``: how long the ``slow`` fixture takes to answer."""

    def __init__(self, *, directory: Path | str, host: str = "127.0.0.1", port: int = 0,
                 slow_seconds: float = 5.0) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The endpoint, ``https://127.0.0.1:<port>/ProviderSearchForProviderIndividual/5.0.0``."""
        raise NotImplementedError

    def start(self) -> str:
        """Make the certificates (first start only), serve in a thread; return :attr:`url`."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def settings(self) -> dict[str, str]:
        """The ``HI_*`` settings (as environment strings) that point the client at this emulator."""
        raise NotImplementedError

    def issue_client_certificate(self, *, name: str, expired: bool = False) -> tuple[Path, Path]:
        """Another client pair from the emulator's CA (``expired``: its validity ended yesterday)."""
        raise NotImplementedError
