"""Waiting in tests: poll a condition until a deadline, never sleep a fixed time and hope.

A fixed sleep is either too short on a loaded machine (the test flakes) or too long on a quiet one
(the suite crawls); polling returns as soon as the condition holds and fails with what it waited for.
"""

import time


def wait_until(predicate, timeout: float = 10.0, *, interval: float = 0.05, what: str = "the condition"):
    """Call predicate() until it returns something truthy (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stays(predicate, duration: float, *, interval: float = 0.05) -> bool:
    """Whether predicate() holds on every poll for `duration` seconds: for "nothing happens" checks,
    which can only be bounded by time (a short bound: the condition is polled, not assumed)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return bool(predicate())
