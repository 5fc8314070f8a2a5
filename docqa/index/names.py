"""The organisations a document is about, read from its cover and text: the SEC registrant,
else the corporate or public bodies its cover names most prominently, and the other names
they go by there (short names, acronyms, tickers)."""

from __future__ import annotations

import re
from collections import Counter


def _capitalised(*words: str) -> str:
    """Alternatives matching each word as a name writes it: "Inc", "INC"."""
    return "|".join(form for word in words for form in (word, word.upper()))


_LEGAL = (
    "(?:"
    + _capitalised("Inc", "Incorporated", "Corporation", "Corp", "Company", "Co", "Ltd")
    + "|"
    + _capitalised("Limited", "Holdings", "Group")
    + r"|plc|PLC|P\.L\.C|LLC|L\.L\.C|L\.?P|N\.V|S\.A|AG|SE|S\.p\.A|AB|ASA|Oyj)\.?"
)
_BODY = (
    _capitalised(
        "Department", "Office", "Bureau", "Agency", "Administration", "Commission", "Board"
    )
    + "|"
    + _capitalised("Institute", "Service")
)
_WORD = r"[A-Z0-9][\w&'\u2019.-]*"
_GAP = r"[ \t]+"  # between the words of a name: never a line break
CORPORATE = re.compile(
    rf"\b((?:The{_GAP})?{_WORD}(?:(?:,|{_GAP})[ \t]*(?:&{_GAP}|and{_GAP}|of{_GAP})?{_WORD}){{0,4}})"
    rf",?{_GAP}{_LEGAL}(?![\w-])"
)
PUBLIC_BODY = re.compile(
    rf"\b(?:(?:U\.S\.|United{_GAP}States){_GAP})?"
    rf"(?:(?:{_BODY}){_GAP}(?i:of|for){_GAP}(?:(?i:the){_GAP})?[A-Z][A-Za-z]+"
    rf"(?:{_GAP}(?:(?i:and){_GAP})?[A-Z][A-Za-z]+){{0,3}}"
    rf"|(?!(?:The|A|An|This|Our|Its){_GAP})(?:[A-Z][A-Za-z]+{_GAP}){{1,4}}"
    rf"(?:{_capitalised('Agency', 'Administration', 'Board', 'Commission', 'Bureau')}"
    rf"|{_capitalised('University', 'Hospital')}|Foundation{_GAP}Trust))"
)
_REGISTRANT = re.compile(r"\(?\s*exact name of (?:the )?registrant", re.IGNORECASE)
_TICKER_LINE = re.compile(r"(?i:common stock|ordinary shares|par value).*?\b([A-Z]{1,5})\b")
_STEM_NOISE = re.compile(
    r"^(?:annual|quarterly|report|results|earnings|final|draft|prot|sap|icf|copy|v\d+|"
    r"fy|q[1-4]|\d+|10-?[kq]|8-?k|20-?f)$",
    re.IGNORECASE,
)
TOP_LINES = 15  # an organisation named this near the top is the one the document is about
PROMINENT = 20  # ...and counts as this many more mentions
_NOT_NAMES = frozenset(
    {"in", "the", "a", "an", "of", "for", "and", "to", "at", "on", "by", "our", "this"}
)
MAX_ORGANISATIONS = 3


def organisations(
    stem: str, cover: str, whole: str, metadata_title: str | None, about: str
) -> list[str]:
    """The organisations a document is about: the SEC registrant, else the corporate or
    public bodies its cover names — weighted by how near the top they stand, whether its
    title or file name names them (or their acronym), and how often its text names them."""
    lines = [line.strip() for line in cover.split("\n")]
    registrant = None
    for number, line in enumerate(lines):
        if match := _REGISTRANT.search(line):
            registrant = line[: match.start()].strip() or next(
                (x for x in reversed(lines[:number]) if x and not set(x) <= set("_-\u2014 ")), None
            )
            break
    top = [x.casefold() for x in lines if x][:TOP_LINES]
    named = f"{metadata_title or ''} {stem}"
    folded = " ".join(whole.casefold().split())
    candidates = [registrant] if registrant else []
    for text in (cover, metadata_title or ""):
        candidates += [m.group(0) for m in CORPORATE.finditer(text)]
        candidates += [_trimmed(m.group(0), folded) for m in PUBLIC_BODY.finditer(text)]
    scores: Counter[str] = Counter()
    spelled: dict[str, str] = {}
    for candidate in candidates:
        name = _tidy(candidate)
        core = core_name(name).casefold()
        if core in spelled or not core or core.split()[0] in _NOT_NAMES:
            continue
        if candidate != registrant and len(re.findall(r"[a-z]", core)) < 3:
            continue  # "II", "1.1": headings, not names (a registrant may be "3M")
        spelled[core] = _usual_spelling(name, whole)
        place = next((i for i, text in enumerate(top) if core in text), TOP_LINES)
        scores[core] = folded.count(core) + PROMINENT * (TOP_LINES - place) // TOP_LINES
        scores[core] += PROMINENT * (_acronym(core) in named.upper().split())
        scores[core] += PROMINENT * (core in about.casefold())
        scores[core] += 1000 * (candidate == registrant)
    known = {_acronym(spelled[core]) for core in spelled}
    for acronym, name in _acronyms(named, whole):
        core = name.casefold()
        if core not in spelled and acronym not in known:
            spelled[core] = name
            scores[core] = len(re.findall(rf"\b{acronym}\b", whole)) + PROMINENT
    ranked = [core for core, count in scores.most_common() if count >= 2]
    if not ranked:
        return []
    best = scores[ranked[0]]
    kept = [core for core in ranked if scores[core] >= min(best, 1000) * 0.5]
    return [spelled[core] for core in kept[:MAX_ORGANISATIONS]]


