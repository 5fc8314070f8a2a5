"""HTML and Markdown, cut into sections at their headings.

HTML is parsed with lxml.html (libxml2's HTML parser: it never fetches anything and does not
expand entities declared by the document); its main content is read — `<main>` or
`<article>` when the page has one, else `<body>` — without scripts, styles, navigation,
headers, footers, sidebars and forms. Markdown's headings are found with markdown-it-py
(CommonMark: ATX and underlined headings, not lines in code blocks); the text between them is
kept as written."""

from __future__ import annotations

import re
from typing import Any

from docqa.config import LoadingSettings
from docqa.index.formats.plaintext import decode_text
from docqa.index.formats.units import Sections, Units, table_text
from docqa.index.loading import ReadError, normalise

_LEFT_OUT = (
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "iframe", "svg", "button", "select", "head",
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = {
    "p", "div", "li", "dt", "dd", "pre", "blockquote", "section", "article", "main", "ul",
    "ol", "dl", "figure", "figcaption", "address", "br", "hr", "tr", "caption", "summary",
    "details",
}  # fmt: skip
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")  # XHTML's: lxml refuses it in text
_WHITESPACE = re.compile(r"\s+")  # in HTML, any run of it is one space


def read_html(source: str, data: bytes, loading: LoadingSettings) -> Units:
    return _html_units(source, decode_text(data))


def html_text(html: str) -> str:
    """The main content of an HTML page as plain text."""
    return "\n\n".join(unit.text for unit in _html_units("", html).units)


def _html_units(source: str, html: str) -> Units:
    import lxml.html
    from lxml import etree

    try:
        page = lxml.html.document_fromstring(_XML_DECLARATION.sub("", html))
    except (etree.ParserError, ValueError) as exc:
        raise ReadError(f"not readable HTML ({exc})") from exc
    title = normalise(page.findtext(".//title") or "")
    main = page.xpath("//main | //article | //body")
    root = min(main, key=lambda e: ("main", "article", "body").index(e.tag)) if main else page
    sections = Sections(source)
    text: list[str] = []
    _walk(root, sections, text)
    sections.add("".join(text))
    return Units("lxml", sections.done(), {"Title": title} if title else {}, title or None)


def _walk(element: Any, sections: Sections, text: list[str]) -> None:
    """Add the element's text to `text`, closing a block at each block element, a section at
    each heading, reading a table as rows with their headers; leaving out what is not
    content (comments, scripts, navigation, forms...)."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if not tag or tag in _LEFT_OUT:  # a comment, a script, navigation...: only its tail
        pass
    elif tag in _HEADINGS or tag == "table":
        sections.add("".join(text))
        text.clear()
        if tag == "table":
            sections.add(_table(element))
        else:
            sections.heading(_HEADINGS[tag], element.text_content())
    else:
        block = tag in _BLOCKS
        if block:
            text.append("\n\n")
        text.append(_WHITESPACE.sub(" ", element.text or ""))
        for child in element:
            _walk(child, sections, text)
        if block:
            text.append("\n\n")
    text.append(_WHITESPACE.sub(" ", element.tail or ""))


def _table(table: Any) -> str:
    return table_text(
        [[cell.text_content() for cell in row.iterchildren("td", "th")] for row in table.iter("tr")]
    )


def read_markdown(source: str, data: bytes, loading: LoadingSettings) -> Units:
    from markdown_it import MarkdownIt

    text = decode_text(data)
    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").parse(text)
    headings = [
        (token.map, int(token.tag[1]), tokens[index + 1].content)
        for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.map
    ]
    sections = Sections(source)
    start = 0
    for (first, last), level, heading in headings:
        sections.add("\n".join(lines[start:first]))
        sections.heading(level, heading)
        start = last
    sections.add("\n".join(lines[start:]))
    units = sections.done()
    title = next((heading for _, level, heading in headings if level == 1), None)
    return Units("markdown-it-py", units, {"Title": title} if title else {}, title)
