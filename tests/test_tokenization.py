"""The Latin subset of e5's tokenizer must tokenize exactly like the full one (marked `model`: it needs the export)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.tokenization import FULL_FILE, Tokenizer

pytestmark = pytest.mark.model

TEXTS = [
    "passage: Stoltenberg sei sich absolut sicher, dass die Ukraine ihr Ziel erreichen werde.",
    "query: Wie viel kostet 1 µg Gold? ½ Kilo ﬁnden – „Straße“ 2,5 % … © ™ €",
    "passage: Ärzte, Ökonomen und Übersetzer trafen sich in Zürich (σ = 0,3).",
]
FOREIGN = ["passage: Путин сказал: 北京 ist weit 😀", "query: Ελληνικά und русский"]


@pytest.fixture(scope="module")
def tokenizers(embedder):
    ours = Tokenizer(embedder.backend.tokenizer.folder, max_length=512, pad_id=1)  # its own: nothing loaded yet
    return ours, ours._load(ours.folder / FULL_FILE)


def _reference(full, texts):
    encodings = full.encode_batch(texts)
    ids = np.array([e.ids for e in encodings])
    return ids, [np.asarray(e.offsets[: sum(e.attention_mask)]).reshape(-1, 2) for e in encodings]


def _assert_same(ours, full, texts):
    ids, _, offsets = ours.encode(texts)
    ref_ids, ref_offsets = _reference(full, texts)
    assert np.array_equal(ids, ref_ids)
    assert all(np.array_equal(a, b) for a, b in zip(offsets, ref_offsets))


def test_the_latin_subset_gives_the_full_tokenizers_ids_and_offsets(tokenizers, gnad_rows):
    ours, full = tokenizers
    texts = TEXTS + ["passage: " + text[:1500] for _, text in gnad_rows]
    assert all(ours.covers(t) for t in texts)
    _assert_same(ours, full, texts)
    assert ours._full is None  # never needed for these


def test_other_scripts_go_to_the_full_tokenizer(tokenizers):
    ours, full = tokenizers
    assert not any(ours.covers(t) for t in FOREIGN[:1])
    _assert_same(ours, full, FOREIGN + TEXTS[:1])  # a mixed batch goes to the full one as a whole
    assert ours._full is not None
