"""The threads of a gthread worker share one Cognito client, with a connection for each thread."""

import threading

from accounts.cognito import gateway


def test_a_burst_of_first_calls_builds_one_client_with_a_connection_per_thread(cognito_server, settings):
    settings.GUNICORN_THREADS = 24
    gateway.reset_client()
    barrier = threading.Barrier(12)
    clients = []

    def first_call():
        barrier.wait()
        clients.append(gateway.get_client())

    threads = [threading.Thread(target=first_call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert len(clients) == 12
        assert len({id(client) for client in clients}) == 1
        assert clients[0].meta.config.max_pool_connections == 24
    finally:
        gateway.reset_client()
