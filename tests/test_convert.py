"""`docqa convert`: GGML v3 llama files re-packed as GGUF. The copy's tensors are the source's
bytes, it tokenizes as ctransformers tokenizes the source and generates the same greedy tokens
through llama.cpp; bad input gets one line and leaves nothing behind; backend auto reads the
copy in place of the GGML file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from docqa.llm.chat_formats import LLAMA2_CHAT, LLAMA2_CHAT_TEMPLATE, unmarked
from docqa.llm.convert import convert, converted_path
from docqa.llm.ggml_file import BLOCKS, read_ggml_v3
from docqa.llm.models import PROMPT_SPEEDUP
from tests.fixtures.ggml import (
    GGML_TYPE_Q8_0,
    LlamaShape,
    sentencepiece_vocabulary,
    write_ggjt_llama,
)
from tests.fixtures.projects import DOCUMENTS, REPO, run_cli, run_probe

CORPUS = " ".join(page for pages in DOCUMENTS.values() for page in pages) + (
    " Revenue for the year ended 30 June 2022 was £583.2 million, up 18.9% on 2021's £494.1 "
    "million. Commercial revenue rose to £257.8 million; broadcasting fell to £215.3 million."
)
VOCABULARY = sentencepiece_vocabulary(CORPUS, 1000)
SHAPE = LlamaShape(n_vocab=len(VOCABULARY), n_embd=64, n_head=4, n_layer=2, n_mult=32)
GENERATED = 32  # greedy tokens compared per prompt
PROMPTS = 60


def ggml_model(folder: Path, type_name: str = "Q8_0") -> Path:
    kind = BLOCKS[type_name][0]
    path = folder / f"tiny-llama.ggmlv3.{type_name.lower()}.bin"
    return write_ggjt_llama(path, SHAPE, kind, VOCABULARY)


@pytest.mark.parametrize("type_name", list(BLOCKS))
def test_every_tensor_is_copied_byte_for_byte(tmp_path: Path, type_name: str) -> None:
    import gguf

    source = ggml_model(tmp_path, type_name)
    done = convert(source, converted_path(source))
    reader = gguf.GGUFReader(done.target)
    copies = {tensor.name: tensor for tensor in reader.tensors}
    originals = read_ggml_v3(source).tensors
    assert len(copies) == len(originals) == done.tensors == len(SHAPE.tensors())
    data = source.read_bytes()
    for (ggml_name, gguf_name, dims), original in zip(SHAPE.tensors(), originals, strict=True):
        assert original.name == ggml_name
        copy = copies[gguf_name]
        assert copy.tensor_type == original.kind
        assert tuple(int(n) for n in copy.shape) == tuple(reversed(dims))  # ne0 first in both
        expected = data[original.offset : original.offset + original.nbytes]
        assert bytes(copy.data.tobytes()) == expected


def test_the_copy_carries_llama_2_metadata_and_vocabulary(tmp_path: Path) -> None:
    import gguf

    source = ggml_model(tmp_path)
    reader = gguf.GGUFReader(convert(source, tmp_path / "copy.gguf").target)

    def value(key: str) -> object:
        return reader.fields[key].contents()

    assert value("general.architecture") == "llama"
    assert value("llama.context_length") == 4096
    assert value("llama.embedding_length") == SHAPE.n_embd
    assert value("llama.feed_forward_length") == SHAPE.n_ff
    assert value("llama.attention.head_count") == value("llama.attention.head_count_kv") == 4
    assert value("llama.rope.dimension_count") == SHAPE.n_embd // SHAPE.n_head
    assert value("general.file_type") == 7  # mostly Q8_0
    assert value("tokenizer.ggml.model") == "llama"
    assert (value("tokenizer.ggml.bos_token_id"), value("tokenizer.ggml.eos_token_id")) == (1, 2)
    assert value("tokenizer.chat_template") == LLAMA2_CHAT_TEMPLATE
    tokens, types = value("tokenizer.ggml.tokens"), value("tokenizer.ggml.token_type")
    assert isinstance(tokens, list)
    assert isinstance(types, list)
    assert tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert tokens[3 + 0x41] == "<0x41>"
    assert tokens[259] == "\u2581"
    assert "\u2581Brightwater" in tokens
    token_type = gguf.TokenType
    assert types[:3] == [token_type.UNKNOWN, token_type.CONTROL, token_type.CONTROL]
    assert set(types[3:259]) == {token_type.BYTE}
    assert set(types[259:]) == {token_type.NORMAL}
    assert value("tokenizer.ggml.scores") == pytest.approx([s for _, s in VOCABULARY])


def test_the_template_renders_llama_2_chat_as_docqa_does() -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    conversation = [
        {"role": "system", "content": "Answer from the passages."},
        {"role": "user", "content": "Who buys the juice?"},
        {"role": "assistant", "content": "Brightwater Foods."},
        {"role": "user", "content": "For how long?"},
    ]
    template = ImmutableSandboxedEnvironment().from_string(LLAMA2_CHAT_TEMPLATE)
    rendered = template.render(messages=conversation, bos_token="<s>", eos_token="</s>")
    assert rendered == "<s>" + unmarked(LLAMA2_CHAT.render(conversation))  # type: ignore[arg-type]


# Both engines in a fresh process (a native abort in ctransformers must fail the test, not
# kill pytest): the source through ctransformers, the copy through llama.cpp.
EQUIVALENCE = """
import json, sys
from pathlib import Path
from docqa.config import load_settings
from docqa.llm.ctransformers_backend import CTransformersEngine
from docqa.llm.llamacpp_backend import LlamaCppEngine
source, copy, texts, prompts, generated = sys.argv[1:6]
settings = load_settings(None, {"llm": {"temperature": 0, "repeat_penalty": 1.0,
                                        "context_length": 256, "threads": 1}})
