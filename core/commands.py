"""What every operator command shares (knows no app)."""

import contextlib
import logging

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

# The Cognito client logs each call at INFO for the server's and the worker's logs.
COGNITO_LOGGER = "accounts.cognito"


class OperatorCommand(BaseCommand):
    """A command an operator runs at a terminal: its own output says what happened, so the Cognito
    client's per-call INFO lines stay off stderr (warnings and errors still show; -v 2 shows all)."""

    def execute(self, *args, **options):
        quiet = options.get("verbosity", 1) < 2
        with _cognito_logs_at(logging.WARNING) if quiet else contextlib.nullcontext():
            return super().execute(*args, **options)


@contextlib.contextmanager
def _cognito_logs_at(level: int):
    logger = logging.getLogger(COGNITO_LOGGER)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def invalid_fields(error: ValidationError) -> CommandError:
    """A model's refusal as one line for the terminal: `field: message; field: message`."""
    return CommandError("; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()))
