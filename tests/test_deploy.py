"""The container deployment, checked as far as it can be without a container engine (none
runs where docqa is developed): docker-compose.yml's services, the docqa command lines they
run, the settings their environment sets, their volumes; Redis's password, and its command
run with a real redis-server; the Dockerfile's inputs."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
import typer
import yaml

from docqa.cli import app
from docqa.config import load_settings
from tests.fixtures.projects import REPO
from tests.fixtures.services import free_port

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
PASSWORD = "${DOCQA_REDIS_PASSWORD:?set DOCQA_REDIS_PASSWORD (openssl rand -hex 32)}"


def test_compose_runs_redis_with_persistence_the_api_and_workers() -> None:
    assert set(SERVICES) == {"redis", "api", "worker"}
    server = shlex.split(_redis_script().splitlines()[0])
    assert server[server.index("--appendonly") + 1] == "yes"
    assert "/data" in SERVICES["redis"]["volumes"][0]
    assert SERVICES["worker"].get("deploy", {}).get("replicas") is None  # --scale sets it
    assert "container_name" not in SERVICES["worker"]  # a fixed name would forbid --scale


@pytest.mark.parametrize("service", ["api", "worker"])
def test_each_service_runs_a_valid_docqa_command(service: str) -> None:
    command = SERVICES[service]["command"]
    assert command[0] == "docqa"
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    group.commands[command[1]].make_context(command[1], list(command[2:]))  # raises if invalid
    assert "--queue" not in command  # its password would be there for every process to see
    queue = SERVICES[service]["environment"]["DOCQA_SERVER__QUEUE"]
    assert queue == f"redis://:{PASSWORD}@redis:6379/0"


def test_redis_demands_the_password_and_is_published_nowhere() -> None:
    service = SERVICES["redis"]
    assert service["environment"] == {"REDISCLI_AUTH": PASSWORD}
    command, *config = _redis_script().splitlines()
    assert "requirepass $$REDISCLI_AUTH" in config  # read from standard input...
    assert "REDISCLI_AUTH" not in command  # ...not given on the command line
    assert "ports" not in service
    assert "network_mode" not in service  # the project's own network, not the host's


@pytest.mark.slow
def test_redis_runs_with_the_password_and_its_health_check_gives_it(tmp_path: Path) -> None:
    """The redis service's command and health check, run by sh as the container would run
    them; the image's entrypoint and redis-cli stood in for by scripts that add a port."""
    password = secrets.token_hex(16)
    port = free_port()
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    stand_ins = {
        "docker-entrypoint.sh": f'exec "$@" --port {port} --bind 127.0.0.1 --dir {tmp_path}',
        "redis-cli": f'exec {shutil.which("redis-cli")} -p {port} "$@"',
    }
    for name, line in stand_ins.items():
        (bin_folder / name).write_text(f"#!/bin/sh\n{line}\n")
        (bin_folder / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_folder}:{os.environ['PATH']}", "REDISCLI_AUTH": password}
    script = _redis_script().replace("$$", "$")  # as compose passes it
    server = subprocess.Popen(["sh", "-c", script], env=env, stdout=subprocess.DEVNULL)
    try:
        _wait_for_listening(port)
        client = redis.Redis(port=port, password=password)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(f"redis://127.0.0.1:{port}/0").ping()
        check = SERVICES["redis"]["healthcheck"]["test"]
        assert check[0] == "CMD-SHELL"
        healthy = [
            subprocess.run(["sh", "-c", check[1]], env={**env, "REDISCLI_AUTH": given}).returncode
            for given in (password, "wrong")
        ]
        assert healthy[0] == 0
        assert healthy[1] != 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_api_beyond_loopback_demands_a_key_and_is_published_on_loopback() -> None:
    api = SERVICES["api"]
    assert api["command"][api["command"].index("--host") + 1] == "0.0.0.0"
    assert re.fullmatch(r"\$\{DOCQA_API_KEY:\?.+\}", api["environment"]["DOCQA_API_KEY"])
    assert all(port.startswith("127.0.0.1:") for port in api["ports"])


def test_service_environments_are_valid_settings() -> None:
    for service in SERVICES.values():
        environment = {
            name: _interpolated(str(value))
            for name, value in service.get("environment", {}).items()
            if name.startswith("DOCQA_") and "__" in name
        }
        load_settings(None, environ=environment)


def test_the_api_writes_the_index_and_workers_only_read_it() -> None:
    settings = load_settings(REPO / "config.yml", environ={})
    data = settings.paths.data.relative_to(REPO).as_posix()
    index = settings.paths.vectorstore.relative_to(REPO).as_posix()
    api, worker = (set(SERVICES[name]["volumes"]) for name in ("api", "worker"))
    assert {f"./{data}:/app/{data}", f"./{index}:/app/{index}"} <= api
    assert f"./{index}:/app/{index}:ro" in worker
    assert not any(volume.startswith(f"./{data}:") for volume in worker)


def test_dockerfile_copies_what_exists_and_builds_llama_cpp_without_amx() -> None:
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            for source in shlex.split(line)[1:-1]:
                assert (REPO / source).exists(), source
    makefile = (REPO / "Makefile").read_text()
    for flag in ("-DGGML_NATIVE=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF"):
        assert flag in DOCKERFILE
        assert flag in makefile
    torch = re.search(r'"torch==([0-9.]+)"', (REPO / "pyproject.toml").read_text())
    assert torch is not None
    assert f"torch=={torch.group(1)}+cpu" in DOCKERFILE
    assert shlex.split(DOCKERFILE.strip().splitlines()[-1].removeprefix("CMD "))  # JSON form


def _redis_script() -> str:
    """What the redis service's sh runs."""
    shell, flag, script = SERVICES["redis"]["command"]
    assert (shell, flag) == ("sh", "-c")
    return str(script)


def _wait_for_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _interpolated(value: str) -> str:
    """`value` as compose passes it: ${NAME:-default} its default, ${NAME:?error} set."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "set", value)
