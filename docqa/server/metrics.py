"""The API's Prometheus metrics (GET /metrics), in a registry of each app's own."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]

SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
# The methods counted by name; any other (a client may send any token) is counted as "other",
# as a path no route matches is counted as "unmatched": what clients send adds no series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class Metrics:
    def __init__(self, waiting: Callable[[], int]) -> None:
        disable_created_metrics()  # no *_created series beside each counter
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "docqa_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "docqa_http_request_seconds",
            "HTTP request time, to the end of the response.",
            ["route"],
            buckets=SECONDS,
            registry=self.registry,
        )
        self.first_token = Histogram(
            "docqa_time_to_first_token_seconds",
            "From a question's submission to its first token.",
            buckets=SECONDS,
            registry=self.registry,
        )
        self.answer_seconds = Histogram(
            "docqa_answer_seconds",
            "From a question's submission to its answer.",
            buckets=SECONDS,
            registry=self.registry,
        )
        self.tokens = Counter("docqa_generated_tokens", "Tokens generated.", registry=self.registry)
        self.tokens_per_s = Histogram(
            "docqa_generation_tokens_per_second",
            "Generation speed of each answer.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=self.registry,
        )
        self.jobs = Counter(
            "docqa_jobs",
            "Finished jobs by kind and status.",
            ["kind", "status"],
            registry=self.registry,
        )
        depth = Gauge(
            "docqa_queue_waiting", "Questions waiting for the model.", registry=self.registry
        )
        depth.set_function(waiting)

    def answered(self, answer: dict[str, Any], submitted: float) -> None:
        """A question's answer, read by the API `submitted` (time.time()) after it was asked."""
        self.answer_seconds.observe(max(0.0, time.time() - submitted))
        used = answer.get("usage") or {}
        if used.get("completion_tokens"):
            self.tokens.inc(used["completion_tokens"])
        if used.get("tokens_per_s"):
            self.tokens_per_s.observe(used["tokens_per_s"])

    def text(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: counts every response and times it to its last byte, by the route
    that answered it (a request the Guard refused reached none)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
