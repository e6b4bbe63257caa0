"""Export the bundled model and the trained reader to ONNX (float32 and int8), once, at materialisation.

Importing torch and sentence-transformers takes seconds and most of a gigabyte;
the default path runs the same weights through ONNX Runtime instead
(rag/onnx_runtime.py). This module is the only bridge and the only one there
that needs torch: rag/onnx_runtime.py imports it when an export is missing
(first run, or new reader weights).

Three graphs, so the base weights are stored and loaded once: the encoder
(token ids -> last hidden states, plus the hidden states entering layer `tap`,
the lowest layer the reader or the ranker continues from), the reader (those
tapped states -> the reader's question vector) and the ranker (tapped states of
a question and a sentence -> their score).

int8 is ONNX Runtime's dynamic quantisation with per-channel weight scales
(per-tensor scales gave three times the vector error: cosine to float32 on
10kGNAD passages 0.984 vs 0.996), except the feed-forward output projections
of layers 0, 4 and 5, kept in float32: their inputs have the largest outliers
(keeping layer 4's alone halves the error of sentence vectors, 0.9956 -> 0.9978;
with 0 and 5, 0.9984; all twelve, 0.9988, cost a quarter of the speed-up).
The reader and the ranker stay float32: they run on one short question and a
few sentences at a time, and int8 moved the reader's vectors most (cosine 0.983).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from .onnx_runtime import staged
from .reader import QuestionReader, SentenceRanker, _additive, _hidden


class Encoder(nn.Module):
    """BertModel as (tokens, tapped): keyword arguments inside, positional inputs for the exporter
    (`BertModel.forward` rejects them positionally)."""

    def __init__(self, bert: nn.Module, tap: int) -> None:
        super().__init__()
        self.bert, self.tap, self.dim = bert, tap, bert.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.bert.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
        mask = _additive(attention_mask, h.dtype)
        tapped = h
        for i, layer in enumerate(self.bert.encoder.layer):
            if i == self.tap:
                tapped = h
            h = _hidden(layer(h, attention_mask=mask))
        return h, tapped


class ReaderTop(nn.Module):
    """`QuestionReader.read` (retrained top layers, pooling, residual map) from the encoder's tapped states,
    after the base layers between the tap and the reader's own split (when the ranker continues lower)."""

    def __init__(self, reader: QuestionReader, tap: int) -> None:
        super().__init__()
        self.reader, self.dim = reader, reader.dim
        self.between = reader.bert.encoder.layer[tap : reader.split]

    def forward(self, tapped: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = _additive(attention_mask, tapped.dtype)
        for layer in self.between:
            tapped = _hidden(layer(tapped, attention_mask=mask))
        return self.reader.read(tapped, mask, attention_mask)


def load_bert(st_dir: Path) -> nn.Module:
    """The materialised model as a plain BertModel with eager attention (exports as MatMul/Softmax,
    which ONNX Runtime quantises and runs well)."""
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return BertModel.from_pretrained(str(st_dir), attn_implementation="eager").eval()


FLOAT_IN_INT8 = tuple(f"/layer.{i}/output/dense/MatMul" for i in (0, 4, 5))  # see the module docstring


def export_encoder(st_dir: Path, tap: int, fp32: Path, int8: Path) -> None:
    export(Encoder(load_bert(st_dir), tap), ("input_ids", "attention_mask"), ("tokens", "tapped"), fp32)
    quantize(fp32, int8, keep_float=FLOAT_IN_INT8)


def export_reader(st_dir: Path, weights: Path, base_fingerprint: str, tap: int, fp32: Path) -> None:
    reader = QuestionReader.load(load_bert(st_dir), weights, base_fingerprint)
    if tap > reader.split:
        raise ValueError(f"the reader continues from layer {reader.split}, below the encoder's tap {tap}")
    export(ReaderTop(reader, tap), ("tapped", "attention_mask"), ("reader",), fp32)


def export_ranker(st_dir: Path, weights: Path, base_fingerprint: str, fp32: Path) -> None:
    export(SentenceRanker.load(load_bert(st_dir), weights, base_fingerprint),
           ("question", "question_mask", "sentence", "sentence_mask"), ("scores",), fp32)


def export(module: nn.Module, inputs: tuple[str, ...], outputs: tuple[str, ...], fp32: Path) -> None:
    """Write `module` as float32 ONNX, swapped in atomically."""
    module.eval()  # the exporter restores the mode it found; dropout must stay off
    ids, states = torch.ones(2, 7, dtype=torch.long), torch.zeros(2, 7, module.dim)
    examples = {"input_ids": ids, "attention_mask": ids, "tapped": states, "question": states,
                "question_mask": ids, "sentence": torch.zeros(2, 5, module.dim), "sentence_mask": ids[:, :5]}
    # the ranker's question and sentence lengths vary independently
    axes = {name: {0: "batch", 1: name.split("_")[0] + "_tokens" if name.startswith(("question", "sentence"))
                   else "tokens"} for name in (*inputs, *outputs)}
    axes.update({name: {0: "batch"} for name in outputs if name in ("reader", "scores")})
    with staged(fp32) as tmp, warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice is not the user's concern
        torch.onnx.export(module, tuple(examples[n] for n in inputs), str(tmp), input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes=axes, opset_version=17, dynamo=False)


def quantize(fp32: Path, int8: Path, keep_float: tuple[str, ...] = ()) -> None:
    """int8 weights (per channel; activations quantised on the fly), except the nodes named in `keep_float`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = {n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node}
    if missing := set(keep_float) - names:  # a renamed node would silently be quantised
        raise ValueError(f"{fp32.name} has no nodes {sorted(missing)}")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's advice to pre-process models goes to the root logger
    try:
        with staged(int8) as tmp:
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=list(keep_float))
    finally:
        root.setLevel(level)
