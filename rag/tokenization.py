"""e5's tokenizer in 106 MB instead of 279, with exactly the same token ids and offsets.

XLM-R's Unigram vocabulary has 250,002 pieces in 100 languages; the `tokenizers`
library holds them in a character trie that takes 279 MB, more than the int8
model. German news needs the Latin pieces only. Segmentation can only use pieces
that occur in the (normalised) text, so for a text made of the characters in
`LATIN` (Latin and Greek letters, punctuation, common symbols), a tokenizer
that keeps every piece made of those characters (118,583 of them; 106 MB) finds
exactly the segmentation of the full one. Its ids are mapped back to the full
vocabulary's. A text with any other character (Cyrillic, CJK, emoji, ...) goes
to the full tokenizer, loaded the first time one turns up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Latin scripts with their diacritics and modifier letters, Greek (NFKC turns the micro sign into mu),
# punctuation, currency, letterlike symbols, number forms, arrows, mathematical operators, and
# SentencePiece's metaspace.
LATIN = ((0x0000, 0x03FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x22FF),
         (0x2581, 0x2581))
_OUTSIDE = re.compile("[^" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in LATIN) + "]")
# versioned: a change of LATIN must not reuse an old subset
SUBSET_FILE, IDS_FILE, FULL_FILE = "tokenizer-latin-v1.json", "tokenizer-latin-v1-ids.npy", "tokenizer.json"


def subset(full: Path) -> tuple[str, np.ndarray]:
    """The Latin subset of the Unigram tokenizer at `full`, as tokenizer JSON, and the full ids of its pieces."""
    spec = json.loads(full.read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    lowest = min(range(len(vocab)), key=lambda i: vocab[i][1])  # sets the unknown-piece penalty: keep it
    specials = {t["id"] for t in spec.get("added_tokens", [])} | {spec["model"]["unk_id"]}
    keep = sorted(i for i, (piece, _) in enumerate(vocab)
                  if i in specials or i == lowest or not _OUTSIDE.search(piece))
    if keep[: len(specials)] != sorted(specials) or sorted(specials) != list(range(len(specials))):
        raise ValueError("the tokenizer's special tokens are not its first ids")  # the post-processor uses them
    spec["model"]["vocab"] = [vocab[i] for i in keep]
    return json.dumps(spec, ensure_ascii=False), np.asarray(keep, dtype=np.int64)


class Tokenizer:
    """Batches of ids, attention masks and character offsets, as the full tokenizer would give them."""

    def __init__(self, folder: Path, max_length: int, pad_id: int) -> None:
        self.folder, self.max_length, self.pad_id = folder, max_length, pad_id
        self._subset = self._load(folder / SUBSET_FILE)
        self._ids = np.load(folder / IDS_FILE)
        self._full = None

    def _load(self, path: Path):
        from tokenizers import Tokenizer as Rust

        tok = Rust.from_file(str(path))
        tok.enable_truncation(self.max_length)
        tok.enable_padding(pad_id=self.pad_id)
        return tok

    def covers(self, text: str) -> bool:
        """Whether the Latin subset tokenizes `text` exactly like the full tokenizer."""
        return not _OUTSIDE.search(self._subset.normalizer.normalize_str(text))

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Ids and attention mask (padded to the longest), and per text the offsets of its real tokens."""
        if all(self.covers(t) for t in texts):
            encodings = self._subset.encode_batch(list(texts))
            ids = self._ids[np.array([e.ids for e in encodings], dtype=np.int64)]
        else:
            if self._full is None:
                self._full = self._load(self.folder / FULL_FILE)
            encodings = self._full.encode_batch(list(texts))
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        offsets = [np.asarray(e.offsets[: int(m.sum())], dtype=np.int64).reshape(-1, 2)
                   for e, m in zip(encodings, mask)]
        return ids, mask, offsets
