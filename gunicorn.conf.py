"""How `gunicorn config.wsgi:application`, run from the project root, serves the app.

gunicorn reads this file by itself (`./gunicorn.conf.py` is its default config file); command-line
flags still override it. See docs/operators.md, "Serving and sizing".

Sizing. A write waits on Cognito after its commit (several calls, each one round trip to AWS):
with one sync worker a slow Cognito held up every other request behind it. So: `gthread` workers,
one process per CPU (the CPU-bound part: Python, JSON) and threads in each for the requests that
are only waiting (on Cognito, on PostgreSQL). 2 CPUs x 32 threads = 64 requests in flight: more
threads than slow requests, so a read finds a free thread while writes wait on Cognito (bench, 32
concurrent creates with Cognito 80 ms slower per call: with 16 threads a read's p99 was 24x its
idle p99, the reads queued for a thread). Threads alone don't keep reads fast: the writes' CPU
does (one GIL a process), so a process runs only API_CONCURRENT_WRITES writes at once
(core/write_gate.py); the others wait for their turn without using CPU.
`WEB_CONCURRENCY` (processes) and `GUNICORN_THREADS` (threads per process) override the sizing.

Database connections: each thread keeps its own connection (CONN_MAX_AGE), so one server holds
up to processes x threads connections; PostgreSQL's `max_connections` must cover every server's
plus the workers' (`run_worker`, one each) and the admin's headroom.
"""

import os
import sys

from config.serving import int_env, web_processes

worker_class = "gthread"
workers = web_processes()
threads = int_env("GUNICORN_THREADS", 32)

# A worker whose main loop is silent this long is killed and replaced. With gthread the main loop
# keeps beating while its threads wait, so this catches a wedged process, not a slow request: a
# request's own waits are bounded by the app (Cognito client timeouts and the inline-sync budget,
# 503 when the database can't be reached).
timeout = int_env("GUNICORN_TIMEOUT", 30)
# On SIGTERM (a deploy, a scale-in): stop accepting, let requests in flight finish for this long.
graceful_timeout = int_env("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive connections are parked in the worker's poller, not on a thread. Behind a load
# balancer, set it above the balancer's idle timeout (AWS ALB: 60 s) so the app never closes a
# connection the balancer is about to reuse.
keepalive = int_env("GUNICORN_KEEPALIVE", 5)
# Off by default: memory stays flat (bench: peak RSS about 120 MB a process), and a recycled process
# costs a second of CPU for Django's start, a latency spike on a small machine. GUNICORN_MAX_REQUESTS
# turns it on (jittered by a tenth, so the processes don't all restart at once).
max_requests = int_env("GUNICORN_MAX_REQUESTS", 0, minimum=0)
max_requests_jitter = max_requests // 10

# The heartbeat file on tmpfs: a heartbeat on a slow disk can look like a wedged worker (gunicorn
# makes the file with mkstemp and unlinks it at once).
_TMPFS = "/dev/shm"  # noqa: S108
if os.path.isdir(_TMPFS):
    worker_tmp_dir = _TMPFS

# gunicorn 27's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which
# two servers on one machine would share; nothing here uses it.
control_socket_disable = True

# Logs to stdout/stderr, for the platform to collect. The access log never carries a credential:
# the path without its query string (%(U)s, not %(r)s, whose query string could hold
# `access_token`, `client_secret`, `password` or `token`), no Referer (a URL with its query
# string), no %(u)s (the Basic-auth user name, i.e. a client id) and no request header. The
# request id ties a line to the app's own logs and to the caller's problem responses.
accesslog = "-"
errorlog = "-"
# The error log quotes the request line of a request gunicorn can't parse: redacted like every log.
logger_class = "config.gunicorn_logging.RedactingLogger"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'


def post_worker_init(worker):
    # Everything loaded so far (Django, the apps, their modules: about 200k objects) lives as long
    # as the process. Frozen, the collector stops scanning it: on the serving bench a full
    # collection paused every thread of a process for up to 0.41 s, and 0.12 s once frozen.
    import gc

    gc.freeze()


def on_starting(server):
    # Every rate limit counts in Django's default cache: with DEBUG off, several processes over a
    # per-process cache would each have their own budget (core/limits.py). Checked here, with the
    # process count as finally configured (a --workers flag included), before any worker starts.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    from core.limits import per_process_limits_refusal

    refusal = per_process_limits_refusal(
        debug=settings.DEBUG, processes=server.cfg.workers, cache_backend=settings.CACHES["default"]["BACKEND"]
    )
    if refusal:
        print(refusal, file=sys.stderr, flush=True)
        sys.exit(1)
