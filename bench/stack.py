"""A throwaway deployment on loopback for the reliability scripts (bench/soak.py, bench/scale_out.py)
and their tests: a PostgreSQL database, moto's Cognito server, gunicorn app servers and
`sync_cognito --loop` workers, each a real subprocess. Only the standard library and psycopg."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
SCOPES = "read:users create:user update:user delete:user read:audit"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urllib.parse.urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)


class Stack:
    """Start pieces with the start_* methods; close() stops everything this stack started."""

    def __init__(self, database_url: str, *, log_dir: Path, extra_env: dict | None = None):
        self.database_url = database_url
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "DJANGO_SECRET_KEY": "reliability-stack-secret-key-not-for-deployment-0123456789abcdef",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_RATE": "1000000/min",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        })

    # -- processes --------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(args, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                   start_new_session=True)
        process._log = log  # type: ignore[attr-defined]
        self.processes.append((name, process))
        return process

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def manage(self, *args: str, env: dict | None = None) -> str:
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env or self.env, capture_output=True,  # noqa: S603
                                text=True, timeout=300, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start_cognito(self) -> str:
        port = free_port()
        self._spawn("cognito", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
        endpoint = f"http://127.0.0.1:{port}"
        wait_until(lambda: _get(f"{endpoint}/moto-api/") is not None, 30, what="moto server")
        self.env.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "ap-southeast-2",
            "AWS_DEFAULT_REGION": "ap-southeast-2", "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": endpoint,
            "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        self.env.pop("COGNITO_USER_POOL_ID", None)
        sys.path.insert(0, str(ROOT))
        from tests.cognito_server import create_user_pool

        self.env["COGNITO_USER_POOL_ID"] = create_user_pool(endpoint)
        return endpoint

    def prepare_database(self, *, recreate: bool = True) -> tuple[str, str, str]:
        """Migrate, create one organization and one API client: (organization id, client id, secret)."""
        if recreate:
            recreate_database(self.database_url)
        self.manage("migrate", "--noinput")
        organization_id = self.manage("create_organization", "--name", "Reliability Practice").strip().splitlines()[-1]
        client = json.loads(self.manage("create_api_client", "--organization", organization_id, "--name", "Load",
                                        "--scopes", SCOPES, "--json").strip().splitlines()[-1])
        return organization_id, client["client_id"], client["client_secret"]

    def start_app(self, name: str, *, workers: int = 1, env: dict | None = None) -> str:
        port = free_port()
        args = [str(VENV_BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--timeout", "60", "--graceful-timeout", "5"]
        process = self._spawn(name, args, env={**self.env, **(env or {})})
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: process.poll() is not None or _get(f"{base}/healthz") is not None, 60, what=name)
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{self.log(name)}")
        return base

    def start_worker(self, name: str, *args: str) -> subprocess.Popen:
        return self._spawn(name, [PYTHON, "manage.py", "sync_cognito", "--loop", *args])

    def pid(self, name: str) -> int:
        return next(p.pid for n, p in self.processes if n == name)

    def stop(self, name: str, sig=signal.SIGTERM, timeout: float = 20) -> int | None:
        for index, (process_name, process) in enumerate(self.processes):
            if process_name == name:
                if process.poll() is None:
                    os.killpg(process.pid, sig)
                    try:
                        process.wait(timeout)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait(10)
                process._log.close()  # type: ignore[attr-defined]
                del self.processes[index]
                return process.returncode
        return None

    def close(self) -> None:
        for name, _ in reversed(list(self.processes)):
            self.stop(name)


# -- HTTP -----------------------------------------------------------------------------------------


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URLs we built)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def request(method: str, url: str, *, token: str | None = None, body=None, headers=None, timeout: float = 30):
    """(status, headers, parsed body or raw bytes). Never raises for HTTP errors."""
    data = None
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, bytes):  # sent as is, with the caller's Content-Type
        data = body
    elif body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310
            status, response_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, response_headers, raw = error.code, dict(error.headers), error.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return status, response_headers, parsed


def issue_token(base: str, client_id: str, secret: str) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    req = urllib.request.Request(  # noqa: S310
        f"{base}/v1/oauth/token", data=b"grant_type=client_credentials", method="POST",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())["access_token"]
