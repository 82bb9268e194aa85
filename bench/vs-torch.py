#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# bench/vs-torch.py: the PyTorch side of bench/vs-torch, a plain layer-wise
# W8A8 static calibration of a Llama model written the way a PyTorch user
# would write it (Debian's python3-torch; installed for benchmarks only,
# never for tests):
#
#   per decoder layer, one layer's weights resident (bf16 read, float32
#   compute), all samples as one batch (B, L, hidden):
#     1. float forward with per-tensor min/max observers on the inputs of
#        every quantized linear (all but mlp.down_proj, as
#        examples/dense-w8a8.yaml);
#     2. int8 weights per output channel, symmetric (scale = amax / 127);
#        int8 activations per tensor, asymmetric from the observed range;
#     3. fake-quantized forward (torch.fake_quantize_per_tensor_affine on
#        the inputs, dequantized int8 weights): its output is the next
#        layer's input; the relative output error against step 1 is the
#        layer's error;
#     4. the layer's int8 weights, scales and float tensors written to one
#        safetensors shard.
#
# Usage: vs-torch.py --model DIR --tokens FILE --out DIR [--threads N]
# (FILE: one calibration sample per line, token ids separated by spaces;
# bench/vs-torch writes it with slimflow's own tokenizer.)
import argparse
import json
import math
import mmap
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


class SafeTensors:
    """Tensors of one model.safetensors, read on demand (bf16 -> float32)."""

    def __init__(self, path):
        self.file = open(path, "rb")
        self.map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        (n,) = struct.unpack("<Q", self.map[:8])
        self.header = json.loads(self.map[8 : 8 + n])
        self.base = 8 + n

    def get(self, name):
        info = self.header[name]
        begin, end = info["data_offsets"]
        assert info["dtype"] == "BF16", info["dtype"]
        raw = np.frombuffer(self.map, dtype=np.int16, count=(end - begin) // 2,
                            offset=self.base + begin)
        t = torch.from_numpy(raw.copy()).view(torch.bfloat16)
        return t.float().reshape(info["shape"])


def write_safetensors(path, tensors):
    """tensors: name -> torch tensor (int8, float32 or bfloat16)."""
    codes = {torch.int8: "I8", torch.float32: "F32", torch.bfloat16: "BF16"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        data = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
QUANTIZED = [n for n in LINEARS if n != "mlp.down_proj"]


def layer_forward(x, w, cfg, cos, sin, mask, linear):
    """One Llama decoder layer; linear(name, input) runs each projection."""
    b, l, _ = x.shape
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", cfg["hidden_size"] // nh)
    eps = cfg["rms_norm_eps"]
    h = rms_norm(x, w["input_layernorm.weight"], eps)
    q = linear("self_attn.q_proj", h).view(b, l, nh, hd).transpose(1, 2)
    k = linear("self_attn.k_proj", h).view(b, l, nkv, hd).transpose(1, 2)
    v = linear("self_attn.v_proj", h).view(b, l, nkv, hd).transpose(1, 2)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    k = k.repeat_interleave(nh // nkv, dim=1)
    v = v.repeat_interleave(nh // nkv, dim=1)
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + mask
    o = torch.matmul(torch.softmax(scores, dim=-1), v)
    del scores, q, k
    o = o.transpose(1, 2).reshape(b, l, nh * hd)
    x = x + linear("self_attn.o_proj", o)
    h = rms_norm(x, w["post_attention_layernorm.weight"], eps)
    g = linear("mlp.gate_proj", h)
    u = linear("mlp.up_proj", h)
    return x + linear("mlp.down_proj", F.silu(g) * u)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    t0 = time.monotonic()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)

    cfg = json.load(open(os.path.join(args.model, "config.json")))
    st = SafeTensors(os.path.join(args.model, "model.safetensors"))
    samples = [[int(t) for t in line.split()] for line in open(args.tokens) if line.strip()]
    length = len(samples[0])
    if any(len(s) != length for s in samples):
        sys.exit("vs-torch.py: the samples must have one length (one batch)")
    ids = torch.tensor(samples, dtype=torch.long)  # (B, L)
    os.makedirs(args.out, exist_ok=True)

    embed = st.get("model.embed_tokens.weight")
    x = F.embedding(ids, embed)  # (B, L, hidden) float32
    write_safetensors(os.path.join(args.out, "embed.safetensors"),
                      {"model.embed_tokens.weight": embed.to(torch.bfloat16)})
    del embed

    nh = cfg["num_attention_heads"]
    hd = cfg.get("head_dim", cfg["hidden_size"] // nh)
    inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0)
                      ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)  # (L, hd)
    cos, sin = angles.cos(), angles.sin()
    mask = torch.full((length, length), float("-inf")).triu(1)  # (L, L)

    errors = []
    for i in range(cfg["num_hidden_layers"]):
        prefix = f"model.layers.{i}."
        w = {n[len(prefix):]: st.get(n) for n in st.header if n.startswith(prefix)}
        lo = {n: math.inf for n in QUANTIZED}
        hi = {n: -math.inf for n in QUANTIZED}

        def observed(name, inp):
            if name in lo:
                lo[name] = min(lo[name], inp.min().item())
                hi[name] = max(hi[name], inp.max().item())
            return F.linear(inp, w[name + ".weight"])

        y_float = layer_forward(x, w, cfg, cos, sin, mask, observed)

        out, fake_w, act = {}, {}, {}
        for name in QUANTIZED:
            wt = w[name + ".weight"]
            scale = wt.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0  # (n_out, 1)
            q = torch.clamp(torch.round(wt / scale), -128, 127)
            fake_w[name] = q * scale
            a_lo, a_hi = min(lo[name], 0.0), max(hi[name], 0.0)
            a_scale = max((a_hi - a_lo) / 255.0, 1e-12)
            a_zero = int(min(max(round(-128 - a_lo / a_scale), -128), 127))
            act[name] = (a_scale, a_zero)
            out[prefix + name + ".weight"] = q.to(torch.int8)
            out[prefix + name + ".weight_scale"] = scale.squeeze(1)
            out[prefix + name + ".input_scale"] = torch.tensor([a_scale])
            out[prefix + name + ".input_offset"] = torch.tensor([float(a_zero)])

        def fake_quantized(name, inp):
            if name not in act:
                return F.linear(inp, w[name + ".weight"])
            s, z = act[name]
            return F.linear(torch.fake_quantize_per_tensor_affine(inp, s, z, -128, 127),
                            fake_w[name])

        x = layer_forward(x, w, cfg, cos, sin, mask, fake_quantized)
        errors.append((torch.linalg.norm(x - y_float) / torch.linalg.norm(y_float)).item())
        del y_float, fake_w
        for n, t in w.items():
            if n.removesuffix(".weight") not in QUANTIZED:
                out[prefix + n] = t.to(torch.bfloat16)
        write_safetensors(os.path.join(args.out, f"layer-{i:03d}.safetensors"), out)
        del w, out

    write_safetensors(os.path.join(args.out, "norm.safetensors"),
                      {"model.norm.weight": st.get("model.norm.weight").to(torch.bfloat16)})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{ids.shape[0]} samples x {length} tokens, {cfg['num_hidden_layers']} layers")
    print(f"wall time {time.monotonic() - t0:.2f} s")
    print("layer  relative output error (quantized vs float layer, same inputs)")
    for i, e in enumerate(errors):
        print(f"{i:5d}  {e:.6f}")
    print(f"max    {max(errors):.6f}")


if __name__ == "__main__":
    main()
