"""A cited page as an image with the passage highlighted: found by the text layer's character
boxes, or by OCR on a scanned page; rendered in a reading process, within bounds."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from docqa.config import LoadingSettings
from docqa.errors import UsageError
from docqa.index.pageview import MAX_PIXELS, NoSuchPage, PageRenderer, render_page
from tests.fixtures.pdfs import scanned_line, tinted, words_box, write_pdf
from tests.fixtures.projects import FACTS, run_cli, write_documents
from tests.fixtures.services import serving, wait_for_job

PAGES = [
    "Contracts\nThe cooperative sells its juice to Brightwater Foods. The minimum guarantee "
    "payable by Brightwater Foods over the five-year term of the agreement is £18 million.\n"
    "Deliveries are made every Tuesday from the cider barn.",
    "Harvest\nThe annual harvest festival takes place on 14 September.",
]
QUOTE = (
    "The minimum guarantee payable by Brightwater Foods over the five-year term of the "
    "agreement is £18 million."
)


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pdf(tmp_path_factory.mktemp("pages") / "orchard.pdf", PAGES)


def test_the_quoted_figure_is_highlighted_where_it_stands(pdf: Path) -> None:
    image = render_page(pdf, 1, 110, QUOTE)
    assert (image.pages, image.ocr) == (2, False)
    figure = words_box(pdf, 1, "£18 million", 110)
    assert tinted(image.png, figure) > 0.9
    assert any(_inside(figure, box) for box in image.highlights)
    elsewhere = words_box(pdf, 1, "every Tuesday", 110)  # on the page, not in the quote
    assert tinted(image.png, elsewhere) == 0


def test_the_quote_is_found_whatever_its_line_breaks_and_case(pdf: Path) -> None:
    quote = "the MINIMUM guarantee\npayable by Brightwater-Foods over the five year term"
    image = render_page(pdf, 1, 72, quote)
    assert tinted(image.png, words_box(pdf, 1, "minimum guarantee", 72)) > 0.9


def test_words_not_on_the_page_highlight_nothing(pdf: Path) -> None:
    image = render_page(pdf, 2, 72, QUOTE)
    assert image.highlights == []
    picture = Image.open(io.BytesIO(image.png))
    assert picture.size == (image.width, image.height)


@pytest.mark.slow
def test_on_a_scanned_page_the_passage_is_found_by_ocr(tmp_path: Path) -> None:
    text = "Supplies\nA relief boat brings fresh water, diesel and letters every second Thursday."
    scan = write_pdf(tmp_path / "scan.pdf", [text], images=frozenset({1}))
    image = render_page(scan, 1, 100, "brings fresh water, diesel and letters")
    assert image.ocr
    assert len(image.highlights) == 1
    _, top, _, bottom = scanned_line(1, 100)  # the sentence, below the heading
    left, box_top, right, box_bottom = image.highlights[0]
    assert box_top <= top + 4
    assert box_bottom >= bottom - 4
    assert tinted(image.png, (left + 2, top, right - 2, bottom)) > 0.5
    assert tinted(image.png, (left, top - 60, right, top - 40)) == 0  # the heading above


def test_a_page_past_the_last_and_a_huge_dpi_are_refused(pdf: Path) -> None:
    renderer = PageRenderer(LoadingSettings())
    try:
        with pytest.raises(NoSuchPage, match="there is no page 10000: the document has 2"):
            renderer.render(pdf, 10000)
        with pytest.raises(UsageError, match="dpi must be from 36 to 300"):
            renderer.render(pdf, 1, dpi=5000)
        shown = renderer.render(pdf, 1, quote=QUOTE)  # in the reading process
        assert shown.highlights
        assert renderer.render(pdf, 1, quote=QUOTE) is shown
    finally:
        renderer.close()


def test_a_page_the_size_of_a_field_is_rendered_within_bounds(tmp_path: Path) -> None:
    huge = write_pdf(tmp_path / "huge.pdf", ["A very large page."], page_size=(14400, 14400))
    image = render_page(huge, 1, 300, "")
    rounding = image.width + image.height + 1  # each side rounded up to a whole pixel
    assert image.width * image.height <= MAX_PIXELS + rounding


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return all(o <= i + 1 for o, i in zip(outer[:2], inner[:2], strict=True)) and all(
        o >= i - 1 for o, i in zip(outer[2:], inner[2:], strict=True)
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    project = tmp_path_factory.mktemp("served")
    write_documents(project / "data", broken=False)
    (project / "data" / "notes.txt").write_text("The orchard shop opens at nine.\n")
    assert run_cli("ingest.py", cwd=project).returncode == 0
    with serving(project) as (url, _):
        yield url, project


@pytest.mark.slow
def test_every_pdf_source_carries_the_url_of_its_page_highlighted(
    served: tuple[str, Path],
) -> None:
    url, project = served
    question, answer, source, page = FACTS[0]
    asked = httpx.post(f"{url}/v1/ask", json={"question": question}, timeout=120).json()
    first = asked["sources"][0]
    assert (first["source"], first["page"]) == (source, page)
    assert first["view"].startswith("/v1/documents/")
    assert f"/pages/{page}?quote=" in first["view"]
    shown = httpx.get(url + first["view"], timeout=120)
    assert shown.status_code == 200
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["x-docqa-pages"] == "3"
    assert json.loads(shown.headers["x-docqa-highlights"])
    dpi = 110  # the default
    assert tinted(shown.content, words_box(project / "data" / source, page, answer, dpi)) > 0.9
    streamed = httpx.post(f"{url}/v1/ask?stream=true", json={"question": question}, timeout=120)
    answered = [line for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert json.loads(answered[-2][6:])["sources"][0]["view"] == first["view"]


@pytest.mark.slow
def test_pages_past_the_end_huge_dpis_and_other_formats_are_refused(
    served: tuple[str, Path],
) -> None:
    url, _ = served
    listing = httpx.get(f"{url}/v1/documents").json()["data"]
    ids = {document["name"]: document["id"] for document in listing}
    pages = f"{url}/v1/documents/{ids['orchard.pdf']}/pages"
    past = httpx.get(f"{pages}/10000")
    assert past.status_code == 404
    assert past.json()["error"]["message"] == "there is no page 10000: the document has 3"
    huge = httpx.get(f"{pages}/1", params={"dpi": 5000})
    assert huge.status_code == 400
    assert "dpi" in huge.json()["error"]["message"]
    assert httpx.get(f"{pages}/0").status_code == 400
    text = httpx.get(f"{url}/v1/documents/{ids['notes.txt']}/pages/1")
    assert text.status_code == 400
    assert text.json()["error"]["message"] == "notes.txt has no pages: it is not a PDF"
    assert httpx.get(f"{url}/v1/documents/{'0' * 64}/pages/1").status_code == 404
    assert httpx.get(f"{url}/v1/documents/..%2F..%2Fetc/pages/1").status_code == 404


@pytest.mark.slow
def test_a_deleted_documents_pages_answer_404(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    pdf = write_pdf(tmp_path / "leaflet.pdf", ["Leaflet\nThe leaflet lists 12 walks."])
    with pdf.open("rb") as file:
        uploaded = httpx.post(f"{url}/v1/documents", files={"file": ("leaflet.pdf", file)}).json()
    assert wait_for_job(url, uploaded["job_id"])["status"] == "done"
    page = f"{url}/v1/documents/{uploaded['id']}/pages/1"
    assert httpx.get(page).status_code == 200
    deleted = httpx.delete(f"{url}/v1/documents/{uploaded['id']}").json()
    assert httpx.get(page).status_code == 404  # gone at once, before the ingest that follows
    assert wait_for_job(url, deleted["job_id"])["status"] == "done"
    assert httpx.get(page).status_code == 404
