"""The queue's Redis URL: checked when `docqa serve` or `docqa worker` starts, and shown
without its password wherever it is printed or logged."""

from __future__ import annotations

from urllib.parse import urlsplit

from docqa.errors import UsageError

SCHEMES = ("redis://", "rediss://", "unix://")
CHECK_TIMEOUT_S = 2


def without_password(url: str) -> str:
    """`url` as messages and logs show it: without the password of its user part or of its
    `?password=` (read as redis-py reads them); the user name and the rest kept."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed host: nothing past the scheme is safe to show
        return f"{url.partition('://')[0]}://..."
    if not parts.netloc:  # not scheme://HOST...: whatever comes before an @ may be a password
        return url.rpartition("@")[2]
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    kept = [p for p in parts.query.split("&") if p and p.partition("=")[0].lower() != "password"]
    query = "?" + "&".join(kept) if kept else ""
    return f"{parts.scheme}://{user}{'@' if user else ''}{host}{parts.path}{query}"


def checked_queue(url: str) -> str:
    """`url`, once it is a Redis URL that its Redis, when it answers, accepts: a Redis not
    answering yet is waited for (the API says so in /healthz, workers retry), a refused
    password would be waited for in vain."""
    if not url.startswith(SCHEMES):
        raise UsageError(
            "--queue takes a Redis URL such as redis://localhost:6379/0, "
            f"not {without_password(url)!r}"
        )
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=CHECK_TIMEOUT_S, socket_timeout=CHECK_TIMEOUT_S
        )
    except ValueError as exc:
        raise UsageError(f"the queue URL {without_password(url)} is malformed: {exc}") from None
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        shown = without_password(url)
        if not client.connection_pool.connection_kwargs.get("password"):
            raise UsageError(
                f"the queue {shown} needs a password: give it in the queue URL, "
                "redis://:PASSWORD@HOST:PORT/N"
            ) from None
        raise UsageError(
            f"the queue {shown} refused the password ({str(exc).rstrip('.')}): check the "
            "password in the queue URL"
        ) from None
    except redis.RedisError:
        pass  # not answering (yet)
    finally:
        client.close()
    return url
