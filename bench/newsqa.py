"""Authoring tool for the news QA set (data/news-qa): show articles to writers, check their drafts, assemble the set.

  python -m bench.newsqa show PART [--parts 7] [--from I] [--count N]   articles of one writer's share, with row numbers
  python -m bench.newsqa more PART [--parts 8] [--from I] [--count N]   later passes: train articles with every question they have
  python -m bench.newsqa check DRAFT.jsonl                               every problem, one line each, plus counts per type
  python -m bench.newsqa assemble DRAFT.jsonl ... [--dev-share 0.25]      validate all, add offsets, write train.json and dev.json

Drafts are JSON lines: {"row": 123 | "seed", "question", "answer", "type"} for answerable questions,
{"question", "type", "keys": [...]} for unanswerable ones.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path

from rag.newsqa import SEED_ROW, TYPES, Corpus, Record, check, load, split_by_article

OUT = Path(__file__).resolve().parents[1] / "data" / "news-qa"


def shares(corpus: Corpus, parts: int, per_part: int = 66, seed: int = 7) -> list[list[int]]:
    """Non-reserved rows in a fixed shuffled order, cut into one share per writer."""
    rows = [i for i in range(len(corpus.rows)) if i not in corpus.reserved]
    random.Random(seed).shuffle(rows)
    return [rows[p * per_part : (p + 1) * per_part] for p in range(parts)]


def train_shares(train: list[Record], parts: int, seed: int = 7) -> list[list[int]]:
    """Rows of the train split in a fixed shuffled order, cut into `parts` shares: later writing passes add
    questions to these articles only, so the split by article (and dev.json) stays as it is."""
    rows = sorted({r.row for r in train if isinstance(r.row, int)})
    random.Random(seed).shuffle(rows)
    return [rows[p::parts] for p in range(parts)]


def read_drafts(paths: list[Path]) -> list[tuple[str, Record | None, str]]:
    """(where, record, parse error) for every line of the drafts."""
    out = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            try:
                out.append((where, Record.from_dict(json.loads(line)), ""))
            except (ValueError, KeyError, TypeError) as err:
                out.append((where, None, f"not a draft record: {err}"))
    return out


def validate(drafts: list[tuple[str, Record | None, str]], corpus: Corpus) -> list[str]:
    problems, seen, spans = [], {}, collections.defaultdict(list)
    for where, record, error in drafts:
        if record is None:
            problems.append(f"{where}: {error}")
            continue
        key = " ".join(record.question.lower().split())
        if key in seen:
            problems.append(f"{where}: duplicate of {seen[key]}")
        seen.setdefault(key, where)
        own = [f"{where}: {p}" for p in check(record, corpus)]
        if record.row is not None and not own:
            # a later writing pass must ask about another fact, not reword an earlier question
            start = corpus.file(record.row)[1].index(record.answer)
            end = start + len(record.answer)
            own += [f"{where}: answer overlaps the answer of {other} (the same fact asked twice)"
                    for s, e, other in spans[record.row] if s < end and start < e][:1]
            spans[record.row].append((start, end, where))
        problems += own
    return problems


def counts(records: list[Record]) -> str:
    by_type = collections.Counter(r.type for r in records if r.row is not None)
    answerable = sum(by_type.values())
    parts = [f"{t} {by_type[t]} ({by_type[t] / max(answerable, 1):.0%})" for t in TYPES]
    articles = len({r.row for r in records if r.row is not None})
    return f"{answerable} answerable over {articles} articles, {len(records) - answerable} unanswerable; " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.newsqa")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show")
    show.add_argument("part", help="share number (0-based) or 'seed'")
    show.add_argument("--parts", type=int, default=15)
    show.add_argument("--from", dest="start", type=int, default=0)
    show.add_argument("--count", type=int, default=66)
    more = sub.add_parser("more")
    more.add_argument("part", type=int, help="share number (0-based)")
    more.add_argument("--parts", type=int, default=8)
    more.add_argument("--from", dest="start", type=int, default=0)
    more.add_argument("--count", type=int, default=100)
    chk = sub.add_parser("check")
    chk.add_argument("drafts", nargs="+", type=Path)
    asm = sub.add_parser("assemble")
    asm.add_argument("drafts", nargs="+", type=Path)
    asm.add_argument("--dev-share", type=float, default=0.25)
    args = parser.parse_args(argv)
    corpus = Corpus()

    if args.command == "show":
        rows = [SEED_ROW] if args.part == SEED_ROW else shares(corpus, args.parts)[int(args.part)]
        for row in rows[args.start : args.start + args.count]:
            print(f"===== row {row} =====\n{corpus.file(row)[1]}")
        return 0

    if args.command == "more":
        train = load(OUT / "train.json")
        asked = collections.defaultdict(list)  # train.json and the later passes' drafts: writers must see both
        later = [r for _, r, _ in read_drafts(sorted((OUT / "drafts").glob("more*.jsonl"))) if r is not None]
        for r in [*train, *later]:
            asked[r.row].append(r.question)
        for row in train_shares(train, args.parts)[args.part][args.start : args.start + args.count]:
            print(f"===== row {row} =====\n{corpus.file(row)[1]}----- already asked -----")
            print("\n".join(asked[row]))
        return 0

    drafts = read_drafts(args.drafts)
    problems = validate(drafts, corpus)
    print("\n".join(problems) or "no problems")
    records = [r for _, r, _ in drafts if r is not None]
    print(counts(records))
    if args.command == "check" or problems:
        return 1 if problems else 0

    records = [r if r.row is None else Record(r.question, r.type, r.row, r.answer, corpus.file(r.row)[1].index(r.answer))
               for r in records]
    train, dev = split_by_article(records, args.dev_share)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("dev", dev)):
        (OUT / f"{name}.json").write_text(
            json.dumps({"questions": [r.to_dict() for r in part]}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{name}: {counts(part)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
