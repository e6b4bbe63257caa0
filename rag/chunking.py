"""Split articles into overlapping passages that keep their exact character spans.

Splitting is langchain's `TextSplitter` merge logic fed with German-aware
pieces: whole paragraphs where they fit, whole sentences where a paragraph is
too long, words only for a single over-long sentence. A chunk never crosses a
sub-heading or caption, so ``article.text[start:end]`` is always exactly the
chunk text a citation points at.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter, TextSplitter

from .corpus import Article, Paragraph
from .sentences import sentence_spans

SPLITTER_VERSION = 2  # part of the index manifest: bump when chunk boundaries change


@dataclass(frozen=True)
class Chunk:
    """A passage of one article, the unit that is embedded, searched and cited."""

    article_id: str
    start: int
    end: int
    text: str
    paragraph: int  # content paragraph (1-based) the chunk starts in
    heading: str | None
    sentences: tuple[tuple[int, int], ...]  # sentence spans inside [start, end), article offsets
    prefix: str = ""  # context lines (title, sub-heading) the model sees before the text

    @property
    def embed_text(self) -> str:
        return self.prefix + self.text


class _PieceSplitter(TextSplitter):
    """A langchain splitter over pre-cut pieces; `merge` reuses its size/overlap packing."""

    def split_text(self, text: str) -> list[str]:
        return self._merge_splits([text], "")

    def merge(self, pieces: list[str]) -> list[str]:
        return self._merge_splits(pieces, "")


class Chunker:
    """Turn an `Article` into `Chunk`s of about `chunk_size` characters.

    `title_prefix` puts the article title (unless the chunk contains it) and the
    sub-heading on their own lines before the chunk, so a passage deep in the
    article still carries its topic into the embedding; the stored span stays
    the original text.
    """

    def __init__(self, chunk_size: int = 500, chunk_overlap: int = 100, title_prefix: bool = False) -> None:
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.title_prefix = title_prefix
        self._merger = _PieceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        self._words = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=0, separators=[" ", ""], keep_separator="end",
            strip_whitespace=False,
        )

    def split(self, article: Article) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in _sections(article):
            chunks.extend(self._split_section(article, section))
        return chunks

    def _split_section(self, article: Article, section: list[Paragraph]) -> list[Chunk]:
        text = article.text
        sentences = [
            (p.start + s, p.start + e) for p in section for s, e in sentence_spans(text[p.start : p.end])
        ]
        pieces = self._pieces(text, section, sentences)
        chunks = []
        cursor = section[0].start
        for chunk_text in self._merger.merge(pieces):
            start = text.index(chunk_text, cursor)
            end = start + len(chunk_text)
            cursor = start + 1
            paragraph = next(p for p in section if p.start <= start < p.end)
            inside = tuple((max(s, start), min(e, end)) for s, e in sentences if s < end and e > start)
            context = [article.title] if article.title not in chunk_text else []
            if paragraph.heading:
                context.append(paragraph.heading)
            prefix = "".join(line + "\n" for line in context) if self.title_prefix else ""
            chunks.append(Chunk(article.id, start, end, chunk_text, paragraph.number, paragraph.heading,
                                inside, prefix))
        return chunks

    def _pieces(self, text: str, section: list[Paragraph], sentences: list[tuple[int, int]]) -> list[str]:
        """Cut a section into pieces that tile it exactly, each at most `chunk_size` long."""
        pieces = []
        for i, p in enumerate(section):
            end = section[i + 1].start if i + 1 < len(section) else p.end  # keep the blank line with p
            if end - p.start <= self.chunk_size:
                pieces.append(text[p.start : end])
                continue
            starts = [s for s, _ in sentences if p.start <= s < p.end][1:]
            bounds = [p.start, *starts, end]
            for a, b in zip(bounds, bounds[1:]):
                piece = text[a:b]
                pieces.extend([piece] if b - a <= self.chunk_size else self._words.split_text(piece))
        return pieces


def _sections(article: Article) -> list[list[Paragraph]]:
    """Runs of content paragraphs between headings and captions: chunks never cross those."""
    sections: list[list[Paragraph]] = [[]]
    for p in article.paragraphs:
        if p.kind in ("lead", "text"):
            sections[-1].append(p)
        elif sections[-1]:
            sections.append([])
    return [s for s in sections if s]
