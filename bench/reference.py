"""The reference pipeline the issues measure docqa against: LangChain's stock components at
their defaults, as a typical tutorial wires them. Needs `poetry install --with bench`.

PyPDFLoader -> RecursiveCharacterTextSplitter(500, 50) -> HuggingFaceEmbeddings
(all-MiniLM-L6-v2) -> FAISS.from_documents; then RetrievalQA ("stuff", k=2) over
langchain-community's LlamaCpp wrapper with its defaults (n_ctx 512, n_batch 8).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from docqa.answer.grounding import is_abstention
from docqa.answer.results import Answer, Source, Timings
from docqa.config import enforce_offline
from docqa.index.encoders.folder import resolve_model_dir
from docqa.index.store import Hit
from docqa.llm.models import demo_model_path


class ReferencePipeline:
    """Implements evaluation's QASystem: search() and ask()."""

    def __init__(self, k: int = 2, model: Path | None = None, root: Path | None = None) -> None:
        """`root`: sources are named by their path below it (else by their file name)."""
        enforce_offline()
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from langchain_community.embeddings import HuggingFaceEmbeddings

        self.k = k
        self.root = root
        self.model = model or demo_model_path()
        self._embeddings = HuggingFaceEmbeddings(
            model_name=str(resolve_model_dir("all-MiniLM-L6-v2"))
        )
        self._store: Any = None
        self._chain: Any = None

    def ingest(self, pdfs: list[Path]) -> dict[str, float]:
        """Index the PDFs; returns the seconds spent loading, splitting and embedding. A file
        PyPDFLoader cannot read (its exception would end the stock pipeline) is left out and
        counted."""
        from langchain_community.document_loaders import PyPDFLoader
        from langchain_community.vectorstores import FAISS
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        started = time.perf_counter()
        documents, unreadable = [], 0
        for pdf in pdfs:
            try:
                documents += PyPDFLoader(str(pdf)).load()
            except Exception:  # pypdf's own errors, e.g. LimitReachedError
                unreadable += 1
        loaded = time.perf_counter()
        splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
        chunks = splitter.split_documents(documents)
        split = time.perf_counter()
        self._store = FAISS.from_documents(chunks, self._embeddings)
        done = time.perf_counter()
        return {
            "load_s": loaded - started,
            "split_s": split - loaded,
            "embed_index_s": done - split,
            "total_s": done - started,
            "chunks": len(chunks),
            "unreadable_files": unreadable,
        }

    def load(self, index: Path) -> None:
        """The index an earlier ingest saved (FAISS.load_local unpickles: a benchmark's own
        file, never one docqa reads)."""
        from langchain_community.vectorstores import FAISS

        self._store = FAISS.load_local(
            str(index), self._embeddings, allow_dangerous_deserialization=True
        )

    def name(self, source: str) -> str:
        path = Path(source)
        return path.relative_to(self.root).as_posix() if self.root else path.name

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        found = self._store.similarity_search_with_score(question, k=k or self.k)
        # FAISS here is an L2 index over unit vectors: cosine = 1 - d^2 / 2.
        return [
            Hit(
                self.name(doc.metadata["source"]),
                int(doc.metadata["page"]) + 1,  # PyPDFLoader numbers pages from 0
                doc.page_content,
                1.0 - float(distance) / 2.0,
            )
            for doc, distance in found
        ]

    def ask(self, question: str, k: int | None = None) -> Answer:
        from langchain_classic.chains import RetrievalQA
        from langchain_community.llms import LlamaCpp

        if self._chain is None:
            llm = LlamaCpp(model_path=str(self.model), verbose=False)
            self._chain = RetrievalQA.from_chain_type(
                llm=llm,
                chain_type="stuff",
                retriever=self._store.as_retriever(search_kwargs={"k": k or self.k}),
                return_source_documents=True,
            )
        started = time.perf_counter()
        try:
            output = self._chain.invoke({"query": question})
            text, documents = output["result"].strip(), output["source_documents"]
        except ValueError as exc:  # e.g. the prompt does not fit its 512-token context
            text, documents = f"(failed: {exc})", []
        seconds = time.perf_counter() - started
        sources = [
            Source(
                n, self.name(d.metadata["source"]), int(d.metadata["page"]) + 1, d.page_content, 0.0
            )
            for n, d in enumerate(documents, start=1)
        ]
        return Answer(
            question,
            text,
            sources,
            Timings(0.0, None, seconds, seconds),
            abstained=is_abstention(text),
            read=tuple(d.page_content for d in documents),  # the "stuff" chain reads them all
        )
