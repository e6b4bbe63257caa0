"""Read article files from the seeds folder into typed `Article`s.

Every offset kept here points into the decoded file text, so a citation can
always be shown in the original article. Bad files (empty, binary, undecodable)
are reported and skipped so one broken file never stops a build.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .sentences import sentence_spans

ParagraphKind = Literal["lead", "text", "heading", "caption"]

# "date 2023-12" or "date 2023-12-05", maybe after a BOM or spaces, then the lead on the same line.
_DATE_LINE = re.compile(r"^[\ufeff\s]*date[ \t]+(\d{4}-\d{2}(?:-\d{2})?)\b[ \t]*")
_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n[ \t]*\r?\n|\s*\Z)", re.S)
_CAPTION = re.compile(
    r"^(?:Im Video|Video|Im Bild|Bild|Bilder|Foto|Fotos|Grafik|Bildergalerie|Galerie|Audio|Podcast|"
    r"Im Podcast|Lesen Sie auch|Mehr zum Thema|Zum Thema|Auch interessant|Anzeige|Quelle)\s*:",
    re.I,
)
_FINAL_PUNCTUATION = tuple('.!?…:;"“”»«\')]')
_MAX_HEADING_CHARS = 100
_TEXT_SUFFIX = ".txt"


class ArticleError(ValueError):
    """A file that cannot be read as an article; the message says why."""


@dataclass(frozen=True)
class Paragraph:
    """A block of the article between blank lines, with its span in the file text."""

    start: int
    end: int
    kind: ParagraphKind
    number: int  # 1-based among content paragraphs (lead and text); 0 for headings and captions
    heading: str | None = None  # the sub-heading this paragraph sits under


@dataclass(frozen=True)
class Article:
    """One parsed article file."""

    id: str  # path relative to the seeds folder, with forward slashes
    text: str  # the decoded file, unchanged: all offsets point into it
    date: str | None  # "YYYY-MM" or "YYYY-MM-DD"; None when the file has no date line
    title: str
    paragraphs: tuple[Paragraph, ...]
    content_hash: str
    notes: tuple[str, ...] = field(default=())  # non-fatal findings, e.g. a missing date line

    @property
    def content(self) -> tuple[Paragraph, ...]:
        """Lead and text paragraphs: what is chunked and searched."""
        return tuple(p for p in self.paragraphs if p.kind in ("lead", "text"))

    def paragraph_at(self, offset: int) -> Paragraph | None:
        """The paragraph containing character `offset`, for citations."""
        for p in self.paragraphs:
            if p.start <= offset < p.end:
                return p
        return None


@dataclass(frozen=True)
class SourceFile:
    """A candidate article file: its id, raw bytes and their hash (cheap to compare across builds)."""

    id: str
    path: Path
    data: bytes

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def scan(seeds_dir: Path) -> list[SourceFile]:
    """All ``*.txt`` files below `seeds_dir` (hidden ones skipped), in a stable order."""
    seeds_dir = Path(seeds_dir)
    if not seeds_dir.is_dir():
        raise FileNotFoundError(f"seeds folder not found: {seeds_dir}")
    files = []
    for path in sorted(seeds_dir.rglob("*" + _TEXT_SUFFIX)):
        rel = path.relative_to(seeds_dir)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        files.append(SourceFile(rel.as_posix(), path, path.read_bytes()))
    return files


def decode(data: bytes) -> tuple[str, str | None]:
    """Decode article bytes; returns the text and a note if a fallback encoding was used."""
    if not data.strip():
        raise ArticleError("file is empty")
    if b"\x00" in data:
        raise ArticleError("file is binary (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8")
        note = None
    except UnicodeDecodeError:
        for encoding in ("cp1252", "latin-1"):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            note = f"not valid UTF-8; read as {encoding}"
            break
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > max(8, len(text) // 100):
        raise ArticleError("file looks binary (many control characters), not text")
    return text, note


def parse(source: SourceFile) -> Article:
    """Parse one file: date line with lead, then paragraphs, sub-headings and captions."""
    text, encoding_note = decode(source.data)
    notes = [encoding_note] if encoding_note else []

    body_start = 0
    date = None
    match = _DATE_LINE.match(text)
    if match:
        date = match.group(1)
        body_start = match.end()
    else:
        notes.append("no date line (expected 'date YYYY-MM' on the first line); date unknown")

    paragraphs: list[Paragraph] = []
    number = 0
    heading: str | None = None
    for m in _PARAGRAPH.finditer(text, body_start):
        block = m.group()
        first = not paragraphs
        if first:
            kind: ParagraphKind = "lead"
        elif _CAPTION.match(block):
            kind = "caption"
        elif _is_heading(block):
            kind = "heading"
            heading = block
        else:
            kind = "text"
        if kind in ("lead", "text"):
            number += 1
        paragraphs.append(Paragraph(m.start(), m.end(), kind, number if kind in ("lead", "text") else 0,
                                    heading if kind == "text" else None))
    if not paragraphs:
        raise ArticleError("file has a date line but no text")
    lead = paragraphs[0]
    return Article(
        id=source.id,
        text=text,
        date=date,
        title=_title(text[lead.start : lead.end]),
        paragraphs=tuple(paragraphs),
        content_hash=source.content_hash,
        notes=tuple(notes),
    )


def _is_heading(block: str) -> bool:
    """Short single lines without final punctuation are sub-headings ("Russland zahlt hohen Preis")."""
    return "\n" not in block and len(block) <= _MAX_HEADING_CHARS and not block.endswith(_FINAL_PUNCTUATION)


def _title(lead: str, limit: int = 160) -> str:
    """The lead's first sentence, cut at a word boundary: articles carry no separate title line."""
    spans = sentence_spans(lead)
    first = lead[spans[0][0] : spans[0][1]] if spans else lead
    first = " ".join(first.split())
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0] + " …"


def load(seeds_dir: Path) -> tuple[list[Article], list[tuple[str, str]]]:
    """Parse every article below `seeds_dir`; returns the articles and ``(id, reason)`` of skipped files."""
    articles, skipped = [], []
    for source in scan(seeds_dir):
        try:
            articles.append(parse(source))
        except ArticleError as err:
            skipped.append((source.id, str(err)))
    return articles, skipped
