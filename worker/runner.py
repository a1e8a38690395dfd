"""The worker's loop: run each job when due, survive the database going away, stop on request.

Database errors (the server restarting, a failover, the network) are not fatal: the worker closes
its connections, logs the error's class (never its text, which can carry the connection string or
row values), waits with backoff (1 s doubling to 30 s) and carries on; the first query that works
again resets the backoff. Rows a job had claimed when the database went away come back when their
lease lapses. Any other exception from a job is logged the same way and only delays that job.
"""

import contextlib
import logging
import threading
import time

from django.db import Error as DatabaseError
from django.db import connections

from worker.jobs import JOBS, MAIN_LANE

logger = logging.getLogger(__name__)

BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0
_DATABASE = "database"  # the backoff every job shares while the database is away


class Worker:
    def __init__(self, jobs=JOBS, *, stop: threading.Event | None = None, clock=time.monotonic):
        self.jobs = tuple(jobs)
        self.stop = stop or threading.Event()
        self.clock = clock
        self.handled = dict.fromkeys((job.name for job in self.jobs), 0)
        self._due = dict.fromkeys((job.name for job in self.jobs), 0.0)
        self._backoff = {job.name: 0.0 for job in self.jobs} | {_DATABASE: 0.0}
        self._database_down_since = None

    def run(self, *, once: bool = False) -> None:
        """Until `stop` is set (or, with once, one pass of every job)."""
        names = ", ".join(f"{job.name} (every {job.interval:g}s)" for job in self.jobs)
        logger.info("Worker started: %s", names)
        while not self.stop.is_set():
            for job in self.jobs:
                if self.stop.is_set():
                    break
                if once or self.clock() >= self._due[job.name]:
                    self._run(job)
            if once:
                break
            self.stop.wait(max(0.0, min(self._due.values()) - self.clock()))
        totals = " ".join(f"{name}={count}" for name, count in self.handled.items())
        logger.info("Worker stopped: %s", totals)

    def _run(self, job) -> None:
        _drop_stale_connections()
        try:
            handled = job.run(self.stop.is_set)
        except DatabaseError as exc:
            self._database_failed(job, exc)
            return
        except Exception as exc:  # a bug in one job must not stop the others
            delay = self._next_backoff(job.name)
            logger.error("Job %s failed (%s); retrying it in %.0fs", job.name, type(exc).__name__, delay)
            self._due[job.name] = self.clock() + delay
            return
        if self._database_down_since is not None:
            logger.warning("Database reachable again after %.0fs", self.clock() - self._database_down_since)
            self._database_down_since = None
        self._backoff[job.name] = self._backoff[_DATABASE] = 0.0
        self.handled[job.name] += handled
        if handled:
            logger.info("Job %s handled %d", job.name, handled)
        self._due[job.name] = self.clock() + (0.0 if handled else job.interval)

    def _database_failed(self, job, exc) -> None:
        with contextlib.suppress(Exception):
            connections.close_all()
        delay = self._next_backoff(_DATABASE)
        if self._database_down_since is None:
            self._database_down_since = self.clock()
        logger.warning(
            "Database unavailable during job %s (%s); retrying in %.0fs", job.name, type(exc).__name__, delay
        )
        # The database is shared by every job: all of them wait.
        for name in self._due:
            self._due[name] = max(self._due[name], self.clock() + delay)

    def _next_backoff(self, name: str) -> float:
        previous = self._backoff[name]
        delay = BACKOFF_MIN if not previous else min(BACKOFF_MAX, previous * 2)
        self._backoff[name] = delay
        return delay


def run_lanes(jobs=JOBS, *, stop: threading.Event, once: bool = False) -> dict[str, int]:
    """Each lane's jobs in a Worker of its own: the main lane in this thread (signals reach it),
    every other lane in a thread with its own database connection. Returns what each job handled."""
    lanes: dict[str, list] = {}
    for job in jobs:
        lanes.setdefault(job.lane, []).append(job)
    workers = {lane: Worker(lane_jobs, stop=stop) for lane, lane_jobs in lanes.items()}
    threads = [
        threading.Thread(target=_lane, args=(worker, once), name=f"worker-{lane}", daemon=True)
        for lane, worker in workers.items() if lane != MAIN_LANE
    ]
    for thread in threads:
        thread.start()
    try:
        if MAIN_LANE in workers:
            workers[MAIN_LANE].run(once=once)
    finally:
        if not once:
            stop.set()  # the main lane ended (stop, or an error): so do the others
        for thread in threads:
            thread.join()
    return {name: count for worker in workers.values() for name, count in worker.handled.items()}


def _lane(worker: Worker, once: bool) -> None:
    try:
        worker.run(once=once)
    finally:
        connections.close_all()


def _drop_stale_connections() -> None:
    """Close a connection the database closed, or one past CONN_MAX_AGE (Django's
    close_old_connections, minus closing one held inside a transaction: the tests run in one)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
