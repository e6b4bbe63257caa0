"""Any sentence-transformers model on PyTorch: the path for `--model`, training, and the ONNX reference.

The bundled model runs on ONNX Runtime by default (rag/onnx_runtime.py); this
backend serves every other model, `--runtime torch`, and the reader training,
which needs gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .embedding import ReaderFiles


class TorchBackend:
    """Encodes with a SentenceTransformer (and the trained `QuestionReader` and `SentenceRanker`, if given
    their weights)."""

    def __init__(self, path: str, weights: ReaderFiles = ReaderFiles(), base_fingerprint: str = "") -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar on every start is noise
        self.model = SentenceTransformer(path, device="cpu")
        self.dim = int(self.model.get_embedding_dimension())
        self.query_prompt = self.model.prompts.get("query") or ""
        self.passage_prompt = next((self.model.prompts[n] or "" for n in ("document", "passage", "corpus")
                                    if n in self.model.prompts), "")
        self.has_reader = weights.reader is not None
        self.has_ranker = self.has_reader and weights.ranker is not None
        self._weights, self._base_fingerprint = weights, base_fingerprint
        self._reader = self._ranker = None

    def reader(self):
        """The trained `QuestionReader`, loaded on first use."""
        if self._reader is None:
            from .reader import QuestionReader

            self._reader = QuestionReader.load(self.model[0].auto_model, self._weights.reader, self._base_fingerprint)
        return self._reader

    def ranker(self):
        """The trained `SentenceRanker`, loaded on first use."""
        if self._ranker is None:
            from .reader import SentenceRanker

            self._ranker = SentenceRanker.load(self.model[0].auto_model, self._weights.ranker, self._base_fingerprint)
        return self._ranker

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode_query(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def questions(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        reader = self.reader()
        with torch.inference_mode():
            tokens = self.model.tokenizer([self.query_prompt + t for t in texts], padding=True, truncation=True,
                                          max_length=self.model.max_seq_length, return_tensors="pt")
            search, reading = reader(tokens["input_ids"], tokens["attention_mask"])
        return search.numpy().astype(np.float32), reading.numpy().astype(np.float32)

    def states(self, texts: Sequence[str], split: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per (prompted) text: the hidden states entering layer `split` (by default where the ranker continues)
        and the tokens' character offsets."""
        import torch

        from .reader import RANKER_SPLIT, lower

        if split is None:
            split = self.ranker().split if self.has_ranker else RANKER_SPLIT

        enc = self.model.tokenizer(list(texts), padding=True, truncation=True, max_length=self.model.max_seq_length,
                                   return_tensors="pt", return_offsets_mapping=True)
        with torch.inference_mode():
            tapped, _ = lower(self.model[0].auto_model, enc["input_ids"], enc["attention_mask"], split)
        return [(tapped[i, : int(m.sum())].float().numpy(), enc["offset_mapping"][i, : int(m.sum())].numpy())
                for i, m in enumerate(enc["attention_mask"])]

    def rank(self, *pairs: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.ranker()(*(torch.from_numpy(a) for a in pairs)).numpy().astype(np.float32)

    def passages(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """Per text: the model's passage vector, its token vectors, and their character offsets into the
        prompted text (None where the tokenizer cannot give offsets that line up)."""
        outputs = self.model.encode_document(list(texts), batch_size=len(texts), output_value=None,
                                             convert_to_numpy=False)
        result = []
        for text, out in zip(texts, outputs):
            n = int(out["attention_mask"].sum())
            tokens = out["token_embeddings"][:n].float().numpy()
            result.append((out["sentence_embedding"].float().numpy(), tokens, self._offsets(text, n)))
        return result

    def _offsets(self, text: str, n: int) -> np.ndarray | None:
        if not getattr(self.model.tokenizer, "is_fast", False):
            return None
        enc = self.model.tokenizer(self.passage_prompt + text, return_offsets_mapping=True, truncation=True,
                                   max_length=self.model.max_seq_length)
        if len(enc["input_ids"]) != n:
            return None
        return np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(self.passage_prompt + text)["input_ids"])
