"""A TCP proxy on 127.0.0.1 that adds a delay to every response (not a test module).

Put it in front of the moto server to make every Cognito call slower by `delay` seconds, as a
far-away or struggling Cognito would be::

    with LatencyProxy(upstream_port, delay=0.08) as proxy:
        endpoint = proxy.endpoint_url
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class LatencyProxy:
    def __init__(self, upstream_port: int, delay: float, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.delay = delay
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self.endpoint_url = f"http://{host}:{self._listener.getsockname()[1]}"
        self.responses = 0  # responses relayed (one per Cognito call)
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.delay), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, delay: float) -> None:
        # A response arrives in one or a few chunks: delay the first chunk after a quiet spell.
        last = 0.0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if delay and time.monotonic() - last > 0.02:
                    self.responses += 1
                    time.sleep(delay)
                last = time.monotonic()
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
