"""The HTTP API under load, on loopback: inline against the queue with one and two workers.
Writes bench/results/load.md and .json.

    poetry run python -m bench.load [--pdf FILE] [--clients 50] [--requests 3]

Each of `--clients` concurrent clients asks `--requests` questions one after another
through /v1/ask?stream=true (the adidas question over the 20-F when it is present, else the
bundled sample's question); a client refused with 429 waits the Retry-After it was given and
asks again, as the openai client does; the run is bounded in time too. Reported per mode:
answers per second, p50/p95 latency (from the first try, waits included) and time to the
first token of the answers, and the 429s (nothing else may come back but answers). Workers
on this one machine share its cores: each gets `llm.threads` = cores / workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.quality import ROOT, SHOWCASE
from bench.report import write
from tests.conftest import run_cli
from tests.fixtures.pdfs import SAMPLE_NAME, SAMPLE_QUESTION
from tests.fixtures.services import Process, redis_server, serving, start_docqa

ADIDAS = "How much is the minimum guarantee payable by adidas?"
TIME_LIMIT_S = 600


def project_for(pdf: Path) -> Path:
    """A project folder whose index holds `pdf` (built once, kept in bench/.cache)."""
    folder = ROOT / ".cache" / f"load-{pdf.stem}"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    if not (folder / "data" / pdf.name).exists():
        (folder / "data" / pdf.name).symlink_to(pdf.resolve())
    if not (folder / "vectorstore" / "CURRENT").exists():
        assert run_cli("ingest.py", cwd=folder).returncode == 0
    return folder


async def ask_all(url: str, question: str, clients: int, requests: int) -> list[dict[str, Any]]:
    """Every request's outcome: status, latency, time to first token (answered ones)."""
    outcomes: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIME_LIMIT_S
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=TIME_LIMIT_S, limits=limits) as client:

        async def one_client() -> None:
            for _ in range(requests):
                started, refused = time.perf_counter(), 0
                while time.monotonic() < deadline:
                    outcome = await ask_one(client, question)
                    if outcome["status"] != 429:
                        break
                    refused += 1
                    await asyncio.sleep(float(outcome["retry_after"]))
                else:
                    return
                outcome["latency_s"] = time.perf_counter() - started
                outcomes.append({**outcome, "refused": refused})

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return outcomes


async def ask_one(client: httpx.AsyncClient, question: str) -> dict[str, Any]:
    started = time.perf_counter()
    first_token = None
    body = {"question": question}
    async with client.stream("POST", "/v1/ask?stream=true", json=body) as response:
        async for line in response.aiter_lines():
            if first_token is None and line.startswith("event: token"):
                first_token = time.perf_counter() - started
    return {
        "status": response.status_code,
        "retry_after": response.headers.get("retry-after"),
        "first_token_s": first_token,
    }


def summary(outcomes: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    answered = [o for o in outcomes if o["status"] == 200]
    latencies = sorted(o["latency_s"] for o in answered)
    firsts = sorted(o["first_token_s"] for o in answered if o["first_token_s"] is not None)
    return {
        "answered": len(answered),
        "refused_429": sum(o["refused"] for o in outcomes),
        "other": [o["status"] for o in outcomes if o["status"] != 200],
        "seconds": round(seconds, 1),
        "answers_per_s": round(len(answered) / seconds, 2),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "first_token_p50_s": percentile(firsts, 50),
        "first_token_p95_s": percentile(firsts, 95),
    }


def percentile(values: list[float], share: int) -> float | None:
    if not values:
        return None
    return round(statistics.quantiles(values, n=100, method="inclusive")[share - 1], 3)


@contextmanager
def cluster(project: Path, mode: str) -> Iterator[str]:
    """The API (and, for queue modes, Redis and the workers): its URL."""
    if mode == "inline":
        with serving(project) as (url, _):
            yield url
        return
    workers = int(mode.split("-")[1])
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    with ExitStack() as stack, redis_server(project / f"redis-{mode}") as redis:
        started: list[Process] = []
        for n in range(workers):
            started.append(
                start_docqa(
                    project,
                    "worker",
                    "--queue",
                    redis.url,
                    "--name",
                    f"bench{n}",
                    log_name=f"bench-worker{n}",
                    env={"DOCQA_LLM__THREADS": threads},
                )
            )
        for worker in started:
            stack.callback(worker.stop)
        url, _ = stack.enter_context(serving(project, "--queue", redis.url, ready=False))
        deadline = time.monotonic() + 180
        while len(httpx.get(f"{url}/healthz").json()["model"].get("workers", [])) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"the {workers} workers did not start")
            time.sleep(0.5)
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pdf", type=Path, default=SHOWCASE)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("--modes", default="inline,queue-1,queue-2")
    args = parser.parse_args()
    showcase = args.pdf.is_file()
    pdf = args.pdf if showcase else ROOT.parent / "data" / SAMPLE_NAME
    question = ADIDAS if showcase else SAMPLE_QUESTION
    project = project_for(pdf)
    results: dict[str, Any] = {"modes": {}}
    for mode in args.modes.split(","):
        with cluster(project, mode) as url:
            asyncio.run(ask_all(url, question, 1, 2))  # warm up
            started = time.perf_counter()
            outcomes = asyncio.run(ask_all(url, question, args.clients, args.requests))
            results["modes"][mode] = summary(outcomes, time.perf_counter() - started)
        print(mode, json.dumps(results["modes"][mode]))
    rows = [
        {"mode": mode, **{k: v for k, v in r.items() if k != "other"}, "other": str(r["other"])}
        for mode, r in results["modes"].items()
    ]
    heading = (
        f"HTTP API under load: {args.clients} clients x {args.requests} questions "
        f"({pdf.name}, /v1/ask?stream=true, {os.cpu_count()} cores)"
    )
    print(write("load", heading, {"modes": rows}))


if __name__ == "__main__":
    main()
