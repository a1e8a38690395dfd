"""Test helper: a real HTTP Cognito endpoint backed by moto's server.

Not a test module.  Typical use from a fixture::

    server = CognitoServer()
    endpoint = server.start()            # "http://127.0.0.1:<free port>"
    settings.COGNITO_ENDPOINT_URL = endpoint   # the gateway reads django.conf.settings
    settings.COGNITO_USER_POOL_ID = create_user_pool(endpoint)
    # cognito_env(endpoint): the same as environment variables, for a process the test starts
    ...
    server.stop()    # "Cognito is down": connections are refused
    server.stall()   # "Cognito hangs": TCP connects, no response ever comes
    server.start()   # back up on the same port, data preserved
    server.close()

Notes on moto behaviour that matter here:

* moto's backends are process-global.  Restarting the server keeps all
  pools/users, but ``moto.mock_aws`` used elsewhere in the same process
  resets that state; keep in-process mocks and this server in separate test
  processes (or call :meth:`CognitoServer.reset` deliberately).
* moto does not validate credentials, and does not check ``custom:``
  attributes against the pool schema.
"""

from __future__ import annotations

import functools
import http.client
import logging
import socket
import threading
import uuid

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tests.isolation import free_port

DEFAULT_REGION = "ap-southeast-2"


def cognito_env(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Environment variables pointing boto3 at the fake endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": endpoint_url,
        # Keep a developer's ~/.aws out of the tests.
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class CognitoServer:
    """moto ``ThreadedMotoServer`` on 127.0.0.1 that can go down and come back.

    The first :meth:`start` picks a free port (tests/isolation.py); later starts reuse it so that
    clients configured with :attr:`endpoint_url` reconnect transparently.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: int | None = None
        self._server: ThreadedMotoServer | None = None
        self._stall_socket: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("server was never started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Start (or restart) the server; return its endpoint URL."""
        with self._lock:
            self._release_stall()
            if self._server is None:
                # werkzeug logs every request at INFO; keep test output readable.
                logging.getLogger("werkzeug").setLevel(logging.WARNING)
                # A port outside the ephemeral range: a restart on it can't find it taken by a
                # client connection (this process's or another test run's).
                self.port = self.port or free_port(self.host)
                server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
                server.start()
                self._server = server
        return self.endpoint_url

    def stop(self) -> None:
        """Shut the server down; the port then refuses connections."""
        with self._lock:
            self._stop_server()
            self._release_stall()

    def stall(self, backlog: int = 16) -> None:
        """Stop serving but keep the port open: connects succeed, reads hang.

        Simulates an unresponsive Cognito (exercises read timeouts).
        """
        with self._lock:
            self._stop_server()
            if self._stall_socket is None:
                if self.port is None:
                    raise RuntimeError("server was never started")
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, self.port))
                sock.listen(backlog)  # never accept()ed
                self._stall_socket = sock

    def close(self) -> None:
        self.stop()

    def reset(self) -> None:
        """Wipe all moto state (all services, all regions)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=5)
        try:
            connection.request("POST", "/moto-api/reset", body=b"")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"moto reset failed: HTTP {response.status}")
        finally:
            connection.close()

    def _stop_server(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()  # werkzeug closes the listening socket on shutdown

    def _release_stall(self) -> None:
        if self._stall_socket is not None:
            sock, self._stall_socket = self._stall_socket, None
            sock.close()

    def __enter__(self) -> CognitoServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@functools.lru_cache(maxsize=16)
def make_client(endpoint_url: str, region: str = DEFAULT_REGION):
    """A plain cognito-idp client for test setup, independent of the gateway.

    Cached per endpoint/region (boto3 clients are thread-safe).
    """
    return boto3.session.Session().client(
        "cognito-idp",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
    )


def create_user_pool(endpoint_url: str, name: str | None = None, region: str = DEFAULT_REGION) -> str:
    """Create a user pool with the mutable ``custom:organization_id``; return its id."""
    client = make_client(endpoint_url, region)
    response = client.create_user_pool(
        PoolName=name or f"test-pool-{uuid.uuid4().hex[:12]}",
        Schema=[
            {
                "Name": "organization_id",
                "AttributeDataType": "String",
                "Mutable": True,
                "Required": False,
                "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "64"},
            }
        ],
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )
    return response["UserPool"]["Id"]
