"""A switch that is on except inside `with switch.off():` blocks, per thread and per task.

Bulk writers (an import, a provider sweep) turn a change's inline after-commit work off: one round
trip per row would dominate the run, and the outbox rows they leave are the workers' job anyway."""

import contextlib
import contextvars


class ContextSwitch:
    def __init__(self, name: str):
        self._off: contextvars.ContextVar[bool] = contextvars.ContextVar(name, default=False)

    @contextlib.contextmanager
    def off(self):
        token = self._off.set(True)
        try:
            yield
        finally:
            self._off.reset(token)

    def is_off(self) -> bool:
        return self._off.get()