engines = CTransformersEngine(Path(source), settings.llm), LlamaCppEngine(Path(copy), settings.llm)
texts, prompts = json.loads(texts), json.loads(prompts)
tokenized = [[engine.tokenize(t, special=s, bos=True) for engine in engines] for t, s in texts]
def greedy(engine, prompt):
    tokens = []
    for token in engine.generate(prompt, settings.llm.sampling):
        tokens.append(token)
        if len(tokens) == int(generated) or engine.is_end(token):
            return tokens
    return tokens
runs = [[greedy(engine, prompt) for engine in engines] for prompt in prompts]
print(json.dumps({"tokenized": tokenized, "runs": runs}))
"""


def equivalence(
    source: Path, copy: Path, texts: list[tuple[str, bool]], prompts: list[list[int]]
) -> dict[str, list[list[list[int]]]]:
    arguments = [json.dumps(texts), json.dumps(prompts), str(GENERATED)]
    return dict(run_probe(EQUIVALENCE, str(source), str(copy), *arguments))


def sample_texts(count: int) -> list[tuple[str, bool]]:
    """Sentences of the corpus, cut and joined at random, with digits, symbols, non-Latin
    script, runs of spaces and newlines, and control-token texts (read as control tokens only
    when `special`)."""
    rng = random.Random(7)
    words = CORPUS.split()
    extras = ["  ", "\n", "\n\n", "£", "—", "Ünïcødé", "日本語", "🙂", "[INST]", "<s>", "</s>", "x"]
    texts = []
    for index in range(count):
        start = rng.randrange(len(words))
        pieces = words[start : start + rng.randrange(1, 25)]
        for _ in range(rng.randrange(4)):
            pieces.insert(rng.randrange(len(pieces) + 1), rng.choice(extras))
        joiner = rng.choice([" ", "", " "])
        texts.append((rng.choice(["", " "]) + joiner.join(pieces), index % 5 == 0))
    return texts


@pytest.mark.slow
@pytest.mark.parametrize("type_name", list(BLOCKS))
def test_the_copy_tokenizes_and_generates_as_ctransformers_reads_the_source(
    tmp_path: Path, type_name: str
) -> None:
    source = ggml_model(tmp_path, type_name)
    copy = convert(source, converted_path(source)).target
    texts = sample_texts(200)
    prompts = [
        [1, *random.Random(n).sample(range(3, len(VOCABULARY)), 1 + n % 24)] for n in range(PROMPTS)
    ]
    found = equivalence(source, copy, texts, prompts)
    mismatches = [
        text
        for text, (ours, theirs) in zip(texts, found["tokenized"], strict=True)
        if ours != theirs
    ]
    assert not mismatches
    identical = sum(ours == theirs for ours, theirs in found["runs"])
    # The two ggml versions sum in different orders, so a near tie between the two likeliest
    # tokens may go either way: over 200 prompts per type, 6 of 1400 runs differed (F32 1,
    # F16 3, Q4_0 2, the others none).
    assert identical >= 0.9 * PROMPTS, f"{identical}/{PROMPTS} prompts gave the same tokens"
    assert all(len(ours) == GENERATED for ours, _ in found["runs"][:5])


def test_conversion_refuses_what_it_cannot_copy_in_one_line(tmp_path: Path) -> None:
    source = ggml_model(tmp_path)
    cases = {
        "truncated.bin": source.read_bytes()[: source.stat().st_size - 1000],
        "notes.bin": b"%PDF-1.7 not a model at all" * 10,
        "old.bin": b"tjgg" + (2).to_bytes(4, "little") + source.read_bytes()[8:],
        "kquant.bin": source.read_bytes(),
    }
    # the first 2-D tensor's type field becomes Q4_K (12), a type that has no lossless copy
    first = read_ggml_v3(source).tensors[0]
    header = source.read_bytes().index(first.name.encode()) - 4 * len(first.shape) - 4
    kquant = bytearray(cases["kquant.bin"])
    kquant[header : header + 4] = (12).to_bytes(4, "little")
    cases["kquant.bin"] = bytes(kquant)
    expected = {
        "truncated.bin": "cut short",
        "notes.bin": "not a GGML model file",
        "old.bin": "older format (ggjt v2)",
        "kquant.bin": "is Q4_K, which has no lossless GGUF copy",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = run_cli(
            "-m", "docqa", "convert", name, cwd=tmp_path, env={"PYTHONPATH": str(REPO)}
        )
        assert result.returncode != 0, name
        assert result.stderr.count("\n") == 1, result.stderr
        assert expected[name] in result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_dir()) == sorted(
        [source.name, *cases]
    )  # no GGUF, no partial file


def test_an_existing_output_is_replaced_only_with_force(tmp_path: Path) -> None:
    source = ggml_model(tmp_path)
    target = tmp_path / "tiny-llama.q8_0.gguf"
    target.write_bytes(b"keep me")
    refused = run_cli("-m", "docqa", "convert", source.name, cwd=tmp_path)
    assert refused.returncode == 2
    assert "--force" in refused.stderr
    assert target.read_bytes() == b"keep me"
    done = run_cli("-m", "docqa", "convert", source.name, "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"wrote {target}" in done.stdout
    assert "backend auto" in done.stdout
    assert target.read_bytes()[:4] == b"GGUF"


def test_too_little_free_space_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from docqa.errors import ModelError

    source = ggml_model(tmp_path)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=1000))
    with pytest.raises(ModelError, match=r"needs 0\.00 GB and .* has 0\.00 GB free"):
        convert(source, tmp_path / "copy.gguf")
    assert not list(tmp_path.glob("*.gguf"))
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.slow
def test_backend_auto_reads_the_copy_beside_the_ggml_file_and_says_so_once(
    tmp_path: Path, project: Path
) -> None:
    source = write_ggjt_llama(
        tmp_path / "tiny-llama.ggmlv3.q8_0.bin", SHAPE, GGML_TYPE_Q8_0, VOCABULARY
    )
    settings = {
        "DOCQA_LLM__MODEL": str(source),
        "DOCQA_PATHS__VECTORSTORE": str(project / "vectorstore"),
        "DOCQA_LLM__MAX_NEW_TOKENS": "4",
    }

    def ask() -> tuple[dict[str, str], str]:
        question = "When is the harvest festival?"
        result = run_cli("main.py", "--json", question, cwd=tmp_path, env=settings)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout)["model"]), result.stderr

    answer, said = ask()
    assert answer["backend"] == "ctransformers"
    assert "docqa convert" in said
    assert f"{PROMPT_SPEEDUP} faster" in said
    assert ask()[1] == ""  # the tip is shown once
    convert(source, converted_path(source))
    answer, said = ask()
    assert (answer["backend"], answer["file"]) == ("llamacpp", "tiny-llama.q8_0.gguf")
    assert "using tiny-llama.q8_0.gguf, the GGUF copy of" in said
    assert ask()[1] == ""
    # the original deleted once converted: the copy stands in for it
    source.unlink()
    answer, said = ask()
    assert answer["backend"] == "llamacpp"
    assert "not found, so using its GGUF copy tiny-llama.q8_0.gguf" in said
    # a GGML file replaced by another model: its old copy is not used in its place
    write_ggjt_llama(source, LlamaShape(), GGML_TYPE_Q8_0)
    answer, said = ask()
    assert answer["backend"] == "ctransformers"
    assert "is not a copy of" in said
