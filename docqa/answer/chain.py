"""The LangChain glue: our retriever and LLM as LangChain components in a RetrievalQA "stuff" chain.

LangChain is imported only by this module, and this module only when a question is answered,
so its moving APIs (RetrievalQA now lives in langchain-classic) stay behind `answer_with_chain`.
"""

from __future__ import annotations

import logging
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
    PASSAGE_SEPARATOR,
    PASSAGE_TEMPLATE,
)
from docqa.config import Sampling
from docqa.llm.engine import Completion, LocalLLM

# LangChain logs a warning for every exception a callback raises, even one it then re-raises
# on purpose: ours stops a generation whose reader went away, which is no warning.
logging.getLogger("langchain_core.callbacks.manager").setLevel(logging.ERROR)

Passage = dict[str, Any]  # n, source, page, text


@dataclass(frozen=True)
class ChainResult:
    answer: str
    passages: list[Passage]  # what the model read, numbered as in its prompt
    completion: Completion


def answer_with_chain(
    question: str,
    retrieve: Callable[[str], list[Passage]],
    llm: LocalLLM,
    template: str,
    sampling: Sampling,
    on_token: Callable[[str], None],
) -> ChainResult:
    """Run RetrievalQA ("stuff") on one question: `retrieve` is docqa's retrieval for the
    question the chain hands it, `template` the prompt with {context} and {question} slots, and
    every generated piece of text goes to `on_token` (which may raise to stop the chain)."""
    prompt = PromptTemplate(template=template, input_variables=["context", "question"])
    passage_prompt = PromptTemplate(
        template=PASSAGE_TEMPLATE, input_variables=["page_content", "n"]
    )
    recorder = _CompletionRecorder(on_token)
    with warnings.catch_warnings():
        # RetrievalQA is deprecated upstream, yet it is the chain this product is specified
        # around; the warning is addressed to us, not to our users.
        warnings.simplefilter("ignore", LangChainDeprecationWarning)
        chain = RetrievalQA.from_chain_type(
            llm=_LangChainLLM(model=llm, sampling=sampling),
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
    sampling: Any  # Sampling

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
        sampling = self.sampling.override(stop=(*self.sampling.stop, *(stop or ())))
        generations = []
        for prompt in prompts:
            completion = self.model.complete(prompt, sampling, on_text=on_text)
            generations.append(
                [Generation(text=completion.text, generation_info=asdict(completion))]
            )
        return LLMResult(generations=generations)


class _CompletionRecorder(BaseCallbackHandler):
    """Passes each new piece of text on, and keeps the token counts and timings of the
    chain's model call."""

    raise_error = True  # an exception from on_token (the reader went away) ends the chain

    def __init__(self, on_token: Callable[[str], None]) -> None:
        self.on_token = on_token
        self.completion: Completion | None = None

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self.on_token(str(token))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        info = response.generations[0][0].generation_info
        if info:
            self.completion = Completion(**info)
