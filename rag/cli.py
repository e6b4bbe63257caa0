"""`rag build | ask | serve | eval`: a thin shell over `Engine`; every failure is one clear line, never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import warnings
from dataclasses import replace
from pathlib import Path

from . import store
from .embedding import READER_WEIGHTS, RUNTIMES, Embedder
from .engine import Engine, IndexUnavailable, QuestionError
from .indexing import BuildRefused, BuildReport
from .settings import RETRIEVAL_MODES, Settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_libraries()
    settings = Settings(seeds_dir=Path(args.seeds), index_dir=Path(args.index),
                        **({"model": args.model} if args.model else {}),
                        **({"runtime": args.runtime} if args.runtime else {}),
                        **({"reader": False} if getattr(args, "no_reader", False) else {}))
    try:
        embedder = Embedder.for_settings(settings)  # one per command: it loads (and fingerprints) once
        if getattr(args, "exports", True) and embedder.needs_export():
            print("Preparing the bundled model for ONNX Runtime (first run only, about half a minute) …",
                  file=sys.stderr)
        code = args.run(args, settings, embedder)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handlers below
        return code
    except (IndexUnavailable, BuildRefused) as err:
        print(f"error: {err.reason}\n  fix: {err.command}", file=sys.stderr)
    except store.StoreError as err:
        fix = settings.command("build", "--rebuild") if err.rebuild else "wait for it, then run the command again"
        print(f"error: {err}\n  fix: {fix}", file=sys.stderr)
    except BrokenPipeError:  # `rag ask … | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (QuestionError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


def _build(args: argparse.Namespace, settings: Settings, embedder: Embedder) -> int:
    report = Engine(settings, embedder).build(rebuild=args.rebuild, progress=sys.stderr.isatty() or args.progress,
                                    allow_removal=args.allow_removal)
    print_report(report)
    return 0


def print_report(report: BuildReport) -> None:
    """The build's remarks, then its one-line summary."""
    if report.rebuild_reason:
        print(printable(f"Full rebuild: {report.rebuild_reason}"), file=sys.stderr)
    for file, why in report.skipped:
        print(printable(f"skipped {file}: {why}"), file=sys.stderr)
    for kind, names in sorted(report.ignored.items()):
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        print(printable(f"ignored {len(names)} {kind} file{'s' if len(names) != 1 else ''} "
                        f"(only .txt files are articles): {shown}"), file=sys.stderr)
    for file, note in report.notes:
        print(printable(f"note {file}: {note}"), file=sys.stderr)
    print(report.summary())


def _ask(args: argparse.Namespace, settings: Settings, embedder: Embedder) -> int:
    question = " ".join(args.question)
    settings = replace(settings, retrieval=args.retrieval)
    answer = Engine(settings, embedder).ask(question, k=args.k, date_from=args.date_from, date_to=args.date_to,
                                            sources=args.source or ())
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(printable(answer.to_text()))
    return 0


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Article text may hold terminal escape sequences; show them as visible codes, never execute them."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _serve(args: argparse.Namespace, settings: Settings, embedder: Embedder) -> int:
    from .app import read_credentials, serve  # gradio is heavy; only `serve` pays for importing it

    serve(settings, host=args.host, port=args.port, auth=read_credentials(args.auth, args.auth_file),
          build=not args.no_build, allow_removal=args.allow_removal, watch=not args.no_watch, embedder=embedder)
    return 0


def _eval(args: argparse.Namespace, settings: Settings, embedder: Embedder) -> int:
    from . import evaluation

    file = Path(args.file)
    if not file.is_file():
        raise ValueError(f"{file} does not exist")
    if args.calibrate:  # calibrates the threshold of the reader, unless --reader off
        result = evaluation.calibrate(file, replace(settings, reader=args.reader != "off"), embedder)
        print(json.dumps(result, indent=2))
        _write_json(args.json, result)
        return 0
    modes = list(RETRIEVAL_MODES) if args.all_modes else [args.retrieval]
    readers = {"on": (True,), "off": (False,), "both": (True, False)}[args.reader]
    results = evaluation.run(file, settings, modes, embedder, progress=sys.stderr.isatty(), readers=readers)
    print(evaluation.table(results))
    _write_json(args.json, next(iter(results.values())) if len(results) == 1 else results)
    return 0


def _train_reader(args: argparse.Namespace, settings: Settings, _embedder: Embedder) -> int:
    from . import training

    file = Path(args.train)
    if not file.is_file():
        raise ValueError(f"{file} does not exist")
    summary = training.run(file, settings, out_dir=Path(args.out_dir), epochs=args.epochs,
                           ranker_epochs=args.ranker_epochs, ranker_depth=args.ranker_depth, stage=args.stage,
                           seed=args.seed, limit=args.limit, log=lambda line: print(line, file=sys.stderr))
    print(json.dumps(summary))
    return 0


