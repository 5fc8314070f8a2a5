"""The LangChain glue: a RetrievalQA "stuff" chain over what docqa prepared.

docqa retrieves, fits and renders the prompt itself (docqa.answer.qa); the chain's retriever
hands over the prepared passages and its prompt the rendered text, so neither does work of
its own and the prompt sent is the one whose tokens were counted. The chain runs in a thread
of its own, its tokens handed to the caller as they come.

LangChain is imported only by this module, and this module only when a question is answered,
so its moving APIs (RetrievalQA now lives in langchain-classic) stay behind `stream_chain`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass
from typing import Any

from langchain_classic.chains import RetrievalQA
from langchain_core._api import LangChainDeprecationWarning
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.callbacks.manager import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import Generation, LLMResult
from langchain_core.prompts import PromptTemplate, StringPromptTemplate
from langchain_core.retrievers import BaseRetriever

from docqa.answer.prompts import Passage
from docqa.config import Sampling
from docqa.llm.engine import Completion, LocalLLM
from docqa.threads import Put, produced_beside

# LangChain logs a warning for every exception a callback raises, even one it then re-raises
# on purpose: ours stops a generation whose reader went away, which is no warning.
logging.getLogger("langchain_core.callbacks.manager").setLevel(logging.ERROR)


@dataclass(frozen=True)
class ChainResult:
    answer: str
    completion: Completion


def stream_chain(
    question: str, prompt: str, passages: list[Passage], llm: LocalLLM, sampling: Sampling
) -> Generator[str | ChainResult, None, None]:
    """RetrievalQA ("stuff") on one question whose `passages` and rendered `prompt` docqa
    prepared: the tokens as they are generated, then the result. Closing the iterator stops
    the chain at its next token and waits for it."""

    def run(put: Put[str | ChainResult]) -> None:
        put(_run(question, prompt, passages, llm, sampling, on_token=put))

    return produced_beside(run, "docqa-answer")


def _run(
    question: str,
    prompt: str,
    passages: list[Passage],
    llm: LocalLLM,
    sampling: Sampling,
    on_token: Callable[[str], None],
) -> ChainResult:
    recorder = _CompletionRecorder(on_token)
    with warnings.catch_warnings():
        # RetrievalQA is deprecated upstream, yet it is the chain this product is specified
        # around; the warning is addressed to us, not to our users.
        warnings.simplefilter("ignore", LangChainDeprecationWarning)
        chain = RetrievalQA.from_chain_type(
            llm=_LangChainLLM(model=llm, sampling=sampling),
            chain_type="stuff",
            retriever=_HandedPassages(passages=passages),
            chain_type_kwargs={
                "prompt": _HandedPrompt(rendered=prompt),
                "document_prompt": PromptTemplate.from_template("{page_content}"),
            },
        )
        output = chain.invoke({"query": question}, config={"callbacks": [recorder]})
    if recorder.completion is None:
        raise RuntimeError("the chain finished without calling the model")
    return ChainResult(output["result"], recorder.completion)


class _HandedPassages(BaseRetriever):
    """The passages docqa retrieved and fitted for the question."""

    passages: list[Passage]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(page_content=p["text"], metadata={"n": p["n"]}) for p in self.passages]


class _HandedPrompt(StringPromptTemplate):
    """The prompt docqa rendered from the same passages and question."""

    rendered: str

    def __init__(self, rendered: str) -> None:
        super().__init__(rendered=rendered, input_variables=["context", "question"])

    def format(self, **kwargs: Any) -> str:
        return self.rendered


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
