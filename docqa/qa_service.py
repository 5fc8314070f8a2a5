"""The question-answering service: load the index and models once, then retrieve and answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docqa.config import Settings
from docqa.embeddings import Embedder
from docqa.errors import UsageError, VectorStoreError
from docqa.llm import Completion, LocalLLM, load_llm
from docqa.prompts import fit_passages, qa_prompt_template
from docqa.store import Hit, VectorStore


@dataclass(frozen=True)
class Source:
    n: int  # the number the model saw the passage under
    source: str
    page: int
    text: str
    score: float


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
    completion: Completion | None = None
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
            embedder = Embedder(self.settings.embedding.model, self.settings.embedding.batch_size)
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

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        """The k chunks closest to the question, best first."""
        self.load(with_llm=False)
        assert self._store is not None
        assert self._embedder is not None
        vector = self._embedder.embed([_clean(question)])[0]
        return self._store.search(vector, k or self.settings.retrieval.k)

    def retrieve_only(self, question: str, k: int | None = None) -> Answer:
        started = time.perf_counter()
        hits = self.search(question, k)
        retrieve_s = time.perf_counter() - started
        sources = [Source(n, h.source, h.page, h.text, h.score) for n, h in enumerate(hits, 1)]
        return Answer(question, None, sources, self._timings(retrieve_s, None))

    def ask(
        self, question: str, k: int | None = None, on_text: Callable[[str], None] | None = None
    ) -> Answer:
        """Retrieve, fit the passages into the model's context, and answer with the chain."""
        from docqa.chain import answer_with_chain

        self.load(with_llm=True)
        llm = self._llm
        assert llm is not None
        question = _clean(question)
        template = qa_prompt_template(llm.chat_format)
        budget = llm.context_length - llm.max_new_tokens
        retrieval: dict[str, float | int] = {}

        def retrieve(query: str) -> list[dict[str, object]]:
            started = time.perf_counter()
            hits = self.search(query, k)
            passages = [{"source": h.source, "page": h.page, "text": h.text} for h in hits]
            kept, dropped = fit_passages(query, passages, template, llm.count_tokens, budget)
            retrieval.update(seconds=time.perf_counter() - started, dropped=len(dropped))
            return [{**passages[i], "n": n, "score": hits[i].score} for n, i in enumerate(kept, 1)]

        result = answer_with_chain(question, retrieve, llm, on_text)
        sources = [
            Source(p["n"], p["source"], p["page"], p["text"], p["score"]) for p in result.passages
        ]
        return Answer(
            question=question,
            answer=result.answer,
            sources=sources,
            timings=self._timings(float(retrieval["seconds"]), result.completion.seconds),
            completion=result.completion,
            dropped=int(retrieval["dropped"]),
            model_path=llm.path,
            backend=llm.backend,
        )

    def _timings(self, retrieve_s: float, generate_s: float | None) -> Timings:
        return Timings(self.load_s, retrieve_s, generate_s, time.perf_counter() - self.started)


def _clean(question: str) -> str:
    question = " ".join(question.split())
    if not question:
        raise UsageError('the question is empty: ask something, e.g. main.py "What is ...?"')
    return question
