"""Settings precedence and validation: flag > DOCQA_* environment > config file > default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docqa.config import load_settings
from docqa.errors import ConfigError


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yml"
    path.write_text(text)
    return path


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert settings.paths.data == tmp_path / "data"
    assert settings.llm.model == tmp_path / "models/llama-2-7b-chat.ggmlv3.q8_0.bin"
    assert settings.llm.backend == "auto"
    assert settings.llm.context_length is None
    assert settings.retrieval.k is None  # the reader profile's


def test_precedence_flag_over_environment_over_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "retrieval:\n  k: 5\nllm:\n  temperature: 0.5\n  top_k: 7\n")
    environ = {"DOCQA_LLM__TEMPERATURE": "0.2", "DOCQA_RETRIEVAL__K": "6"}
    settings = load_settings(config, {"retrieval": {"k": 9}}, environ=environ)
    assert settings.retrieval.k == 9  # flag
    assert settings.llm.temperature == 0.2  # environment
    assert settings.llm.top_k == 7  # file
    assert settings.llm.top_p == 0.95  # default


def test_unset_flags_do_not_override(tmp_path: Path) -> None:
    config = write_config(tmp_path, "retrieval:\n  k: 5\n")
    assert load_settings(config, {"retrieval": {"k": None}}, environ={}).retrieval.k == 5


def test_file_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "project", "paths:\n  data: docs\n")
    settings = load_settings(config, environ={})
    assert settings.paths.data == tmp_path / "project" / "docs"
    assert settings.paths.vectorstore == tmp_path / "project" / "vectorstore"


def test_an_empty_prompt_cache_turns_it_off(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere" / "config.yml"
    config.parent.mkdir()
    config.write_text('llm:\n  prompt_cache: ""\n')
    assert load_settings(config, environ={}).llm.prompt_cache is None
    environ = {"DOCQA_LLM__PROMPT_CACHE": ""}
    assert load_settings(None, environ=environ).llm.prompt_cache is None
    assert (
        load_settings(None, environ={}).llm.prompt_cache == Path("models/.prompt-cache").resolve()
    )


def test_config_file_found_through_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "elsewhere", "retrieval:\n  k: 3\n")
    settings = load_settings(environ={"DOCQA_CONFIG": str(config)})
    assert settings.retrieval.k == 3


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("llm:\n  temprature: 0.1\n", {}, "invalid setting llm.temprature: Extra inputs"),
        ("llm:\n  backend: gpu\n", {}, "invalid setting llm.backend"),
        ("retrieval: 3\n", {}, "'retrieval' must be a section"),
        ("- a list\n", {}, "must hold sections of settings"),
        ("llm: [unclosed\n", {}, "cannot read config file"),
        ("", {"DOCQA_RETRIEVAL__K": "many"}, "invalid setting retrieval.k"),
    ],
)
def test_invalid_settings_say_which_and_where(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    config = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(config, environ=environ)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.yml not found"):
        load_settings(tmp_path / "nope.yml", environ={})


def test_shipped_config_matches_the_defaults() -> None:
    from docqa.config import Settings
    from tests.fixtures.projects import REPO

    shipped = load_settings(REPO / "config.yml", environ={})
    defaults = load_settings(environ={})
    assert shipped.model_dump(exclude={"paths", "llm"}) == defaults.model_dump(
        exclude={"paths", "llm"}
    )
    paths = {"model", "prompt_cache"}  # taken from the folder of each one's config file
    assert shipped.llm.model_dump(exclude=paths) == defaults.llm.model_dump(exclude=paths)
    assert set(Settings.model_fields) == {
        "paths",
        "embedding",
        "loading",
        "chunking",
        "retrieval",
        "answer",
        "llm",
        "chat",
        "server",
    }


def test_readme_documents_every_setting() -> None:
    from docqa.config import Settings
    from tests.fixtures.projects import REPO

    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `(\w+\.\w+)` \|", readme, re.MULTILINE))
    actual = {
        f"{section}.{key}"
        for section, field in Settings.model_fields.items()
        for key in field.annotation.model_fields  # type: ignore[union-attr]
    }
    assert documented == actual
