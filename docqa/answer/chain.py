"""The LangChain glue: our retriever and LLM as LangChain components in a RetrievalQA "stuff" chain.

LangChain is imported only by this module, and this module only when a question is answered,
so its moving APIs (RetrievalQA now lives in langchain-classic) stay behind `answer_with_chain`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from langchain_classic.chains import RetrievalQA
from langchain_core._api import LangChainDeprecationWarning
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.callbacks.manager import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever

from docqa.answer.prompts import (
    ANSWER_STOPS,
    PASSAGE_SEPARATOR,
    PASSAGE_TEMPLATE,
    qa_prompt_template,
)
from docqa.llm.engine import Completion, LocalLLM

Passage = dict[str, Any]  # n, source, page, text, score


@dataclass(frozen=True)
class ChainResult:
    answer: str
    passages: list[Passage]  # what the model read, numbered as in its prompt
    completion: Completion


def answer_with_chain(
    question: str, retrieve: Callable[[str], list[Passage]], llm: LocalLLM
) -> ChainResult:
    """Run RetrievalQA ("stuff") on one question; `retrieve` returns the passages that fit."""
    prompt = PromptTemplate(
        template=qa_prompt_template(llm.chat_format), input_variables=["context", "question"]
    )
    passage_prompt = PromptTemplate(
        template=PASSAGE_TEMPLATE, input_variables=["page_content", "n"]
    )
    recorder = _CompletionRecorder()
    with warnings.catch_warnings():
        # RetrievalQA is deprecated upstream, yet it is the chain this product is specified
        # around; the warning is addressed to us, not to our users.
        warnings.simplefilter("ignore", LangChainDeprecationWarning)
        chain = RetrievalQA.from_chain_type(
            llm=_LangChainLLM(model=llm),
            chain_type="stuff",
            retriever=_LangChainRetriever(retrieve=retrieve),
            return_source_documents=True,
            chain_type_kwargs={
                "prompt": prompt,
                "document_prompt": passage_prompt,
                "document_separator": PASSAGE_SEPARATOR,
            },
        )
        output = chain.invoke({"query": question}, config={"callbacks": [recorder]})
    if recorder.completion is None:
        raise RuntimeError("the chain finished without calling the model")
    passages = [{**doc.metadata, "text": doc.page_content} for doc in output["source_documents"]]
    return ChainResult(output["result"], passages, recorder.completion)


class _LangChainRetriever(BaseRetriever):
    retrieve: Callable[[str], list[Passage]]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(page_content=p["text"], metadata={k: v for k, v in p.items() if k != "text"})
            for p in self.retrieve(query)
        ]


class _LangChainLLM(BaseLLM):
    model: Any  # LocalLLM; Any because LangChain validates fields with pydantic

    @property
    def _llm_type(self) -> str:
        return f"docqa-{self.model.backend}"

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        on_text = run_manager.on_llm_new_token if run_manager else None
        generations = []
        for prompt in prompts:
            stops = (*ANSWER_STOPS, *(stop or ()))
            completion = self.model.complete(prompt, stop=stops, on_text=on_text)
            generations.append(
                [Generation(text=completion.text, generation_info=asdict(completion))]
            )
        return LLMResult(generations=generations)


class _CompletionRecorder(BaseCallbackHandler):
    """Keeps the token counts and timings of the chain's model call."""

    def __init__(self) -> None:
        self.completion: Completion | None = None

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        info = response.generations[0][0].generation_info
        if info:
            self.completion = Completion(**info)
