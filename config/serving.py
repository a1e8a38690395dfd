"""How many server processes `gunicorn config.wsgi:application` runs, read from the environment.

gunicorn.conf.py sizes gunicorn with these, and the deploy check (core/limits.py) reads the same
number. Pure Python: gunicorn's master imports it before Django is set up."""

import os


def int_env(name: str, default: int, minimum: int = 1) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    number = int(value)  # a typo stops the server at start, rather than serving with a guess
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {number}")
    return number


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use (containers, taskset)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def web_processes() -> int:
    """gunicorn's processes: WEB_CONCURRENCY, else one per CPU and at least 2."""
    return int_env("WEB_CONCURRENCY", max(2, cpu_count()))
