"""The web page `docqa serve` serves at /, in a real headless Chromium (Debian's, driven by
Playwright): upload, indexing, a streamed answer, citations, stop, k, a new conversation, the
API key, busy and down servers, markup inside a PDF shown as text, checked documents and
collections. Screenshots at desktop
and phone widths are saved in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.fixtures.formats import pptx_bytes
from tests.fixtures.pdfs import scanned_line, tinted, words_box, write_pdf
from tests.fixtures.projects import FACTS, REPO, ingested_project, run_cli
from tests.fixtures.services import free_port, long_question, serving, wait_for_job

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, ViewportSize

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
QUESTION, ANSWER, SOURCE, PAGE = FACTS[0]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
ATTEMPTS = 4
# Records every length the newest answer's text has had, as the page writes it.
WATCH_LENGTHS = """() => {
  window.lengths = [];
  new MutationObserver(() => {
    const texts = document.querySelectorAll('#messages li.assistant .text');
    if (texts.length) window.lengths.push(texts[texts.length - 1].textContent.length);
  }).observe(document.getElementById('messages'),
             {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    project = tmp_path_factory.mktemp("site")
    ingested_project(project)
    with serving(project, env={"DOCQA_SERVER__MAX_QUEUE": "1"}) as (url, _):
        yield url, project


@pytest.fixture
def page(browser: Browser, site: tuple[str, Path]) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site[0] + "/")
    page.wait_for_selector("#indexed li")
    yield page
    context.close()
    assert not errors, errors


def ask(page: Page, question: str) -> Locator:
    page.fill("#question", question)
    page.press("#question", "Enter")
    return page.locator("#messages li.assistant").last


def test_an_answer_streams_in_and_its_citation_opens(page: Page) -> None:
    assert "chunks" in page.inner_text("#status")
    page.evaluate(WATCH_LENGTHS)
    page.locator("#temperature").fill("1")
    page.locator("#max_tokens").fill("256")
    answer = ask(page, "Describe what the documents say about the cooperative and its farms.")
    answer.locator(".citations").wait_for(timeout=120_000)
    lengths = [n for n in page.evaluate("window.lengths") if n]
    assert len(set(lengths)) > 3, f"the text grew token by token: {lengths}"
    answer = ask(page, QUESTION)
    citation = answer.locator(".citations details").first
    citation.wait_for(timeout=120_000)
    assert f"{SOURCE}, page {PAGE}" in citation.inner_text()
    assert "\u2014 docqa test document" in citation.inner_text()  # what the file is
    citation.locator("summary").click()
    assert ANSWER in citation.locator("pre").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "page-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=ARTIFACTS / "page-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def shown_page(page: Page) -> bytes:
    """The viewer's page image, its pixels as the browser has them, as PNG."""
    import base64

    data_url = page.evaluate("""() => {
      const image = document.getElementById('page-image');
      const canvas = document.createElement('canvas');
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      canvas.getContext('2d').drawImage(image, 0, 0);
      return canvas.toDataURL('image/png');
    }""")
    return base64.b64decode(data_url.split(",", 1)[1])


def open_citation(page: Page, answer: Locator, title: str) -> None:
    """Click the answer's first citation marker: the viewer opens on the cited page."""
    from playwright.sync_api import expect

    answer.locator(".text .cite").first.click()
    expect(page.locator("#viewer")).to_be_visible()
    expect(page.locator("#viewer-title")).to_contain_text(f"{title} of ", timeout=120_000)


def test_one_answer_whose_citation_opens_the_page_with_the_figure_highlighted(
    page: Page, site: tuple[str, Path]
) -> None:
    from playwright.sync_api import expect

    _, project = site
    answer = ask(page, QUESTION)
    answer.locator(".citations").wait_for(timeout=120_000)
    assert answer.locator(".text").count() == 1
    assert ANSWER in answer.locator(".text").inner_text()
    assert "Checked" not in answer.locator(".text").inner_text()
    note = answer.locator(".revision")
    assert note.count() == 1  # the demo model's answer is given its citations
    assert note.locator("summary").inner_text() == "Checked: citations added."
    expect(note.locator("q")).to_be_hidden()  # the model's own words, behind the disclosure
    note.locator("summary").click()
    assert ANSWER in note.locator("q").inner_text()

    open_citation(page, answer, f"{SOURCE}, page {PAGE}")
    assert page.evaluate("document.activeElement.id") == "viewer-title"
    alt = f"Page {PAGE} of {SOURCE}, the passage highlighted in yellow"
    assert page.locator("#page-image").get_attribute("alt") == alt
    figure = words_box(project / "data" / SOURCE, PAGE, ANSWER, 110)
    assert tinted(shown_page(page), figure) > 0.9
    heading = words_box(project / "data" / SOURCE, PAGE, "Contracts", 110)
    assert tinted(shown_page(page), heading) == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "viewer-desktop.png")
    page.set_viewport_size(PHONE)
    page.screenshot(path=ARTIFACTS / "viewer-phone.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size(DESKTOP)

    page.locator("#page-frame").press("ArrowLeft")  # the keyboard turns pages
    expect(page.locator("#viewer-title")).to_have_text(f"{SOURCE}, page {PAGE - 1} of 3")
    assert page.locator("#next-page").is_enabled()
    page.locator("#page-frame").press("ArrowRight")
    expect(page.locator("#viewer-title")).to_have_text(f"{SOURCE}, page {PAGE} of 3")
    assert page.locator("#next-page").is_disabled()  # the last page
    width = page.evaluate("document.getElementById('page-image').clientWidth")
    page.click("#zoom-in")
    expect(page.locator("#viewer-title")).to_have_text(f"{SOURCE}, page {PAGE} of 3")
    assert page.evaluate("document.getElementById('page-image').clientWidth") > width
    page.locator("#page-frame").press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()
    assert page.evaluate("document.activeElement.className") == "cite"


def test_a_scanned_page_is_shown_with_its_ocrd_passage_highlighted(
    page: Page, tmp_path: Path
) -> None:
    text = "Supplies\nA relief boat brings fresh water, diesel and letters every second Thursday."
    scan = write_pdf(tmp_path / "lighthouse scan.pdf", [text], images=frozenset({1}))
    page.set_input_files("#files", str(scan))
    page.wait_for_selector("#uploads li:has-text('indexed')", timeout=240_000)
    answer = ask(page, "How often does the relief boat bring fresh water and diesel?")
    answer.locator(".citations").wait_for(timeout=120_000)
    source = answer.locator(".citations details").first
    assert "lighthouse scan.pdf, page 1 (OCR)" in source.locator("summary").inner_text()
    source.locator("summary").click()
    source.locator(".show").click()
    page.wait_for_selector("#viewer-title:has-text('page 1 of 1')", timeout=120_000)
    shown = shown_page(page)
    assert tinted(shown, scanned_line(1, 110)) > 0.5  # the sentence's first words
    assert tinted(shown, scanned_line(4, 110)) == 0  # the paper below the text


def test_a_conversation_is_kept_over_reloads_and_restarts_renamed_exported_deleted(
    browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    project = tmp_path / "kept"
    ingested_project(project)
    port = free_port()
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    turns = page.locator("#messages li.assistant .citations")
    with serving(project, port=port) as (url, _):
        page.goto(url + "/")
        page.wait_for_selector("#indexed li")
        ask(page, QUESTION)
        expect(turns).to_have_count(1, timeout=120_000)
        ask(page, FACTS[2][0])
        expect(turns).to_have_count(2, timeout=120_000)
        kept = page.locator("#conversation-list li")
        expect(kept).to_have_count(1)
        assert QUESTION in kept.inner_text()
        page.reload()
        expect(turns).to_have_count(2)  # the same conversation, reopened
    with serving(project, port=port):  # the server restarted
        page.reload()
        expect(turns).to_have_count(2, timeout=30_000)
        first = page.locator("#messages li.assistant").first
        assert ANSWER in first.locator(".text").inner_text()
        open_citation(page, first, f"{SOURCE}, page {PAGE}")  # its sources still open
        page.click("#close-viewer")
        page.once("dialog", lambda dialog: dialog.accept("Brightwater contract"))
        kept.get_by_role("button", name=f"Rename {QUESTION}").click()
        expect(kept).to_contain_text("Brightwater contract")
        with page.expect_download() as download:
            kept.get_by_role("button", name="Export Brightwater contract").click()
        markdown = Path(download.value.path()).read_text(encoding="utf-8")
        assert "Brightwater contract" in markdown.splitlines()[0]
        assert f"**You:** {QUESTION}" in markdown
        assert f"- [1] {SOURCE}, page {PAGE} (score " in markdown
        page.once("dialog", lambda dialog: dialog.accept())
        kept.get_by_role("button", name="Delete Brightwater contract").click()
        expect(page.locator("#conversation-list")).to_have_text("None yet: ask a question.")
        assert page.locator("#messages li").count() == 0
    context.close()


def test_an_uploaded_pdf_is_indexed_and_answered_from(page: Page, tmp_path: Path) -> None:
    pdf = write_pdf(
        tmp_path / "zephyr orchard.pdf",
        ["Zephyr Orchard\nThe Zephyr orchard grows 412 pear trees on the north slope."],
    )
    page.set_input_files("#files", str(pdf))
    page.wait_for_selector("#uploads li:has-text('indexed')", timeout=120_000)
    assert "zephyr orchard.pdf" in page.inner_text("#indexed")
    answer = ask(page, "How many pear trees does the Zephyr orchard grow?")
    answer.locator(".citations").wait_for(timeout=120_000)
    assert "zephyr orchard.pdf, page 1" in answer.locator(".citations").inner_text()


def test_an_uploaded_slide_deck_is_cited_by_its_slide(page: Page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    deck = tmp_path / "board.pptx"
    deck.write_bytes(pptx_bytes())
    page.set_input_files("#files", str(deck))
    page.wait_for_selector("#uploads li:has-text('indexed')", timeout=120_000)
    assert "board.pptx" in page.inner_text("#indexed")
    answer = ask(page, "What is the revenue forecast for 2027?")
    answer.locator(".citations").wait_for(timeout=120_000)
    assert "board.pptx, slide 2: Revenue outlook" in answer.locator(".citations").inner_text()
    slide = answer.locator(".citations details", has_text="board.pptx, slide 2").first
    slide.locator("summary").click()
    slide.locator(".show").click()  # a slide has no page image: its passage, the sentence marked
    expect(page.locator("#viewer-title")).to_have_text("board.pptx, slide 2: Revenue outlook")
    expect(page.locator("#page-image")).to_be_hidden()
    assert page.locator("#passage mark").count() == 1
    assert page.locator("#passage mark").inner_text() in page.locator("#passage").inner_text()
    assert page.locator("#previous-page").is_disabled()


def test_checked_documents_and_collections_limit_what_answers(page: Page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Ask only about travel/ferries.pdf", exact=False).check()
    assert page.is_visible("#picked")
    answer = ask(page, "When is the annual harvest festival?")
    answer.locator(".citations").wait_for(timeout=120_000)
    cited = answer.locator(".citations summary").all_inner_texts()
    assert cited
    assert all(text.split("]", 1)[1].startswith(" travel/ferries.pdf,") for text in cited)

    page.once("dialog", lambda dialog: dialog.accept("notes"))
    page.click("#new-collection")
    expect(page.locator("#collection")).to_have_value("notes")
    expect(page.locator("#indexed li")).to_have_count(0)  # a new, empty one
    assert page.locator("#messages li").count() == 0  # and a new conversation
    pdf = write_pdf(tmp_path / "kiln.pdf", ["Kiln notes\nThe kiln fires at 1,280 degrees."])
    page.set_input_files("#files", str(pdf))
    page.wait_for_selector("#uploads li:has-text('kiln.pdf: indexed')", timeout=120_000)
    assert page.locator("#indexed li").count() == 1
    answer = ask(page, "At what temperature does the kiln fire?")
    answer.locator(".citations").wait_for(timeout=120_000)
    assert "kiln.pdf, page 1" in answer.locator(".citations").inner_text()
    page.select_option("#collection", "default")
    page.wait_for_selector(f"#indexed li:has-text('{SOURCE}')")


def test_stop_ends_a_generation_and_new_conversation_clears(page: Page) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator("#temperature").fill("1.5")
    page.locator("#max_tokens").fill("2048")
    for _ in range(ATTEMPTS):  # the demo model may end an answer before Stop is clicked
        answer = ask(page, long_question()["question"])
        page.wait_for_selector(
            "#messages li.assistant:last-child .text:not(:empty)", timeout=120_000
        )
        try:
            page.click("#stop", timeout=2_000)
        except PlaywrightTimeout:
            assert page.locator("#stop").is_hidden(), "Stop is shown only while answering"
            continue
        answer.locator(".stopped").wait_for()
        break
    else:
        pytest.fail(f"every one of {ATTEMPTS} answers ended before Stop could be clicked")
    assert page.locator("#stop").is_hidden()
    page.click("#new")
    assert page.locator("#messages li").count() == 0


def test_k_sets_how_many_passages_are_cited(page: Page) -> None:
    page.locator("#k").fill("4")
    assert page.inner_text("#k-value") == "4"
    with page.expect_request("**/v1/chat/completions") as sent:
        answer = ask(page, QUESTION)
    assert (sent.value.post_data_json or {})["k"] == 4
    answer.locator(".citations").wait_for(timeout=120_000)
    assert answer.locator(".citations details").count() == 4


def test_markup_in_a_pdf_is_shown_as_text(page: Page, tmp_path: Path) -> None:
    markup = '<script>window.pwned = 1</script> <img src=x onerror="window.pwned = 2">'
    pdf = write_pdf(
        tmp_path / "quarry.pdf",
        [f"Kestrel Quarry {markup}\nThe Kestrel quarry ships 9,300 tonnes of slate a year."],
    )
    page.set_input_files("#files", str(pdf))
    page.wait_for_selector("#uploads li:has-text('quarry.pdf: indexed')", timeout=120_000)
    answer = ask(page, "How much slate does the Kestrel quarry ship a year?")
    citation = answer.locator(".citations details").first
    citation.wait_for(timeout=120_000)
    citation.locator("summary").click()
    assert "<script>window.pwned = 1</script>" in citation.locator("pre").inner_text()
    assert page.evaluate("window.pwned") is None
    assert page.locator("#messages img, #messages script").count() == 0


def start_job(url: str) -> str:
    response = httpx.post(f"{url}/v1/jobs", json=long_question())
    assert response.is_success, response.text
    return str(response.json()["job_id"])


def test_a_busy_server_says_so(page: Page, site: tuple[str, Path]) -> None:
    url, _ = site
    # One question runs and one waits (max_queue 1): the page's question is refused, 429. The
    # second waits only once the first runs: while the first waits, the queue is already full.
    jobs = [start_job(url)]
    try:
        wait_for_job(url, jobs[0], until=("running", "done", "failed", "cancelled"))
        jobs.append(start_job(url))
        ask(page, QUESTION)
        page.wait_for_selector("#notice:has-text('busy')", timeout=30_000)
    finally:
        for job_id in jobs:
            httpx.delete(f"{url}/v1/jobs/{job_id}")


def test_the_api_key_is_asked_for_and_kept_for_the_session(
    browser: Browser, site: tuple[str, Path]
) -> None:
    _, project = site
    with serving(project, env={"DOCQA_API_KEY": "s3cret"}) as (url, _):
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#token-dialog[open]")
        page.fill("#token", "s3cret")
        page.press("#token", "Enter")
        page.wait_for_selector("#indexed li")
        page.wait_for_selector("#status:has-text('chunks')")  # /healthz, shown for the key
        assert page.evaluate("sessionStorage.getItem('docqa-api-key')") == "s3cret"
        assert page.evaluate("localStorage.length") == 0
        page.reload()
        page.wait_for_selector("#indexed li")  # the same tab keeps it
        other = browser.new_context().new_page()
        other.goto(url + "/")
        other.wait_for_selector("#token-dialog[open]")  # another session asks again
        context.close()


def test_a_key_of_one_collection_works_in_it_and_sees_no_other(
    browser: Browser, tmp_path: Path
) -> None:
    project = tmp_path / "scoped"
    (project / "data").mkdir(parents=True)
    assert run_cli("-m", "docqa", "collections", "create", "hr", cwd=project).returncode == 0
    leave = ["Leave\nStaff get 28 days of annual leave a year."]
    write_pdf(project / "collections" / "hr" / "data" / "leave.pdf", leave)
    assert run_cli("ingest.py", "--collection", "hr", cwd=project).returncode == 0
    made = run_cli("-m", "docqa", "keys", "add", "intern", "--collections", "hr", cwd=project)
    with serving(project, ready=False) as (url, _):  # the default collection has no index
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url + "/")
        page.wait_for_selector("#token-dialog[open]")
        page.fill("#token", made.stdout.strip())
        page.press("#token", "Enter")
        page.wait_for_selector("#indexed li:has-text('leave.pdf')")  # its collection, chosen
        assert page.locator("#collection option").all_inner_texts() == ["hr"]
        answer = ask(page, "How many days of annual leave do staff get?")
        answer.locator(".citations").wait_for(timeout=120_000)
        assert "leave.pdf, page 1" in answer.locator(".citations").inner_text()
        assert page.locator("#notice").is_hidden()
        page.close()


def test_an_empty_index_says_to_upload_until_one_is(browser: Browser, tmp_path: Path) -> None:
    project = tmp_path / "empty"
    (project / "data").mkdir(parents=True)
    with serving(project, ready=False) as (url, _):
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#notice:has-text('The index is empty')")
        pdf = write_pdf(tmp_path / "z.pdf", ["Zephyr Orchard\nThe orchard grows 412 pear trees."])
        page.set_input_files("#files", str(pdf))
        page.wait_for_selector("#uploads li:has-text('indexed')", timeout=120_000)
        page.locator("#notice").wait_for(state="hidden", timeout=15_000)
        page.wait_for_selector("#status:has-text('1 files')")
        page.close()


def test_a_server_that_went_down_is_reported(browser: Browser, site: tuple[str, Path]) -> None:
    _, project = site
    with serving(project) as (url, server):
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#indexed li")
        server.stop()
        ask(page, QUESTION)
        page.wait_for_selector("#notice:has-text('down or unreachable')", timeout=30_000)
        page.close()


def test_the_adidas_question_over_the_20f(
    browser: Browser, showcase_pdf: Path, tmp_path: Path
) -> None:
    """The showcase: what the page shows for the adidas question, at both widths."""
    project = tmp_path / "20f"
    (project / "data").mkdir(parents=True)
    (project / "data" / showcase_pdf.name).symlink_to(showcase_pdf)
    assert run_cli("ingest.py", cwd=project).returncode == 0
    with serving(project) as (url, _):
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url + "/")
        page.wait_for_selector("#indexed li")
        answer = ask(page, "How much is the minimum guarantee payable by adidas?")
        citation = answer.locator(".citations details").first
        citation.wait_for(timeout=120_000)
        citation.locator("summary").click()
        assert "£750 million" in answer.inner_text()
        shown = citation.inner_text()  # pages 53 and 54 both state the figure
        assert any(f"{showcase_pdf.name}, page {n}" in shown for n in (53, 54))
        assert "£750 million" in shown
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "adidas-20f-desktop.png", full_page=True)
        # Page 53, where the figure is, opened from its source: the sentence highlighted.
        page53 = answer.locator(".citations details", has_text=f"{showcase_pdf.name}, page 53")
        page53.evaluate("details => { details.open = true; }")
        page53.locator(".show").click()
        page.wait_for_selector("#viewer-title:has-text('page 53 of 177')", timeout=120_000)
        figure = words_box(showcase_pdf, 53, "£750 million", 110)
        assert tinted(shown_page(page), figure) > 0.9
        page.screenshot(path=ARTIFACTS / "adidas-20f-viewer-desktop.png")
        page.set_viewport_size(PHONE)
        page.screenshot(path=ARTIFACTS / "adidas-20f-viewer-phone.png")
        page.click("#close-viewer")
        page.screenshot(path=ARTIFACTS / "adidas-20f-phone.png", full_page=True)
        print(page.inner_text("#messages"))
        print(page.locator("#page-image").get_attribute("alt"))
        page.close()
