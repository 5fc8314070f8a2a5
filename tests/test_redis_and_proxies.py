"""The queue and the client address as the deployments lock them down (issue #37): Redis with
a password, refused at start with one line when wrong or missing, and never shown; and
X-Forwarded-For taken only from the proxies `server.trusted_proxies` lists. Queue mode with
the password answering end to end is tests/test_workers.py's cluster."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from docqa.config import load_settings
from docqa.errors import ConfigError, ExitCode, UsageError
from docqa.jobs.queue_url import checked_queue, without_password
from tests.fixtures.projects import run_cli
from tests.fixtures.services import Redis, queue_env, redis_server, serving

PASSWORD = secrets.token_hex(16)
WRONG_PASSWORD = secrets.token_hex(16)


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    with redis_server(tmp_path_factory.mktemp("redis"), password=PASSWORD) as redis:
        yield redis


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@redis:6379/0", "redis://redis:6379/0"),
        ("redis://docqa:s3cret@10.0.0.5:6379/1", "redis://docqa@10.0.0.5:6379/1"),
        ("rediss://:p%40ss:word@host/0?ssl_cert_reqs=none", "rediss://host/0?ssl_cert_reqs=none"),
        ("redis://:p@ss@host:6379/0", "redis://host:6379/0"),  # an @ left unencoded
        ("redis://host:6379/0?password=s3cret&db=2", "redis://host:6379/0?db=2"),
        ("unix://:s3cret@/run/redis.sock?db=0", "unix:///run/redis.sock?db=0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (":s3cret@localhost:6379", "localhost:6379"),  # no scheme
        ("redis://:s3cret@[::1/0", "redis://..."),  # a malformed host
    ],
)
def test_a_queue_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert without_password(url) == shown


def test_a_queue_url_that_is_not_redis_is_refused_without_its_password() -> None:
    with pytest.raises(UsageError, match="not 'http://host:6379'") as refused:
        checked_queue("http://:s3cret@host:6379")
    assert "s3cret" not in str(refused.value)


def test_trusted_proxies_are_addresses_or_networks() -> None:
    def trusted(value: str) -> tuple[str, ...]:
        return load_settings(
            None, environ={"DOCQA_SERVER__TRUSTED_PROXIES": value}
        ).server.trusted_proxies

    assert trusted("") == ()
    assert trusted("127.0.0.1, 10.1.2.3/8,::1") == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    with pytest.raises(ConfigError, match=r"'proxy\.example' is not an IP address or network"):
        trusted("proxy.example")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["worker", "serve"])
@pytest.mark.parametrize("given", [WRONG_PASSWORD, None], ids=["wrong", "missing"])
def test_a_wrong_or_missing_password_stops_the_command_with_one_line(
    locked_redis: Redis, tmp_path: Path, command: str, given: str | None
) -> None:
    queue = f"redis://{f':{given}@' if given else ''}127.0.0.1:{locked_redis.port}/0"
    result = run_cli("-m", "docqa", command, cwd=tmp_path, env=queue_env(queue))
    assert result.returncode == ExitCode.USAGE  # as for a queue URL that is not Redis's
    shown = f"error: the queue redis://127.0.0.1:{locked_redis.port}/0"
    expected = (
        f"{shown} refused the password (invalid username-password pair or user is disabled): "
        "check the password in the queue URL"
        if given
        else f"{shown} needs a password: give it in the queue URL, redis://:PASSWORD@HOST:PORT/N"
    )
    assert result.stderr.splitlines() == [expected]
    assert result.stdout == ""


@contextmanager
def _api(project: Path, redis: Redis, trusted_proxies: str) -> Iterator[str]:
    """`docqa serve` on the queue (so with no model to load) with a key; its log is checked
    for the queue's password at the end."""
    env = {
        **queue_env(redis.url),
        "DOCQA_API_KEY": secrets.token_urlsafe(32),
        "DOCQA_SERVER__TRUSTED_PROXIES": trusted_proxies,
    }
    with serving(project, env=env, ready=False) as (url, server):
        yield url
    assert f"through redis://127.0.0.1:{redis.port}/0" in server.output()
    assert PASSWORD not in server.output()


def _wrong_key(url: str, forwarded_for: str | None = None) -> int:
    headers = {"Authorization": "Bearer wrong"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return httpx.get(f"{url}/v1/models", headers=headers).status_code


@pytest.mark.slow
def test_without_trusted_proxies_forwarded_for_changes_no_client_address(
    locked_redis: Redis, tmp_path: Path
) -> None:
    with _api(tmp_path, locked_redis, trusted_proxies="") as url:
        assert [_wrong_key(url, f"203.0.113.{n}") for n in range(10)] == [401] * 10
        assert _wrong_key(url, "203.0.113.99") == 429  # all ten were counted as 127.0.0.1's


@pytest.mark.slow
def test_a_trusted_proxy_names_the_client_address(locked_redis: Redis, tmp_path: Path) -> None:
    with _api(tmp_path, locked_redis, trusted_proxies="127.0.0.1") as url:
        assert [_wrong_key(url, f"203.0.113.{n}") for n in range(10)] == [401] * 10
        assert _wrong_key(url) == 401  # the proxy's own address sent none of them
        assert [_wrong_key(url, "198.51.100.7") for _ in range(10)] == [401] * 10
        assert _wrong_key(url, "198.51.100.7") == 429
