"""The bundled model and its reader on ONNX Runtime: the default path, without torch.

`rag ask` used to spend 4.5 s importing sentence-transformers (and with it
transformers and torch) to run a 30 ms question, and a gigabyte of memory to
hold it. Here the same weights, exported once (rag/export.py), run through
`onnxruntime` with the `tokenizers` library: same prompts, truncation, mean
pooling and token offsets as the sentence-transformers path (tests compare them),
and a tokenizer that holds only the Latin pieces unless a text needs more
(rag/tokenization.py).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundled import BUNDLED_PROMPTS, bundled_fingerprint, materialize
from .embedding import ReaderFiles
from .tokenization import FULL_FILE, IDS_FILE, SUBSET_FILE, Tokenizer, subset

SIDE_FILES = (FULL_FILE, SUBSET_FILE, IDS_FILE, "config.json")

EXPORT_VERSION = 2  # bump when rag/export.py's graphs change, so cached exports are redone
PRECISIONS = ("fp32", "int8")
DEFAULT_TAP = 8  # the encoder's second output when there is no reader (then unused)


@dataclass(frozen=True)
class OnnxFiles:
    """The exported files one backend runs; `reader` and `ranker` are None without their weights."""

    folder: Path
    encoder: Path
    reader: Path | None
    ranker: Path | None = None
    tap: int = DEFAULT_TAP  # the layer whose input states the encoder also outputs


def onnx_files(cache_dir: Path, precision: str, weights: ReaderFiles) -> OnnxFiles:
    """The ONNX files for the bundled model (and reader), exported now (with torch) if any is missing."""
    tap = _tap(weights)
    files, encoders, missing = _plan(cache_dir, precision, tap, weights)
    if missing:
        from . import export  # torch, once: first run, or new reader weights

        st_dir = materialize(cache_dir)
        if set(encoders) & set(missing):
            export.export_encoder(st_dir, tap, *encoders)
        if files.reader in missing:
            export.export_reader(st_dir, weights.reader, bundled_fingerprint(), tap, files.reader)
        if files.ranker in missing:
            export.export_ranker(st_dir, weights.ranker, bundled_fingerprint(), files.ranker)
        if {files.folder / name for name in SIDE_FILES} & set(missing):
            _write_side_files(st_dir, files.folder)
    return files


def needs_export(cache_dir: Path, precision: str, weights: ReaderFiles) -> bool:
    """Whether `onnx_files` would export first (about half a minute), so a command can say so beforehand."""
    return bool(_plan(cache_dir, precision, _tap(weights), weights)[2])


def _plan(cache_dir: Path, precision: str, tap: int,
          weights: ReaderFiles) -> tuple[OnnxFiles, tuple[Path, Path], list[Path]]:
    """Where the files live, both encoder precisions, and which files are missing (the reader and ranker
    graphs are named by their weights' hashes)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    folder = Path(cache_dir) / f"multilingual-e5-small-{bundled_fingerprint()}-onnx{EXPORT_VERSION}"
    encoders = (folder / f"encoder-tap{tap}-fp32.onnx", folder / f"encoder-tap{tap}-int8.onnx")
    # float32 in both precisions: see rag/export.py; the reader graph starts at the tap
    reader = folder / f"reader-{weights.reader_digest}-tap{tap}-fp32.onnx" if weights.reader else None
    ranker = folder / f"ranker-{weights.ranker_digest}-fp32.onnx" if weights.reader and weights.ranker else None
    needed = [*encoders, *(p for p in (reader, ranker) if p), *(folder / name for name in SIDE_FILES)]
    return OnnxFiles(folder, encoders[PRECISIONS.index(precision)], reader, ranker, tap), encoders, \
        [p for p in needed if not p.exists()]


def _tap(weights: ReaderFiles) -> int:
    """The encoder layer whose input states the encoder also outputs: the lowest one the reader or the ranker
    continues from (recorded in their weights; a reader continuing higher runs the base layers in between)."""
    from safetensors import safe_open

    splits = []
    for path in (weights.reader, weights.ranker):
        if path is not None:
            with safe_open(str(path), framework="np") as f:
                splits.append(int((f.metadata() or {}).get("split", DEFAULT_TAP)))
    return min(splits, default=DEFAULT_TAP)


def _write_side_files(st_dir: Path, folder: Path) -> None:
    """The tokenizer (full, and its Latin subset) and what the backend needs to know of the model."""
    with staged(folder / FULL_FILE) as tmp:
        shutil.copyfile(st_dir / FULL_FILE, tmp)
    spec, ids = subset(st_dir / FULL_FILE)
    with staged(folder / SUBSET_FILE) as tmp:
        tmp.write_text(spec, encoding="utf-8")
    with staged(folder / IDS_FILE) as tmp, open(tmp, "wb") as f:
        np.save(f, ids)
    config = json.loads((st_dir / "config.json").read_text(encoding="utf-8"))
    with staged(folder / "config.json") as tmp:
        tmp.write_text(json.dumps({"dim": config["hidden_size"], "max_length": 512, "pad_id": config["pad_token_id"],
                                   "prompts": BUNDLED_PROMPTS}, indent=1), encoding="utf-8")


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A temporary path beside `target`, renamed onto it if the block succeeds: never a half-written model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".export-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class OnnxBackend:
    """Encodes with the exported encoder (and reader) on ONNX Runtime."""

    def __init__(self, files: OnnxFiles, threads: int | None = None) -> None:
        import onnxruntime as ort

        config = json.loads((files.folder / "config.json").read_text(encoding="utf-8"))
        self.dim: int = config["dim"]
        self.query_prompt: str = config["prompts"]["query"]
        self.passage_prompt: str = config["prompts"]["passage"]
        self.has_reader = files.reader is not None
        self.has_ranker = files.ranker is not None
        self.tap = files.tap
        self.tokenizer = Tokenizer(files.folder, config["max_length"], config["pad_id"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initializers are not the user's concern
        # Idle worker threads would busy-wait for the next run and take the cores retrieval and answer
        # composition need: with spinning, ask() p50 on 10kGNAD was 23 ms, without it 14 ms.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._encoder = _session(files.encoder, options)
        self._reader = _session(files.reader, options) if files.reader else None
        self._ranker = _session(files.ranker, options) if files.ranker else None

    def _run(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        ids, mask, offsets = self.tokenizer.encode(texts)
        tokens, tapped = self._encoder.run(None, {"input_ids": ids, "attention_mask": mask})
        return tokens, tapped, mask, offsets

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        tokens, _, mask, _ = self._run([self.query_prompt + t for t in texts])
        return _normalise(_mean_pool(tokens, mask))

    def questions(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Search and reader vectors from one encoder pass (the reader continues from the tapped layer)."""
        tokens, tapped, mask, _ = self._run([self.query_prompt + t for t in texts])
        (reader,) = self._reader.run(None, {"tapped": tapped, "attention_mask": mask})
        return _normalise(_mean_pool(tokens, mask)), reader.astype(np.float32)

    def passages(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per text: passage vector (mean of all tokens), the token vectors and their character offsets
        (into the prompted text)."""
        tokens, _, mask, offsets = self._run([self.passage_prompt + t for t in texts])
        pooled = _mean_pool(tokens, mask)
        return [(pooled[i], tokens[i, : len(o)], o) for i, o in enumerate(offsets)]

    def states(self, texts: Sequence[str], split: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per (prompted) text: the hidden states entering the tapped layer and the tokens' character offsets."""
        if split not in (None, self.tap):
            raise ValueError(f"the exported encoder outputs the states entering layer {self.tap}, not {split}")
        _, tapped, _, offsets = self._run(texts)
        return [(tapped[i, : len(o)], o) for i, o in enumerate(offsets)]

    def rank(self, question: np.ndarray, question_mask: np.ndarray, sentence: np.ndarray,
             sentence_mask: np.ndarray) -> np.ndarray:
        (scores,) = self._ranker.run(None, {"question": question, "question_mask": question_mask,
                                            "sentence": sentence, "sentence_mask": sentence_mask})
        return scores.astype(np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode([self.passage_prompt + text])[2][0])


def _session(path: Path, options):
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # written atomically, so only a damaged disk or a hand edit gets here
        raise ValueError(f"the exported model {path} cannot be loaded ({str(err).splitlines()[0]}); delete "
                         f"{path.parent} and run the command again to export it anew") from None


def _mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    return (tokens * m).sum(1) / np.maximum(m.sum(1), 1e-9)


def _normalise(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
