"""The question-answering service: load the index and models once, then answer any number of
questions, each as a stream of events that every front end (command line, chat, HTTP, worker)
renders its own way.

A question is first prepared into a context — retrieval, evidence, fitting into the model's
context with the conversation so far — then answered by the RetrievalQA chain, whose tokens
stream as they are generated, and finally grounded: checked against what the model read.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docqa.answer.evidence import Evidence, excerpts, select
from docqa.answer.figures import asks_for_figure, gives_figure, wrong_year
from docqa.answer.grounding import ABSTENTION, agrees, ground, uncited
from docqa.answer.profiles import ReaderProfile, profile_for
from docqa.answer.prompts import fit_passages, prompt_start, qa_prompt_template
from docqa.answer.results import (
    Answer,
    AnswerEvent,
    ErrorEvent,
    Event,
    Revision,
    Source,
    SourcesEvent,
    Timings,
    TimingsEvent,
    TokenEvent,
    Turn,
    final_answer,
)
from docqa.answer.retrieval import retrieve
from docqa.answer.routing import Library, Route
from docqa.config import Sampling, Settings
from docqa.errors import DocqaError, UsageError, VectorStoreError
from docqa.index.embeddings import Embedder
from docqa.index.store import Hit, VectorStore, current_generation
from docqa.llm.engine import LocalLLM
from docqa.llm.models import load_llm

if TYPE_CHECKING:
    import numpy as np

    from docqa.answer.chain import ChainResult


@dataclass(frozen=True)
class Context:
    """What one question is answered from, once retrieved and fitted."""

    question: str  # what the model is asked, as the user asked it
    query: str  # the stand-alone question retrieval and evidence used
    sources: list[Source]  # the retrieved chunks that fit, numbered as the model sees them
    reading: list[dict[str, Any]]  # what the model reads of them: n, source, page, text
    evidence: list[Evidence]  # every sentence of the sources, best first
    template: str  # the prompt with {context} and {question} slots, earlier turns included
    dropped: int = 0  # passages left out for room
    history_dropped: int = 0  # earlier turns left out for room
    decline: bool = False  # nothing relevant was found: answer without the LLM...
    declined: str = ABSTENTION  # ...with this
    route: Route = field(default_factory=Route)  # the documents the question names


class _Cancelled(Exception):
    """The reader of a stream went away: the generation stops."""


@dataclass
class QAService:
    """Loads what answering needs once; then answers any number of questions."""

    settings: Settings
    explicit_model: bool = False  # the model path came from --model: no demo fallback
    notices: list[str] = field(default_factory=list)
    load_s: float = 0.0
    _store: VectorStore | None = None
    _embedder: Embedder | None = None
    _llm: LocalLLM | None = None
    _reader: ReaderProfile | None = None
    _library: Library | None = None

    def load(self, with_llm: bool = True) -> None:
        """Open and verify the index and load the embedding model, and the LLM if asked."""
        started = time.perf_counter()
        if self._store is None:
            self._open_index()
        if with_llm:
            self.load_llm()
        self.load_s += time.perf_counter() - started

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
        self.load(with_llm=True)
        assert self._llm is not None
        return self._llm

    @property
    def loaded_llm(self) -> LocalLLM | None:
        """The LLM if it is loaded (without loading it)."""
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
        within = self._store.mask(route.documents) if route.documents is not None else None
        settings = self.settings.retrieval
        return retrieve(self._store, vector, question, k or self.reader.k, settings, within)

    def retrieve_only(self, question: str, k: int | None = None) -> Answer:
        started = time.perf_counter()
        question = clean_question(question)
        hits = self.search(question, k)
        elapsed = time.perf_counter() - started
        timings = Timings(elapsed, None, None, elapsed)
        return Answer(question, None, _sources(hits), timings, profile=self.reader.name)

    def prepare(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int | None = None,
        sampling: Sampling | None = None,
        query: str | None = None,
    ) -> Context:
        """Retrieve for the query (the question made stand-alone; the question itself when
        None); unless nothing relevant is found, pick the evidence and fit what the model will
        read, with as many of the latest turns as there is room for."""
        question = clean_question(question)
        query = clean_question(query or question)
        llm = self.llm
        store = self._store
        assert store is not None
        route = self.route(query)
        hits = self.search(query, k, route)
        if route.unknown:  # "Tesla's revenue" asked of a library without Tesla
            declined = f"The documents do not mention {' or '.join(route.unknown)}."
            return self._declined(question, query, _sources(hits), [], declined, route)
        if not hits or max(hit.score for hit in hits) < self.settings.retrieval.min_score:
            return self._declined(question, query, _sources(hits), [], ABSTENTION, route)
        neighbours = self.settings.retrieval.neighbours
        sources = _sources(hits, [store.with_neighbours(hit.chunk_id, neighbours) for hit in hits])
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
            return self._declined(question, query, sources, evidence, declined, route)
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
        template, kept, dropped, turns_dropped = self._fit(question, reading, history, budget)
        numbers = {reading[i]["n"] for i in kept}
        return Context(
            question=question,
            query=query,
            sources=[s for s in sources if s.n in numbers or s.n not in texts],
            reading=[reading[i] for i in kept],
            evidence=evidence,
            template=template,
            dropped=len(dropped),
            history_dropped=turns_dropped,
            route=route,
        )

    @staticmethod
    def _declined(
        question: str,
        query: str,
        sources: list[Source],
        evidence: list[Evidence],
        declined: str,
        route: Route,
    ) -> Context:
        """A context answered without the LLM, with `declined`."""
        return Context(
            question, query, sources, [], evidence, "", decline=True, declined=declined, route=route
        )

    def _fit(
        self, question: str, reading: list[dict[str, Any]], history: Sequence[Turn], budget: int
    ) -> tuple[str, list[int], list[int], int]:
        """The prompt template, the passages kept and dropped, and the number of earlier turns
        left out, for `budget` prompt tokens: turns make room (the oldest first) before
        passages do. Refuses when not even one passage fits."""
        llm = self.llm
        for start in range(len(history) + 1):
            template = qa_prompt_template(llm.chat_format, history[start:])
            last_try = start == len(history)
            try:
                kept, dropped = fit_passages(
                    llm.chat_format.plain(question),
                    reading,
                    template,
                    llm.count_tokens,
                    budget,
                    self.reader.context_tokens,
                )
            except UsageError:  # the question and these turns alone are too long
                if last_try:
                    raise
                continue
            if not dropped or last_try:
                break
        if not kept:
            raise UsageError(
                f"none of the retrieved passages fits the {budget} tokens the model has for a "
                "prompt: shorten the question, lower --max-tokens, or raise llm.context_length"
            )
        return template, kept, dropped, start

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
        started = time.perf_counter()
        try:
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
            with closing(self._run_chain(context, sampling)) as items:
                for item in items:
                    if isinstance(item, str):
                        if first_token_s is None:
                            first_token_s = time.perf_counter() - started
                        yield TokenEvent(item)
                    else:
                        result = item
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

    def _run_chain(
        self, context: Context, sampling: Sampling
    ) -> Generator[str | ChainResult, None, None]:
        """The chain's tokens as it generates them, then its result. The chain runs in a
        thread of its own; closing this generator stops it at its next token and waits."""
        from docqa.answer.chain import answer_with_chain

        items: queue.Queue[tuple[str, Any]] = queue.Queue()
        closed = threading.Event()

        def on_token(text: str) -> None:
            if closed.is_set():
                raise _Cancelled
            items.put(("token", text))

        def retrieve_passages(question: str) -> list[dict[str, Any]]:
            """docqa's retrieval for the question the chain hands over: the prepared passages
            when it is the question they were prepared for (its stand-alone form retrieved)."""
            plain = self.llm.chat_format.plain
            prepared = context if question == plain(context.question) else self.prepare(question)
            return prepared.reading

        def work() -> None:
            try:
                question = self.llm.chat_format.plain(context.question)
                result = answer_with_chain(
                    question, retrieve_passages, self.llm, context.template, sampling, on_token
                )
                items.put(("result", result))
            except BaseException as exc:  # handed to the reader, which raises it
                items.put(("error", exc))

        worker = threading.Thread(target=work, name="docqa-answer", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = items.get()
                if kind == "error":
                    if isinstance(value, _Cancelled):
                        return
                    raise value
                yield value
                if kind == "result":
                    return
        finally:
            closed.set()
            worker.join()

    def _answer(
        self, context: Context, timings: Timings, result: ChainResult | None = None
    ) -> Answer:
        """The final answer: the model's text kept to what the passages it read support."""
        llm = self._llm
        common: dict[str, Any] = {
            "question": context.question,
            "sources": context.sources,
            "timings": timings,
            "query": context.query,
            "dropped": context.dropped,
            "history_dropped": context.history_dropped,
            "model_path": llm.path if llm else None,
            "backend": llm.backend if llm else None,
            "profile": self.reader.name,
        }
        if result is None:
            return Answer(answer=context.declined, abstained=True, **common)
        read = {passage["n"]: passage["text"] for passage in result.passages}
        grounded = ground(result.answer, context.query, read)
        text, abstained = grounded.text, grounded.abstained
        revision: Revision | None = "declined" if abstained else None
        settings = self.settings.answer
        if not abstained and not self._answers(text, context):
            text, abstained, revision = ABSTENTION, True, "declined"
        if abstained and settings.quote_unsupported and (quote := self._quote(context)):
            text, abstained, revision = quote, False, "quoted"
        if revision is None and text != result.answer:
            revision = (
                "trimmed"
                if grounded.dropped or uncited(text) != uncited(result.answer)
                else "cited"
            )
        if not abstained and (document := self._document_used(text, context)):
            text = f"{text} (From {document}.)"
        return Answer(
            answer=text,
            abstained=abstained,
            completion=result.completion,
            raw_answer=result.answer,
            revision=revision,
            read=tuple(read.values()),
            **common,
        )

    def _answers(self, answer: str, context: Context) -> bool:
        """Whether a grounded answer answers: a figure when the question asks for one, and
        nothing against the best evidence sentence — no figure it states for another year
        than asked, and, when the profile wants it, what it says."""
        if asks_for_figure(context.query) and not gives_figure(uncited(answer), context.query):
            return False
        best = context.evidence[0].text if context.evidence else ""
        asked = set(context.route.years) or None
        if best and wrong_year(uncited(answer), best, context.query, asked):
            return False
        agreed = not best or agrees(answer, best, context.query)
        return agreed or not self.reader.must_match_best

    def _quote(self, context: Context) -> str | None:
        """The best evidence sentences as an answer, when they are good enough to stand for
        one: the best scores at least answer.min_quote_score and, when the question asks for a
        figure, they give one."""
        settings = self.settings.answer
        quoted = context.evidence[: settings.evidence_sentences]
        if not quoted or quoted[0].score < settings.min_quote_score:
            return None
        text = " ".join(e.text for e in quoted)
        if asks_for_figure(context.query) and not gives_figure(text, context.query):
            return None
        return "The documents say: " + " ".join(f'"{e.text}" [{e.n}]' for e in quoted)

    def _document_used(self, answer: str, context: Context) -> str | None:
        """Which document an answer comes from, when the question named none and the library
        holds several: the document of its first citation."""
        if context.route.narrows or self._library is None or len(self._library.identities) < 2:
            return None
        cited = re.search(r"\[(\d+)\]", answer)
        source = next((s for s in context.sources if cited and s.n == int(cited[1])), None)
        if source is None or source.document is None:
            return None
        return source.document.label

    def _embed(self, texts: list[str]) -> np.ndarray:
        assert self._embedder is not None
        return self._embedder.embed(texts)


def _sources(hits: list[Hit], texts: list[str] | None = None) -> list[Source]:
    """Hits as numbered sources, with their passage texts when those differ from the chunk's."""
    return [
        Source(
            n,
            hit.source,
            hit.page,
            texts[n - 1] if texts else hit.text,
            hit.score,
            hit.also,
            hit.ocr,
            hit.document,
        )
        for n, hit in enumerate(hits, start=1)
    ]


def clean_question(question: str) -> str:
    question = " ".join(question.split())
    if not question:
        raise UsageError('the question is empty: ask something, e.g. "What is ...?"')
    return question
