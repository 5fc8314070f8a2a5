"""The question-answering service: load the index and models once, then answer any number of
questions, each as a stream of events that every front end (command line, chat, HTTP, worker)
renders its own way.

A question is first prepared into a context (docqa.answer.context) — retrieval, evidence, the
prompt fitted into the model's context with the conversation so far — then answered by the
RetrievalQA chain (docqa.answer.chain), whose tokens stream as they are generated, and finally
revised (docqa.answer.revision): checked against what the model read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from docqa.answer.context import Context, clean_question, sources_of
from docqa.answer.evidence import excerpts, quote, select
from docqa.answer.grounding import ABSTENTION, uncited
from docqa.answer.profiles import ReaderProfile, profile_for
from docqa.answer.prompts import fit_prompt, prompt_start
from docqa.answer.results import (
    Answer,
    AnswerEvent,
    ErrorEvent,
    Event,
    Source,
    SourcesEvent,
    Timings,
    TimingsEvent,
    TokenEvent,
    Turn,
    final_answer,
)
from docqa.answer.retrieval import retrieve
from docqa.answer.revision import RevisionPolicy
from docqa.answer.routing import Library, Route
from docqa.answer.selection import Selection, nothing_selected
from docqa.config import Sampling, Settings
from docqa.errors import DocqaError, UsageError, VectorStoreError
from docqa.index.embeddings import Embedder
from docqa.index.generations import current_generation
from docqa.index.store import Hit, VectorStore
from docqa.llm.engine import LocalLLM
from docqa.llm.models import load_llm
from docqa.text import MarkerFilter

if TYPE_CHECKING:
    import numpy as np

    from docqa.answer.chain import ChainResult


@dataclass
class QAService:
    """Loads what answering needs once (load(), explicitly); then answers any number of
    questions."""

    settings: Settings
    explicit_model: bool = False  # the model path came from --model: no demo fallback
    notices: list[str] = field(default_factory=list)
    load_s: float = 0.0
    _store: VectorStore | None = None
    _embedder: Embedder | None = None
    _llm: LocalLLM | None = None
    _reader: ReaderProfile | None = None
    _library: Library | None = None
    selection: Selection | None = None  # the documents questions are limited to (None: all)

    def load(self, with_llm: bool = True) -> None:
        """Open and verify the index and load the embedding model, and the LLM if asked."""
        started = time.perf_counter()
        if self._store is None:
            self._open_index()
        if with_llm:
            self.load_llm()
        self.load_s += time.perf_counter() - started

    def limited(self, selection: Selection | None) -> QAService:
        """This service, its loaded index and models shared, answering only from the selected
        documents."""
        return replace(self, selection=selection)

    def over(self, settings: Settings) -> QAService:
        """A service loaded over other folders (another collection), sharing this one's
        models."""
        service = QAService(settings, self.explicit_model, _embedder=self._embedder, _llm=self._llm)
        service.load()
        return service

    def load_llm(self) -> None:
        """Load the LLM (once), even before there is an index to answer from."""
        if self._llm is None:
            self._llm, notice = load_llm(self.settings.llm, explicit=self.explicit_model)
            if notice:
                self.notices.append(notice)
            self._llm.keep_prefix(prompt_start(self._llm.chat_format))
            import docqa.answer.chain  # noqa: F401  LangChain (~1 s) loads with the model, not in a question

    def load_for_serving(self) -> VectorStoreError | None:
        """Load the LLM, and the index when there is one yet (a server may start before its
        first ingest; each question tries again): why there is none, or None."""
        self.load_llm()
        try:
            self.refresh()
        except VectorStoreError as exc:
            return exc
        return None

    def refresh(self) -> bool:
        """Switch to the index generation an ingest has written since this one was loaded,
        without a restart. True when it switched (or loaded the first index)."""
        folder = self.settings.paths.vectorstore
        if self._store is not None and self._store.generation == current_generation(folder):
            return False
        self._open_index()
        return True

    def _open_index(self) -> None:
        embedding = self.settings.embedding
        embedder = self._embedder or Embedder(
            embedding.model, embedding.batch_size, runtime="numpy"
        )
        store = VectorStore.open(self.settings.paths.vectorstore, embedder.model_id)
        if store.manifest.embedding.dimension != embedder.dimension:
            raise VectorStoreError(
                f"the index in {store.folder} holds {store.manifest.embedding.dimension}-"
                f"dimension vectors, but {embedder.model_id} makes {embedder.dimension}: "
                "run `python ingest.py` to rebuild it"
            )
        embedder.load()
        self._store, self._embedder, self._library = store, embedder, Library.build(store)

    @property
    def store(self) -> VectorStore | None:
        """The index in use, if one is loaded."""
        return self._store

    @property
    def llm(self) -> LocalLLM:
        """The LLM, once load() has loaded it."""
        if self._llm is None:
            raise RuntimeError("the LLM is not loaded: call load() first")
        return self._llm

    @property
    def loaded_llm(self) -> LocalLLM | None:
        """The LLM if it is loaded."""
        return self._llm

    @property
    def reader(self) -> ReaderProfile:
        """How much the model reads: the profile for its size, from its file's header (the
        evidence profile when there is no model to read it from)."""
        if self._reader is None:
            self._reader = profile_for(self.settings, self.model_path, self.explicit_model)
        return self._reader

    @property
    def model_path(self) -> Path | None:
        return self._llm.path if self._llm else None

    @property
    def index_chunking(self) -> dict[str, int | bool | float]:
        """The chunk settings the loaded index was built with."""
        return dict(self._store.manifest.chunking) if self._store else {}

    def route(self, question: str) -> Route:
        """The documents of the library a question names (Route() when routing is off)."""
        self.load(with_llm=False)
        assert self._library is not None
        if self.settings.retrieval.routing == "off":
            return Route()
        return self._library.route(clean_question(question))

    def search(self, question: str, k: int | None = None, route: Route | None = None) -> list[Hit]:
        """The k chunks for the question, best first, from the documents it names."""
        self.load(with_llm=False)
        assert self._store is not None
        assert self._embedder is not None
        question = clean_question(question)
        route = route or self.route(question)
        vector = self._embedder.embed([question])[0]
        store = self._store
        within = store.mask(route.documents) if route.documents is not None else None
        only = store.mask(self._selected(store)) if self.selection is not None else None
        settings = self.settings.retrieval
        return retrieve(store, vector, question, k or self.reader.k, settings, within, only)

    def _selected(self, store: VectorStore) -> frozenset[int]:
        """The documents of the selection, or a UsageError saying what there is."""
        assert self.selection is not None
        chosen = frozenset(
            number
            for number, (entry, _, _) in enumerate(store.spans)
            if self.selection.matches(store.names_of(entry.source), entry.identity)
        )
        if not chosen:
            documents = [(entry.source, entry.identity) for entry, _, _ in store.spans]
            raise UsageError(nothing_selected(self.selection, documents))
        return chosen

    def retrieve_only(self, question: str, k: int | None = None) -> Answer:
        started = time.perf_counter()
        question = clean_question(question)
        hits = self.search(question, k)
        elapsed = time.perf_counter() - started
        timings = Timings(elapsed, None, None, elapsed)
        return Answer(question, None, sources_of(hits), timings, profile=self.reader.name)

    def prepare(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int | None = None,
        sampling: Sampling | None = None,
        query: str | None = None,
    ) -> Context:
        """Retrieve for the query (the question made stand-alone; the question itself when
        None); unless nothing relevant is found, pick the evidence and fit the prompt the model
        will read, with as many of the latest turns as there is room for."""
        self.load()
        question = clean_question(question)
        query = clean_question(query or question)
        llm, store = self.llm, self._store
        assert store is not None
        route = self.route(query)
        hits = self.search(query, k, route)
        if route.unknown:  # "Tesla's revenue" asked of a library without Tesla
            declined = f"The documents do not mention {' or '.join(route.unknown)}."
            return Context.declining(question, query, sources_of(hits), [], declined, route)
        if not hits or max(hit.score for hit in hits) < self.settings.retrieval.min_score:
            return Context.declining(question, query, sources_of(hits), [], ABSTENTION, route)
        neighbours = self.settings.retrieval.neighbours
        sources = sources_of(hits, [store.with_neighbours(h.chunk_id, neighbours) for h in hits])
        # Evidence comes from the documents the question names, when any of them was found
        # (routing by boost lets others in among the sources).
        named = [
            route.documents is not None and store.document_of(hit.chunk_id) in route.documents
            for hit in hits
        ]
        chosen = named if any(named) else [True] * len(hits)
        by_number = {s.n: s.text for s, keep in zip(sources, chosen, strict=True) if keep}
        settings = self.settings.answer
        evidence = select(
            query,
            by_number,
            self._embed,
            store.keywords.idf,
            settings.keyword_weight,
            set(route.years) or None,
        )
        if route.uncovered and not (evidence and route.stated_in(evidence[0].text)):
            # The period asked is in none of the organisation's documents, and the best
            # evidence (from another period's) does not give it either.
            declined = f"The documents do not cover {route.describe()}."
            return Context.declining(question, query, sources, evidence, declined, route)
        if self.reader.reads == "passages":
            texts = by_number
        else:
            texts = excerpts(by_number, evidence[: settings.evidence_sentences])
        plain = llm.chat_format.plain
        reading = [
            {"n": s.n, "source": s.source, "page": s.page, "text": plain(texts[s.n])}
            for s in sources
            if s.n in texts
        ]
        budget = llm.context_length - (sampling or llm.sampling).max_new_tokens
        fitted = fit_prompt(
            llm.chat_format,
            llm.count_tokens,
            question,
            reading,
            history,
            budget,
            self.reader.context_tokens,
        )
        numbers = {reading[i]["n"] for i in fitted.kept}
        return Context(
            question=question,
            query=query,
            sources=[s for s in sources if s.n in numbers or s.n not in texts],
            reading=[reading[i] for i in fitted.kept],
            evidence=evidence,
            prompt=fitted.prompt,
            dropped=len(fitted.dropped),
            history_dropped=fitted.turns_dropped,
            route=route,
        )

    def stream(
        self,
        question: str,
        *,
        history: Sequence[Turn] = (),
        k: int | None = None,
        sampling: Sampling | None = None,
        query: str | None = None,
    ) -> Generator[Event, None, None]:
        """Answer a question as events: sources, tokens as they are generated, the grounded
        answer, this request's timings — or an error. `query` is the stand-alone question to
        retrieve for (a follow-up made whole); `history` the conversation before it.

        Closing the stream early (Ctrl-C, a client gone) stops the generation at once."""
        from docqa.answer.chain import stream_chain

        started = time.perf_counter()
        try:
            self.load()
            sampling = sampling or self.llm.sampling
            context = self.prepare(question, history, k, sampling, query)
            retrieve_s = time.perf_counter() - started
            yield SourcesEvent(context.sources, context.query)
            if context.decline:
                elapsed = time.perf_counter() - started
                answer = self._answer(context, Timings(retrieve_s, None, None, elapsed))
                yield AnswerEvent(answer)
                yield TimingsEvent(answer.timings)
                return
            first_token_s = None
            result: ChainResult | None = None
            question = self.llm.chat_format.plain(context.question)
            chain = stream_chain(question, context.prompt, context.reading, self.llm, sampling)
            markers = MarkerFilter()  # a model repeating a marker passes it on as no token
            with closing(chain) as items:
                for item in items:
                    if isinstance(item, str):
                        if first_token_s is None:
                            first_token_s = time.perf_counter() - started
                        if text := markers.feed(item):
                            yield TokenEvent(text)
                    else:
                        result = item
            if text := markers.flush():
                yield TokenEvent(text)
            assert result is not None
            timings = Timings(
                retrieve_s,
                first_token_s,
                result.completion.seconds,
                time.perf_counter() - started,
            )
            answer = self._answer(context, timings, result)
            yield AnswerEvent(answer)
            yield TimingsEvent(answer.timings)
        except DocqaError as exc:
            yield ErrorEvent(exc)

    def ask(
        self,
        question: str,
        k: int | None = None,
        *,
        history: Sequence[Turn] = (),
        sampling: Sampling | None = None,
        query: str | None = None,
    ) -> Answer:
        """The whole answer at once: the event stream, consumed."""
        return final_answer(
            self.stream(question, history=history, k=k, sampling=sampling, query=query)
        )

    def _answer(
        self, context: Context, timings: Timings, result: ChainResult | None = None
    ) -> Answer:
        """The final answer: the model's text kept to what the passages it read support."""
        llm = self._llm
        answer = Answer(
            question=context.question,
            answer=context.declined,
            abstained=True,
            sources=_quoted(context, ""),
            timings=timings,
            query=context.query,
            dropped=context.dropped,
            history_dropped=context.history_dropped,
            model_path=llm.path if llm else None,
            backend=llm.backend if llm else None,
            profile=self.reader.name,
        )
        if result is None:
            return answer
        several = self._library is not None and len(self._library.identities) > 1
        policy = RevisionPolicy(self.settings.answer, self.reader.must_match_best, several)
        revised = policy.revise(result.answer, context)
        return replace(
            answer,
            answer=revised.text,
            abstained=revised.abstained,
            sources=_quoted(context, "" if revised.abstained else uncited(revised.text)),
            completion=result.completion,
            raw_answer=result.answer,
            revision=revised.revision,
            read=tuple(passage["text"] for passage in context.reading),
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        assert self._embedder is not None
        return self._embedder.embed(texts)


def _quoted(context: Context, answer: str) -> list[Source]:
    """The sources, each with the sentence the answer rests on (see evidence.quote)."""
    return [
        replace(source, quote=quote(source.text, answer, context.evidence, source.n))
        for source in context.sources
    ]


def loaded_service(
    settings: Settings,
    tell: Callable[[str], None],
    explicit_model: bool = False,
    with_llm: bool = True,
    serving: bool = False,
) -> QAService:
    """The service every front end uses, loaded, its notices told. `serving` (the API, a
    worker): the LLM, and the index when there is one yet — the first ingest makes one."""
    service = QAService(settings, explicit_model=explicit_model)
    if serving:
        missing = service.load_for_serving()
        if missing is not None:
            tell(f"{missing}; questions are refused until documents are ingested")
    else:
        service.load(with_llm=with_llm)
    for notice in service.notices:
        tell(notice)
    return service
