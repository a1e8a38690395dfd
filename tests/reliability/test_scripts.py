"""The soak and scale-out scripts, with small numbers, against real processes on PostgreSQL.

Each (re)creates its own database on the PostgreSQL server the suite uses (`<test db>_soak`,
`<test db>_scale`, after this worker's test database), so it never touches another engineer's data
or another run's."""

import os
import urllib.parse

import pytest
from django.db import connection

from bench import scale_out, soak

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("django_db_setup"),  # the test database's name is final
    pytest.mark.skipif(connection.vendor != "postgresql", reason="app servers and workers share PostgreSQL"),
]


@pytest.fixture
def database_url():
    """database_url(suffix) -> a database named after this process's test database (unique to the
    xdist worker and the run), dropped after the test."""
    made = []

    def make(suffix: str) -> str:
        parsed = urllib.parse.urlparse(os.environ["DATABASE_URL"])
        made.append(f"{connection.settings_dict['NAME']}_{suffix}")
        return parsed._replace(path=f"/{made[-1]}").geturl()

    yield make
    import psycopg

    admin = urllib.parse.urlparse(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as server:
        for name in made:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_soak_short_run_has_no_server_errors(tmp_path, database_url):
    result = soak.run(duration=6, max_requests=5000, clients=3, database_url=database_url("soak"), log_dir=tmp_path)
    assert result["requests"] > 20
    assert result["server_errors"] == {}, result
    assert all(isinstance(s, int) and s < 500 for s in result["statuses"])
    assert result["rss_start_kb"] and all(result["rss_end_kb"].values())


def test_scale_out_loses_nothing_and_applies_nothing_twice(tmp_path, database_url):
    # The session's moto Cognito (from os.environ) serves both app servers and both workers.
    problems = scale_out.run(users=16, clients=4, database_url=database_url("scale"), log_dir=tmp_path,
                             start_cognito=False)
    assert problems == []
