"""E-mail: .eml with the standard library's email package, Outlook's .msg with extract-msg
(which reads it offline and turns it into the same kind of message). A message is one unit —
from, to, cc, date and subject, then its body (the plain text, else the HTML's text) — and each
text attachment (plain, Markdown, CSV, HTML) another, located by its name."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from docqa.config import LoadingSettings
from docqa.index.formats.plaintext import BOMS, decode_text
from docqa.index.formats.units import Units
from docqa.index.loading import Page, ReadError, normalise

HEADERS = ("From", "To", "Cc", "Date", "Subject")


def read_eml(source: str, data: bytes, loading: LoadingSettings) -> Units:
    if data.startswith(BOMS):  # saved as UTF-16 or 32 by an editor: a message as text
        message = email.message_from_string(decode_text(data), policy=email.policy.default)
    else:
        message = email.message_from_bytes(data, policy=email.policy.default)
    if not any(message[name] for name in HEADERS):
        raise ReadError("not an e-mail: it has no From, To, Cc, Date or Subject header")
    return _units(source, message, "email")


def read_msg(source: str, data: bytes, loading: LoadingSettings) -> Units:
    import extract_msg
    from extract_msg.msg_classes import MessageBase

    with extract_msg.openMsg(data) as outlook:
        if not isinstance(outlook, MessageBase):
            raise ReadError("an Outlook item that is not a message (a contact, a task...)")
        # As a message of the email package's current API, as an .eml is read:
        converted = outlook.asEmailMessage().as_bytes()
    message = email.message_from_bytes(converted, policy=email.policy.default)
    return _units(source, message, "extract-msg")


def _units(source: str, message: EmailMessage, parser: str) -> Units:
    headers = [f"{name}: {_header(message, name)}" for name in HEADERS if message[name]]
    body = message.get_body(preferencelist=("plain", "html"))
    units = [Page(source, 1, normalise("\n".join(headers) + "\n\n" + _text(body)), where="message")]
    for attachment in message.iter_attachments():
        if attachment.get_content_maintype() == "text":
            name = " ".join((attachment.get_filename() or "unnamed").split())
            if text := _text(attachment):
                units.append(Page(source, len(units) + 1, text, where=f"attachment {name}"))
    subject = _header(message, "Subject")
    meta = {"Title": subject} if subject else {}
    if message["From"]:
        meta["Author"] = _header(message, "From")
    return Units(parser, units, meta, subject or None)


def _header(message: EmailMessage, name: str) -> str:
    return " ".join(str(message[name] or "").split())


def _text(part: Any) -> str:
    """A text part's content as text (an HTML part's main content)."""
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError) as exc:  # an unknown charset, a damaged encoding
        raise ReadError(f"a part of the message cannot be decoded ({exc})") from exc
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        from docqa.index.formats.markup import html_text

        return html_text(content)
    return normalise(content)
