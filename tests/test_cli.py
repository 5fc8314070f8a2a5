"""The two commands as a user runs them: real PDFs, the real MiniLM, the real SmolLM2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docqa.index.encoders.openvino_runtime import cpu_has_bf16
from docqa.index.generations import CURRENT
from docqa.index.manifest import MANIFEST
from tests.fixtures.pdfs import tinted, words_box, write_pdf
from tests.fixtures.projects import FACTS, REPO, ingested_project, run_cli, write_documents

pytestmark = pytest.mark.slow


def ask_json(project: Path, question: str, *args: str, env: dict[str, str] | None = None) -> dict:
    result = run_cli("main.py", question, "--json", *args, cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1, "--json prints exactly one line"
    return json.loads(result.stdout)


def current_manifest(vectorstore: Path) -> Path:
    return vectorstore / (vectorstore / CURRENT).read_text().strip() / MANIFEST


def test_ingest_reports_counts_and_skips_the_broken_pdf(tmp_path: Path) -> None:
    write_documents(tmp_path / "data")
    result = run_cli("ingest.py", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Indexed 2 files (5 pages," in result.stdout
    assert "broken.pdf: not a readable PDF" in result.stdout
    assert "Traceback" not in result.stderr
    manifest = json.loads(current_manifest(tmp_path / "vectorstore").read_text())
    assert manifest["embedding"] == {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "dimension": 384,
        "max_tokens": 254,
        "precision": "bf16" if cpu_has_bf16() else "fp32",
    }
    assert [f["source"] for f in manifest["files"]] == ["orchard.pdf", "travel/ferries.pdf"]
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert manifest["created_at"]
    assert manifest["chunking"]["chunk_tokens"] == 200


def test_vectorstore_holds_no_pickle(project: Path) -> None:
    import faiss
    import numpy as np

    for path in (project / "vectorstore").rglob("*"):
        if not path.is_file():
            continue
        assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"
        if path.suffix in {".json", ".jsonl", ".doc"}:
            for line in (
                [path.read_text()] if path.suffix == ".json" else path.read_text().splitlines()
            ):
                json.loads(line)
        elif path.suffix == ".faiss":
            assert faiss.read_index(str(path)).ntotal > 0
        elif path.suffix == ".npy":
            assert np.load(path, allow_pickle=False).dtype != object  # raises on pickles
        else:
            assert path.name in {"CURRENT", ".lock"}, path


@pytest.mark.parametrize(("question", "answer", "source", "page"), FACTS)
def test_retrieve_only_finds_the_page_of_each_fact(
    project: Path, question: str, answer: str, source: str, page: int
) -> None:
    result = ask_json(project, question, "--retrieve-only", "--k", "2")
    assert "answer" not in result
    top = result["sources"][0]
    assert (top["source"], top["page"]) == (source, page)
    assert answer in top["text"]
    assert result["model"] == {"file": None, "backend": None, "profile": "evidence"}
    assert result["timings"]["generate_s"] is None


def test_json_answer_schema_and_grounded_answer(project: Path) -> None:
    question, answer, source, page = FACTS[0]
    result = ask_json(project, question)
    assert set(result) >= {"question", "answer", "sources", "timings", "model"}
    assert result["question"] == question
    assert answer in result["answer"]
    assert result["sources"], "an answer lists its sources"
    for item in result["sources"]:
        assert set(item) >= {"source", "page", "text", "score"}
        assert isinstance(item["page"], int)
        assert item["page"] >= 1
        assert -1.0 <= item["score"] <= 1.0
    assert (result["sources"][0]["source"], result["sources"][0]["page"]) == (source, page)
    timings = result["timings"]
    assert set(timings) == {
        "load_s",
        "retrieve_s",
        "first_token_s",
        "generate_s",
        "total_s",
        "process_s",
    }
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    assert timings["retrieve_s"] < timings["first_token_s"] < timings["total_s"]
    assert timings["total_s"] >= timings["generate_s"]  # this question's, loading apart
    assert timings["process_s"] >= timings["load_s"] + timings["total_s"]
    assert result["revised"] is (result["answer"] != result["raw_answer"])
    assert result["model"]["backend"] == "llamacpp"
    assert result["model"]["file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    usage = result["usage"]
    assert usage["prompt_tokens"] > 50
    assert usage["completion_tokens"] > 0


def test_text_output_has_answer_sources_and_timings(project: Path) -> None:
    question, answer, source, page = FACTS[0]
    result = run_cli("main.py", question, cwd=project)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Answer: ")
    assert answer in out.splitlines()[0]
    assert f"[1] {source}, page {page} (score " in out
    assert "Time: load " in out
    assert " | retrieval " in out
    assert " | generation " in out
    assert "prompt tokens" in out
    assert "tokens/s" in out
    assert " | total " in out
    assert "not found, so using the demo model SmolLM2-135M-Instruct" in result.stderr
    assert "Llama-2-7B-Chat" in result.stderr

    quiet = run_cli("main.py", question, "--no-sources", cwd=project)
    assert quiet.returncode == 0
    assert "Sources:" not in quiet.stdout


def test_open_writes_the_cited_page_with_the_figure_highlighted(project: Path) -> None:
    question, answer, source, page = FACTS[0]
    shown = run_cli("main.py", question, "--open", "1", "--no-sources", cwd=project)
    assert shown.returncode == 0, shown.stderr
    written = Path(shown.stdout.split("Page image: ")[1].strip())
    assert written.name == f"{Path(source).stem}-page-{page}.png"
    figure = words_box(project / "data" / source, page, answer, 150)
    assert tinted(written.read_bytes(), figure) > 0.9
    assert (
        tinted(written.read_bytes(), words_box(project / "data" / source, page, "Contracts", 150))
        == 0
    )
    missing = run_cli("main.py", question, "--open", "9", "--no-sources", cwd=project)
    assert missing.returncode == 2
    assert "error: there is no source [9]: the answer has" in missing.stderr


def test_ctransformers_answers_through_the_whole_pipeline(project: Path, tiny_ggml: Path) -> None:
    result = ask_json(
        project, FACTS[0][0], "--model", str(tiny_ggml), env={"DOCQA_LLM__MAX_NEW_TOKENS": "8"}
    )
    assert result["model"] == {
        "file": tiny_ggml.name,
        "backend": "ctransformers",
        "profile": "evidence",
    }
    assert result["usage"]["completion_tokens"] > 0  # random weights: tokens, not sense
    assert isinstance(result["answer"], str)


def test_answers_without_any_network(project: Path) -> None:
    no_network = ("unshare", "--map-root-user", "--net")  # a namespace with no interfaces
    probe = subprocess.run([*no_network, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.decode().strip()}")
    question, answer, _, _ = FACTS[0]
    result = run_cli("main.py", question, "--json", cwd=project, wrapper=no_network)
    assert result.returncode == 0, result.stderr
    assert answer in json.loads(result.stdout)["answer"]


def test_no_documents_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = run_cli("ingest.py", cwd=tmp_path)
    assert result.returncode == 4
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: no documents in ")


def test_overlap_of_half_a_chunk_is_an_invalid_setting(tmp_path: Path) -> None:
    write_documents(tmp_path / "data")
    (tmp_path / "config.yml").write_text("chunking:\n  chunk_tokens: 120\n")
    result = run_cli("ingest.py", cwd=tmp_path, env={"DOCQA_CHUNKING__OVERLAP_TOKENS": "60"})
    assert result.returncode == 7, result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: chunking.overlap_tokens is 60, but it must be less")
    assert "chunking.chunk_tokens (120): set it to at most 59" in result.stderr
    assert not (tmp_path / "vectorstore").exists(), "nothing was done"


def test_only_broken_pdfs_fail_without_an_index(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "empty.pdf").write_bytes(b"")
    (data / "notes.pdf").write_text("this is a text file with a .pdf name")
    result = run_cli("ingest.py", cwd=tmp_path)
    assert result.returncode == 4
    assert "empty.pdf: empty file (0 bytes)" in result.stderr
    assert "notes.pdf: not a PDF (no %PDF header" in result.stderr
    assert not (tmp_path / "vectorstore" / CURRENT).exists()


def test_missing_index_says_run_ingest(tmp_path: Path) -> None:
    result = run_cli("main.py", "anything?", cwd=tmp_path)
    assert result.returncode == 5
    assert "run `python ingest.py` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_index_from_another_embedding_model_is_refused(project: Path, tmp_path: Path) -> None:
    vectorstore = tmp_path / "vs"
    shutil.copytree(project / "vectorstore", vectorstore)
    manifest_path = current_manifest(vectorstore)
    manifest = json.loads(manifest_path.read_text())
    manifest["embedding"]["model"] = "sentence-transformers/all-mpnet-base-v2"
    manifest_path.write_text(json.dumps(manifest))
    result = run_cli("main.py", "anything?", "--vectorstore", str(vectorstore), cwd=project)
    assert result.returncode == 5
    assert "built with embedding model sentence-transformers/all-mpnet-base-v2" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_local_embedding_model_moves_with_the_project(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    from docqa.index.encoders.folder import resolve_model_dir

    project = tmp_path / "project"
    shutil.copytree(resolve_model_dir("all-MiniLM-L6-v2"), project / "models" / "minilm")
    (project / "config.yml").write_text("embedding:\n  model: models/minilm\n")
    ingested_project(project)
    model_id = json.loads(current_manifest(project / "vectorstore").read_text())["embedding"]
    assert str(tmp_path) not in model_id["model"]

    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    project.rename(moved)
    again = run_cli("ingest.py", cwd=moved)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Index is up to date: 2 files"), again.stdout
    question, answer, source, page = FACTS[1]
    top = ask_json(moved, question, "--retrieve-only")["sources"][0]
    assert (top["source"], top["page"], answer in top["text"]) == (source, page, True)

    # Another model in the same place is still refused.
    weights = moved / "models" / "minilm" / "model.safetensors"
    tensors = load_file(str(weights))
    save_file({name: value * 0.5 for name, value in tensors.items()}, str(weights))
    refused = run_cli("main.py", question, "--retrieve-only", cwd=moved)
    assert refused.returncode == 5
    assert "was built with embedding model minilm@" in refused.stderr


def test_missing_model_flag_is_an_error_not_a_fallback(project: Path) -> None:
    result = run_cli("main.py", "anything?", "--model", "models/nope.gguf", cwd=project)
    assert result.returncode == 6
    assert "nope.gguf not found" in result.stderr


def test_unreadable_model_is_refused(project: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all")
    result = run_cli("main.py", "anything?", "--model", str(junk), cwd=project)
    assert result.returncode == 6
    assert "is not a GGUF or GGML model file" in result.stderr

    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 10)
    result = run_cli("main.py", "anything?", "--model", str(truncated), cwd=project)
    assert result.returncode == 6
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli("main.py", "anything?", "--debug", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "VectorStoreError" in result.stderr


def test_incremental_ingest_summary_and_status(tmp_path: Path) -> None:
    data = write_documents(tmp_path / "data")
    assert run_cli("ingest.py", cwd=tmp_path).returncode == 3
    write_pdf(data / "new.pdf", ["The lighthouse keeper rings the bell at dawn."])
    (data / "orchard.pdf").rename(data / "orchard-2025.pdf")
    status = run_cli("-m", "docqa", "status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "Files:       2 indexed, 1 failed" in status.stdout
    assert "Chunks:      5" in status.stdout
    assert "2 new, 1 removed; run `python ingest.py`" in status.stdout
    assert "broken.pdf: not a readable PDF" in status.stdout

    result = run_cli("ingest.py", cwd=tmp_path)
    assert result.returncode == 3, "a file still fails"
    assert "added 1, moved 1, unchanged 1, failed 1" in result.stdout
    assert "moved: orchard.pdf -> orchard-2025.pdf" in result.stdout
    (data / "broken.pdf").unlink()
    assert run_cli("ingest.py", cwd=tmp_path).returncode == 0
    status = json.loads(run_cli("-m", "docqa", "status", "--json", cwd=tmp_path).stdout)
    assert (status["indexed_files"], status["chunks"], status["failed"]) == (3, 6, [])
    assert status["pending"] == {"new": [], "changed": [], "removed": [], "corrected": []}
    assert 0 < status["index_bytes"] < status["total_bytes"]


def test_status_with_the_data_folder_gone_says_so(tmp_path: Path) -> None:
    ingested_project(tmp_path)
    (tmp_path / "data").rename(tmp_path / "data-elsewhere")
    status = run_cli("-m", "docqa", "status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "Files:       2 indexed" in status.stdout
    assert f"Data folder: {tmp_path / 'data'}: not found" in status.stdout
    assert "removed" not in status.stdout
    assert "  orchard.pdf: docqa test document" in status.stdout  # indexed, nothing pending
    as_json = json.loads(run_cli("-m", "docqa", "status", "--json", cwd=tmp_path).stdout)
    assert as_json["data_folder_missing"] is True
    assert as_json["pending"] == {"new": [], "changed": [], "removed": [], "corrected": []}
    assert as_json["indexed_files"] == 2
    (tmp_path / "data-elsewhere").rename(tmp_path / "data")
    present = json.loads(run_cli("-m", "docqa", "status", "--json", cwd=tmp_path).stdout)
    assert present["data_folder_missing"] is False


def test_status_without_an_index_says_run_ingest(tmp_path: Path) -> None:
    result = run_cli("-m", "docqa", "status", cwd=tmp_path)
    assert result.returncode == 5
    assert "run `python ingest.py` first" in result.stderr


def test_process_start_is_when_python_started() -> None:
    probe = (
        "import time; time.sleep(0.6)\n"
        "from docqa.cli.common import process_start\n"
        "print(time.perf_counter() - process_start())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert 0.6 <= float(result.stdout) < 5.0


def test_output_cut_short_by_its_reader_is_no_error(project: Path, tmp_path: Path) -> None:
    """`main.py --questions-file ... | head -1`: the first answer arrives, and the answers
    still being written when the reader goes away end the run quietly, with no error."""
    questions = tmp_path / "questions.txt"
    count = 3000  # far more output than a pipe holds, so writing must outlive the reader
    questions.write_text("\n".join(FACTS[n % len(FACTS)][0] for n in range(count)) + "\n")
    command = [sys.executable, str(REPO / "main.py"), "--questions-file", str(questions)]
    asking = subprocess.Popen(
        [*command, "--retrieve-only", "--json", "--k", "4"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert asking.stdout is not None
    first = asking.stdout.readline()
    assert json.loads(first)["question"] == FACTS[0][0]
    assert len(first) * count > 16 * 65_536, "the rest would not fit in the pipe"
    asking.stdout.close()
    _, errors = asking.communicate(timeout=300)
    assert asking.returncode == 0, errors
    assert "error" not in errors
