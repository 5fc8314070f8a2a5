"""The container deployment, checked as far as it can be without a container engine (none
runs where docqa is developed): docker-compose.yml's services, the docqa command lines they
run, the settings their environment sets, their volumes; the Dockerfile's inputs."""

from __future__ import annotations

import re
import shlex

import pytest
import typer
import yaml

from docqa.cli import app
from docqa.config import load_settings
from tests.fixtures.projects import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]


def test_compose_runs_redis_with_persistence_the_api_and_workers() -> None:
    assert set(SERVICES) == {"redis", "api", "worker"}
    redis = SERVICES["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
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
    queue = command[command.index("--queue") + 1]
    assert queue == "redis://redis:6379/0"


def test_the_api_beyond_loopback_demands_a_key_and_is_published_on_loopback() -> None:
    api = SERVICES["api"]
    assert api["command"][api["command"].index("--host") + 1] == "0.0.0.0"
    assert re.fullmatch(r"\$\{DOCQA_API_KEY:\?.+\}", api["environment"]["DOCQA_API_KEY"])
    assert all(port.startswith("127.0.0.1:") for port in api["ports"])


def test_service_environments_are_valid_settings() -> None:
    for service in SERVICES.values():
        environment = {
            name: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
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
