"""What /healthz says beside the database: details the apps register in their AppConfig.ready()
(config knows no app). A detail never changes the status code: a load balancer takes a web process
out of rotation for its database, not for a worker elsewhere."""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

_DETAILS: dict[str, Callable[[], dict]] = {}


def register_health_detail(name: str, provider: Callable[[], dict]) -> None:
    _DETAILS[name] = provider


def health_details() -> dict:
    details = {}
    for name, provider in _DETAILS.items():
        try:
            details[name] = provider()
        except Exception as exc:  # a detail must never turn the health check into a 500
            logger.warning("Health detail %s failed (%s)", name, type(exc).__name__)
            details[name] = {"status": "unknown"}
    return details