def _write_json(path: str | None, data: object) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


def _quiet_libraries() -> None:
    """Library chatter (deprecations, HTTP logs) hides the one line the user needs."""
    warnings.filterwarnings("ignore")
    for name in ("transformers", "sentence_transformers", "httpx", "gradio", "urllib3", "bm25s"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line plus the command that explains usage, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message}\n  fix: {self.prog} --help\n")


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"port must be a number from 1 to 65535, not {value!r}")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seeds", default="seeds", help="folder of article .txt files (default: seeds)")
    common.add_argument("--index", default="vectorstore", help="index folder (default: vectorstore)")
    common.add_argument("--model", help="sentence-transformers model name or folder (default: bundled multilingual-e5-small)")
    common.add_argument("--runtime", choices=RUNTIMES,
                        help="how the bundled model runs (default: onnx-int8; torch loads PyTorch, seconds slower)")

    parser = _Parser(prog="rag", description="Answer questions about German news articles with cited sentences.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("build", parents=[common], help="index the seeds folder (only what changed)")
    p.add_argument("--rebuild", action="store_true", help="re-embed every article")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    p.add_argument("--allow-removal", action="store_true",
                   help="let this build remove more than half of the indexed articles")
    p.set_defaults(run=_build)

    p = sub.add_parser("ask", parents=[common], help="answer a question from the index")
    p.add_argument("question", nargs="+")
    p.add_argument("--json", action="store_true", help="print structured JSON")
    p.add_argument("-k", type=int, default=None, help="number of sources, 1-10 (default: 5)")
    p.add_argument("--from", dest="date_from", help="only articles from this date (YYYY, YYYY-MM or YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", help="only articles up to this date")
    p.add_argument("--source", action="append", help="only this article file (repeatable)")
    p.add_argument("--retrieval", choices=RETRIEVAL_MODES, default="hybrid")
    p.add_argument("--no-reader", action="store_true", help="order answer sentences by plain e5 similarity")
    p.set_defaults(run=_ask)

    p = sub.add_parser("serve", parents=[common], help="update the index, then open the chat in the browser")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=7860)
    p.add_argument("--auth", help="user:password for a login (visible in `ps`: prefer --auth-file or RAG_AUTH)")
    p.add_argument("--auth-file", help="file whose first line is user:password for the login")
    p.add_argument("--no-build", action="store_true", help="serve the index as it is")
    p.add_argument("--no-watch", action="store_true", help="do not re-index seeds/ while serving")
    p.add_argument("--allow-removal", action="store_true",
                   help="let the start-up build remove more than half of the indexed articles")
    p.add_argument("--no-reader", action="store_true", help="order answer sentences by plain e5 similarity")
    p.set_defaults(run=_serve)

    p = sub.add_parser("eval", parents=[common], help="measure retrieval and answers on a SQuAD-format or news QA file")
    p.add_argument("file")
    p.add_argument("--retrieval", choices=RETRIEVAL_MODES, default="hybrid")
    p.add_argument("--all-modes", action="store_true", help="compare dense, bm25, rrf and hybrid")
    p.add_argument("--reader", choices=("on", "off", "both"), default="both",
                   help="answer with the trained reader, without it, or compare both (default)")
    p.add_argument("--calibrate", action="store_true", help="choose the decline threshold instead")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    p.set_defaults(run=_eval)

    p = sub.add_parser("train-reader", parents=[common],
                       help="retrain the answer reader and ranker (rag/weights) on news QA")
    p.add_argument("--train", default="data/news-qa/train.json", help="news QA file to train on")
    p.add_argument("--out-dir", default=str(READER_WEIGHTS.parent), help="where to write the weights")
    p.add_argument("--stage", choices=("both", "reader", "ranker"), default="both",
                   help="train both stages, or one (the ranker then uses the reader in --out-dir)")
    p.add_argument("--epochs", type=int, default=3, help="reader epochs")
    p.add_argument("--ranker-epochs", type=float, default=2)
    p.add_argument("--ranker-depth", type=int, default=4, help="the reader's best N candidates the ranker trains on")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--limit", type=int, help="train on the first N questions only (smoke tests)")
    p.set_defaults(run=_train_reader, exports=False)  # trains on torch: no ONNX export to announce
    return parser


if __name__ == "__main__":
    sys.exit(main())
