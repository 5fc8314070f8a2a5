"""The question-answering service: load the index and models once, then retrieve and answer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from docqa.answer.evidence import Evidence, select
from docqa.answer.grounding import ABSTENTION, ground
from docqa.answer.prompts import fit_passages, qa_prompt_template
from docqa.answer.retrieval import retrieve
from docqa.config import Settings
from docqa.errors import UsageError, VectorStoreError
from docqa.index.embeddings import Embedder
from docqa.index.store import Hit, VectorStore
from docqa.llm.engine import Completion, LocalLLM
from docqa.llm.models import load_llm

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Source:
    n: int  # the number the model saw the passage under
    source: str
    page: int
    text: str
    score: float
    also: tuple[str, ...] = ()  # other names of the same file


@dataclass(frozen=True)
class Timings:
    load_s: float
    retrieve_s: float
    generate_s: float | None  # None when no answer was generated
    total_s: float


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str | None  # None with retrieve-only
    sources: list[Source]
    timings: Timings
    abstained: bool = False  # the answer says the documents do not say
    completion: Completion | None = None  # None when the LLM was not called
    raw_answer: str | None = None  # the model's text before grounding
    dropped: int = 0  # retrieved chunks left out because the context was full
    model_path: Path | None = None
    backend: str | None = None


@dataclass
class QAService:
    """Loads what answering needs once; then answers any number of questions."""

    settings: Settings
    explicit_model: bool = False  # the model path came from --model: no demo fallback
    started: float = field(default_factory=time.perf_counter)
    notices: list[str] = field(default_factory=list)
    load_s: float = 0.0
    _store: VectorStore | None = None
    _embedder: Embedder | None = None
    _llm: LocalLLM | None = None

    def load(self, with_llm: bool = True) -> None:
        """Open and verify the index and load the embedding model, and the LLM if asked."""
        started = time.perf_counter()
        if self._store is None:
            embedding = self.settings.embedding
            embedder = Embedder(embedding.model, embedding.batch_size, runtime="numpy")
            store = VectorStore.open(self.settings.paths.vectorstore, embedder.model_id)
            if store.manifest.embedding.dimension != embedder.dimension:
                raise VectorStoreError(
                    f"the index in {store.folder} holds {store.manifest.embedding.dimension}-"
                    f"dimension vectors, but {embedder.model_id} makes {embedder.dimension}: "
                    "run `python ingest.py` to rebuild it"
                )
            embedder.load()
            self._store, self._embedder = store, embedder
        if with_llm and self._llm is None:
            self._llm, notice = load_llm(self.settings.llm, explicit=self.explicit_model)
            if notice:
                self.notices.append(notice)
        self.load_s += time.perf_counter() - started

    @property
    def model_path(self) -> Path | None:
        return self._llm.path if self._llm else None

    @property
    def index_chunking(self) -> dict[str, int | bool]:
        """The chunk settings the loaded index was built with."""
        return dict(self._store.manifest.chunking) if self._store else {}

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        """The k chunks for the question, best first."""
        self.load(with_llm=False)
        assert self._store is not None
        assert self._embedder is not None
        question = _clean(question)
        vector = self._embedder.embed([question])[0]
        settings = self.settings.retrieval
        return retrieve(self._store, vector, question, k or settings.k, settings)

    def retrieve_only(self, question: str, k: int | None = None) -> Answer:
        started = time.perf_counter()
        hits = self.search(question, k)
        retrieve_s = time.perf_counter() - started
        return Answer(question, None, _sources(hits), self._timings(retrieve_s, None))

    def ask(self, question: str, k: int | None = None) -> Answer:
        """Retrieve; below the relevance threshold, decline without the LLM. Otherwise fit the
        chunks into the model's context, let it read their best evidence through the chain,
        and keep only what the chunks support."""
        from docqa.answer.chain import answer_with_chain

        self.load(with_llm=True)
        llm, store = self._llm, self._store
        assert llm is not None
        assert store is not None
        question = _clean(question)
        started = time.perf_counter()
        hits = self.search(question, k)
        if not hits or max(hit.score for hit in hits) < self.settings.retrieval.min_score:
            timings = self._timings(time.perf_counter() - started, None)
            return Answer(
                question,
                ABSTENTION,
                _sources(hits),
                timings,
                abstained=True,
                model_path=llm.path,
                backend=llm.backend,
            )

        neighbours = self.settings.retrieval.neighbours
        texts = [store.with_neighbours(hit.chunk_id, neighbours) for hit in hits]
        kept, dropped = fit_passages(
            question,
            [{"text": text} for text in texts],
            qa_prompt_template(llm.chat_format),
            llm.count_tokens,
            llm.context_length - llm.max_new_tokens,
        )
        sources = _sources([hits[i] for i in kept], [texts[i] for i in kept])
        by_number = {source.n: source.text for source in sources}
        settings = self.settings.answer
        evidence = select(
            question, by_number, self._embed, store.keywords.idf, settings.keyword_weight
        )
        retrieve_s = time.perf_counter() - started

        result = answer_with_chain(question, lambda _: self._reading(sources, evidence), llm)
        grounded = ground(result.answer, question, by_number)
        text, abstained = grounded.text, grounded.abstained
        if abstained and settings.quote_unsupported and evidence:
            best = evidence[0]
            if best.score >= settings.min_quote_score:
                text, abstained = f'The documents say: "{best.text}" [{best.n}]', False
        return Answer(
            question=question,
            answer=text,
            sources=sources,
            timings=self._timings(retrieve_s, result.completion.seconds),
            abstained=abstained,
            completion=result.completion,
            raw_answer=result.answer,
            dropped=len(dropped),
            model_path=llm.path,
            backend=llm.backend,
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        assert self._embedder is not None
        return self._embedder.embed(texts)

    def _reading(self, sources: list[Source], evidence: list[Evidence]) -> list[dict[str, object]]:
        """The passages as the LLM reads them: whole, or only their best evidence sentences
        (each after the sentence before it), keeping their numbers for citations."""

        def passage(source: Source, text: str) -> dict[str, object]:
            return {"n": source.n, "source": source.source, "page": source.page, "text": text}

        if self.settings.answer.reads == "passages":
            return [passage(source, source.text) for source in sources]
        chosen = evidence[: self.settings.answer.evidence_sentences]
        return [
            passage(
                source, " ".join(f"{e.before} {e.text}".strip() for e in chosen if e.n == source.n)
            )
            for source in sources
            if any(e.n == source.n for e in chosen)
        ]

    def _timings(self, retrieve_s: float, generate_s: float | None) -> Timings:
        return Timings(self.load_s, retrieve_s, generate_s, time.perf_counter() - self.started)


def _sources(hits: list[Hit], texts: list[str] | None = None) -> list[Source]:
    """Hits as numbered sources, with their passage texts when those differ from the chunk's."""
    return [
        Source(n, hit.source, hit.page, texts[n - 1] if texts else hit.text, hit.score, hit.also)
        for n, hit in enumerate(hits, start=1)
    ]


def _clean(question: str) -> str:
    question = " ".join(question.split())
    if not question:
        raise UsageError('the question is empty: ask something, e.g. main.py "What is ...?"')
    return question