def _trimmed(name: str, folded: str) -> str:
    """A public body's name without words a heading ran on with ("... of Transportation
    Strategic Plan"): the shortest front part the text names far more often."""
    words = name.split()
    linking = [i for i, word in enumerate(words) if word.lower() in ("of", "for", "the")]
    if not linking:
        return name
    best = name
    for size in range(len(words) - 1, linking[-1] + 1, -1):
        shorter = " ".join(words[:size])
        if folded.count(shorter.casefold()) >= 1.5 * folded.count(best.casefold()):
            best = shorter
    return best


def _acronym(name: str) -> str:
    """ "OPM" for "Office of Personnel Management"."""
    return "".join(word[0] for word in re.findall(r"[A-Za-z]+", name) if word[0].isupper())


def _acronyms(named: str, whole: str) -> list[tuple[str, str]]:
    """(acronym, name) of the acronyms a title or file name uses and the text uses often:
    the name is the text's expansion ("Environmental Protection Agency (EPA)"), else the
    acronym itself."""
    found = []
    for acronym in re.findall(r"(?<![A-Za-z])[A-Z]{2,6}(?![a-z])", named):
        roman = re.fullmatch(r"[IVXLC]+", acronym)
        if roman or _STEM_NOISE.match(acronym) or not _written(acronym, whole, 3):
            continue
        expansion = re.compile(
            rf"((?:[A-Z][A-Za-z]+[ \t]+(?:(?:of|and|the|for)[ \t]+)?){{1,7}})\(\s*{acronym}\s*\)"
        )
        name = acronym
        for match in expansion.finditer(whole):
            words = match.group(1).split()
            starts = [i for i in range(len(words)) if _acronym(" ".join(words[i:])) == acronym]
            if starts and words[starts[0]][0].isupper():
                name = " ".join(words[starts[0] :])
                break
        found.append((acronym, name))
    return found


def _tidy(name: str) -> str:
    name = " ".join(name.split()).strip(" ,;:")
    return re.sub(r"^(?:the\s+)?(?=(?:U\.S\.|United States)\s)", "", name, flags=re.IGNORECASE)


def core_name(name: str) -> str:
    """A name without its legal form, a leading "The" or "U.S.": "Apple", "NVIDIA",
    "Department of Labor"."""
    name = re.sub(rf",?\s+{_LEGAL}$", "", name.strip())
    name = re.sub(r"^(?:the|u\.s\.|united states)\s+", "", name, flags=re.IGNORECASE)
    return name.strip(" ,")


def _usual_spelling(name: str, whole: str) -> str:
    """The name as the text most often writes it: "NVIDIA Corporation" for a cover's
    "NVIDIA CORPORATION", "Office of Personnel Management" for "Office Of PerSOnnel"."""
    forms = Counter(m.group(0) for m in re.finditer(re.escape(name), whole, re.IGNORECASE))
    natural = [f for f, _ in forms.most_common() if not f.isupper() and _tame(f)]
    if natural:
        return natural[0]
    return name if _tame(name) and not name.isupper() else name.title()


def _tame(text: str) -> bool:
    """No capital letter inside a word after a lower-case one ("PerSOnnel" is an artefact)."""
    return not re.search(r"[a-z][A-Z]", text.replace("Mc", "").replace("Mac", ""))


def aliases(organisations: list[str], stem: str, cover: str, whole: str) -> list[str]:
    """Other names of the organisations that the document itself uses: the name without its
    legal form, a web name's first part ("Amazon" of "Amazon.com"), acronyms ("OPM"), ticker
    symbols, and words of the file name it writes ("AAPL", "3M")."""
    found: list[str] = []
    words = set(re.findall(r"[\w.&'-]+", whole))
    for name in organisations:
        core = core_name(name)
        found.append(core)
        if core.lower().endswith(".com"):
            found.append(core[:-4])
        major = [w for w in re.findall(r"[A-Za-z]+", core) if w[0].isupper()]
        every = re.findall(r"[A-Za-z]+", core)
        for letters in ("".join(w[0] for w in major), "".join(w[0] for w in every)):
            if len(letters) >= 2 and letters.upper() in words:
                found.append(letters.upper())
    for line in cover.split("\n"):
        if match := _TICKER_LINE.search(line):
            found.append(match.group(1))
    for token in re.findall(r"\d+[A-Za-z]+|[A-Za-z]+", stem):
        if token.isupper() and not _STEM_NOISE.match(token) and _written(token, whole):
            found.append(token)
    names = {n.casefold() for n in organisations}
    unique = {alias.casefold(): alias for alias in reversed(found) if alias}
    return [alias for key, alias in reversed(unique.items()) if key not in names]


def _written(token: str, whole: str, times: int = 2) -> bool:
    return len(re.findall(rf"(?<![\w-]){re.escape(token)}(?![\w-])", whole, re.I)) >= times
