"""Read article files from the seeds folder into typed `Article`s.

Every offset kept here points into the decoded file text, so a citation can
always be shown in the original article. Bad files (empty, binary, undecodable)
are reported and skipped so one broken file never stops a build.
"""

from __future__ import annotations

import codecs
import datetime
import hashlib
import os
import re
import stat
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
    notes: tuple[str, ...] = ()  # e.g. a file name that was not UTF-8

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Scan:
    """What a seeds folder holds: readable article files, files skipped with a reason, and other files by kind."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why): looked like an article, not read
    ignored: dict[str, list[str]] = field(default_factory=dict)  # kind ("*.md", "no extension") -> names


def scan(seeds_dir: Path, max_bytes: int = 1_000_000) -> Scan:
    """Every ``*.txt`` file below `seeds_dir` (any case; hidden ones left out), in a stable order.

    The folder is shared with whoever drops articles into it, so nothing in it may reach
    beyond it: symbolic links are followed only to files inside the folder, special files and
    files over `max_bytes` are skipped, and a name that is not UTF-8 (Windows ZIPs) is read as
    cp1252 instead of breaking the build. Every skipped or ignored file is reported.
    """
    seeds_dir = Path(seeds_dir)
    if not seeds_dir.is_dir():
        raise FileNotFoundError(f"seeds folder not found: {seeds_dir}")
    root = os.path.realpath(seeds_dir)
    result = Scan()
    for folder, dirs, names in os.walk(seeds_dir):  # does not descend into linked folders
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            rel = path.relative_to(seeds_dir).as_posix()
            shown, notes = _display_name(rel)
            if not name.lower().endswith(_TEXT_SUFFIX):
                kind = f"*{Path(shown).suffix.lower()}" if Path(shown).suffix else "no extension"
                result.ignored.setdefault(kind, []).append(shown)
                continue
            if any(f.id == shown for f in result.files):
                result.skipped.append((shown, f"its name clashes with another file's once read as cp1252; rename it"))
                continue
            try:
                data = _read_inside(path, root, max_bytes)
            except ArticleError as err:
                result.skipped.append((shown, str(err)))
                continue
            result.files.append(SourceFile(shown, path, data, notes))
    return result


def _display_name(rel: str) -> tuple[str, tuple[str, ...]]:
    """The article id of a relative path: itself if it is valid UTF-8, else its bytes read as cp1252."""
    try:
        rel.encode("utf-8")
        return rel, ()
    except UnicodeEncodeError:
        shown = os.fsencode(rel).decode("cp1252", errors="replace")
        return shown, (f"file name is not valid UTF-8; indexed as {shown!r}",)


def _read_inside(path: Path, root: str, max_bytes: int) -> bytes:
    """The bytes of a regular file that really lies inside `root` (links resolved), at most `max_bytes` long."""
    target = os.path.realpath(path)
    if os.path.commonpath([root, target]) != root:
        raise ArticleError("symbolic link to a file outside the seeds folder; not followed")
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise ArticleError(f"cannot be opened ({err.strerror or err})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ArticleError("not a regular file (a pipe, socket or device)")
        if info.st_size > max_bytes:
            raise ArticleError(f"{info.st_size / 1e6:.1f} MB is over the {max_bytes / 1e6:g} MB limit for one article "
                               "(setting max_article_bytes); split it into several files")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ArticleError(f"grew past the {max_bytes / 1e6:g} MB limit for one article while being read")
    return data


def decode(data: bytes) -> tuple[str, str | None]:
    """Decode article bytes; returns the text and a note if a fallback encoding was used."""
    if not data.strip():
        raise ArticleError("file is empty")
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding), "UTF-16 file; read as UTF-16"
            except UnicodeDecodeError:
                raise ArticleError("starts like a UTF-16 file but is not valid UTF-16") from None
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
    notes = [*source.notes, *([encoding_note] if encoding_note else [])]

    body_start = 0
    date = None
    match = _DATE_LINE.match(text)
    if match:
        body_start = match.end()
        if valid_date(match.group(1)):
            date = match.group(1)
        else:
            notes.append(f"date line 'date {match.group(1)}' is not a valid date; date unknown")
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


def valid_date(value: str) -> bool:
    """Whether "YYYY", "YYYY-MM" or "YYYY-MM-DD" names a real year, month or day."""
    parts = value.split("-")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4 or \
            any(len(p) != 2 for p in parts[1:]):
        return False
    try:
        datetime.date(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, int(parts[2]) if len(parts) > 2 else 1)
    except ValueError:
        return False
    return True


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
    found = scan(seeds_dir)
    articles, skipped = [], list(found.skipped)
    for source in found.files:
        try:
            articles.append(parse(source))
        except ArticleError as err:
            skipped.append((source.id, str(err)))
    return articles, skipped
