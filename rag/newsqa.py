"""Our German news QA set over 10kGNAD: load it, validate it, and lay its articles out as seed files.

The set stores row indices and short verbatim answers, never article texts
(10kGNAD is CC BY-NC-SA 4.0 and stays in ``../shared``). Validation uses the
product's own article parser and sentence splitter, so an answer counts as
"inside the sentence that answers" exactly when our composer could show it.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

from .corpus import SourceFile, parse
from .sentences import sentence_spans

TYPES = ("wer", "was", "wann", "wo", "wie_viel", "warum", "welche", "aussage", "andere")
SEED_ROW = "seed"
MAX_ANSWER_WORDS = 12
MAX_SHARED_RUN = 5  # a question may share at most 4 consecutive words with its answer sentence
_WORDS = re.compile(r"\w+")


def shared_dir() -> Path:
    """``../shared`` beside the project, or $RAG_SHARED_DIR."""
    return Path(os.environ.get("RAG_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))


def gnad_rows(shared: Path | None = None) -> list[tuple[str, str]]:
    """(label, text) for every row of 10kGNAD's test split, by 0-based row index."""
    path = (shared or shared_dir()) / "data" / "10kgnad" / "test.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [(r[0], r[1]) for r in csv.reader(f, delimiter=";", quotechar="'") if len(r) == 2]


def reserved_rows(shared: Path | None = None) -> frozenset[int]:
    """Rows kept for independent evaluation: no questions about them, no training on them."""
    path = (shared or shared_dir()) / "data" / "10kgnad" / "RESERVED_ROWS.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(int(line) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def article_file(row: int, label: str) -> str:
    """The seed file name of a 10kGNAD row; the row index stays recoverable from it."""
    return f"gnad_{row:04d}_{label.lower()}.txt"


def article_text(text: str) -> str:
    """The file content written for a 10kGNAD row (its answer offsets point into this)."""
    return text.strip() + "\n"


@dataclass(frozen=True)
class Record:
    """One question: `row` is a 10kGNAD row index, "seed" for the seed article, None if unanswerable."""

    question: str
    type: str
    row: int | str | None = None
    answer: str | None = None
    offset: int | None = None
    keys: tuple[str, ...] = ()  # unanswerable only: names that must occur in no article

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        return cls(d["question"], d["type"], d.get("row"), d.get("answer"), d.get("offset"), tuple(d.get("keys", ())))

    def to_dict(self) -> dict:
        if self.row is None:
            return {"question": self.question, "type": self.type, "keys": list(self.keys)}
        return {"row": self.row, "question": self.question, "answer": self.answer, "offset": self.offset, "type": self.type}


def load(path: Path) -> list[Record]:
    """Records of a ``{"questions": [...]}`` file (train or dev)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise ValueError(f"{path} is not a news QA file (no top-level 'questions' list)")
    return [Record.from_dict(d) for d in data["questions"]]


class Corpus:
    """The texts questions are asked about: 10kGNAD rows as written to seed files, plus the seed article."""

    def __init__(self, shared: Path | None = None, seed_file: Path | None = None):
        self.rows = gnad_rows(shared)
        self.reserved = reserved_rows(shared)
        self.seed_file = seed_file or Path(__file__).resolve().parents[1] / "seeds" / "000_51d543a782ed1e65.txt"
        self._lower: str | None = None

    def file(self, row: int | str) -> tuple[str, str]:
        """(file name, file text) of a record's article."""
        if row == SEED_ROW:
            return self.seed_file.name, self.seed_file.read_text(encoding="utf-8")
        label, text = self.rows[int(row)]
        return article_file(int(row), label), article_text(text)

    def contains(self, needle: str) -> bool:
        """Whether `needle` occurs (case-insensitively) in any article of the file or the seed."""
        if self._lower is None:
            self._lower = "\n".join([t for _, t in self.rows] + [self.seed_file.read_text(encoding="utf-8")]).lower()
        return needle.lower() in self._lower


def check(record: Record, corpus: Corpus) -> list[str]:
    """Everything wrong with one record (empty when it is valid)."""
    problems = []
    if record.type not in TYPES:
        problems.append(f"type {record.type!r} is not one of {', '.join(TYPES)}")
    if not record.question.strip().endswith("?"):
        problems.append("question does not end with '?'")
    if record.row is None:
        if not record.keys:
            problems.append("unanswerable question without keys (the names that must occur in no article)")
        problems += [f"key {k!r} occurs in the corpus" for k in record.keys if corpus.contains(k)]
        return problems
    if record.row != SEED_ROW:
        if not isinstance(record.row, int) or not 0 <= record.row < len(corpus.rows):
            return problems + [f"row {record.row!r} is not a row of test.csv"]
        if record.row in corpus.reserved:
            return problems + [f"row {record.row} is reserved for independent evaluation"]
    answer = record.answer or ""
    name, text = corpus.file(record.row)
    if not answer.strip() or answer != answer.strip():
        return problems + ["answer is empty or has surrounding whitespace"]
    if text.count(answer) != 1:
        return problems + [f"answer occurs {text.count(answer)} times in the article (must be exactly once)"]
    offset = text.index(answer)
    if record.offset is not None and record.offset != offset:
        problems.append(f"offset {record.offset} does not match the answer (found at {offset})")
    if len(_WORDS.findall(answer)) > MAX_ANSWER_WORDS:
        problems.append(f"answer has more than {MAX_ANSWER_WORDS} words")
    if answer.lower() in record.question.lower():
        problems.append("question contains its answer")
    sentence = answer_sentence(text, name, offset, len(answer))
    if sentence is None:
        problems.append("answer crosses a sentence boundary (as our splitter sees it)")
    elif (run := shared_run(record.question, sentence)) >= MAX_SHARED_RUN:
        problems.append(f"question copies {run} consecutive words of the answer sentence; paraphrase it")
    return problems


def answer_sentence(text: str, name: str, offset: int, length: int) -> str | None:
    """The sentence (as the product splits the parsed article) that contains the whole answer span."""
    article = parse(SourceFile(name, Path(name), text.encode("utf-8")))
    for p in article.content:
        for s, e in sentence_spans(text[p.start : p.end]):
            if p.start + s <= offset and offset + length <= p.start + e:
                return text[p.start + s : p.start + e]
    return None


def shared_run(question: str, sentence: str) -> int:
    """Length of the longest run of consecutive words (lower-cased) the question shares with the sentence."""
    q, s = [w.lower() for w in _WORDS.findall(question)], [w.lower() for w in _WORDS.findall(sentence)]
    best, previous = 0, [0] * (len(s) + 1)
    for a in q:
        current = [0] * (len(s) + 1)
        for j, b in enumerate(s, start=1):
            if a == b:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def split_by_article(records: list[Record], dev_share: float, seed: int = 13) -> tuple[list[Record], list[Record]]:
    """Train and dev with no article in both; the seed article and half the unanswerable questions go to dev."""
    rows = sorted({r.row for r in records if isinstance(r.row, int)})
    random.Random(seed).shuffle(rows)
    dev_rows = set(rows[: round(len(rows) * dev_share)])
    unanswerable = [r for r in records if r.row is None]
    random.Random(seed).shuffle(unanswerable)
    dev_unanswerable = set(map(id, unanswerable[: len(unanswerable) // 2]))
    dev = [r for r in records if r.row in dev_rows or r.row == SEED_ROW or id(r) in dev_unanswerable]
    chosen = set(map(id, dev))
    return [r for r in records if id(r) not in chosen], dev
