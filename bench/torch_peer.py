#!/usr/bin/env python3
"""PyTorch peer for `npm run bench`: the same models as cliplab, measured in PyTorch.

Subcommands (one per benchmark suite; later suites add their own):

  encoders  image and text encoder throughput of an OpenAI CLIP (ViT-B/32 by default; any
            ViT or ModifiedResNet with --model-json, e.g. RN50) (float32, eval mode, no
            autograd), optionally followed by a feature-parity check against cliplab's
            weights and features, and an ONNX export of the same model for onnxruntime.
  train     training of a small CLIP (ViT-Tiny-28 for bench/train.ts) on batches cliplab wrote
            to disk: steady-state step time, and the whole default recipe with zero-shot
            evaluation (`--serve` only; commands in `serve_train`).

One-shot use prints exactly one JSON line on stdout (diagnostics go to stderr); exit status 0
on success. `encoders --serve` instead answers JSON-line commands on stdin, one call at a time,
so that bench/encoders.ts can interleave PyTorch and tfjs calls (both then see the same load
from whatever else runs on the machine):

  {"cmd": "time", "kind": "image"|"text", "batch": N}  -> {"ok": true, "seconds": s, "cpu_seconds": c}
  {"cmd": "parity", "dir": path}                      -> {"ok": true, "parity": {...}}
  {"cmd": "export_onnx", "dir": path}                 -> {"ok": true, "vision": file, "text": file, "seconds": s}
  {"cmd": "exit"}                                     -> {"ok": true, "peak_rss_mb": ...}, then exits

The model is written here from the architecture description of OpenAI's CLIP
(https://github.com/openai/CLIP/blob/main/clip/model.py): module names follow OpenAI's
state_dict names so a cliplab checkpoint loads with `load_state_dict(strict=True)`.
"""
import argparse
from collections import OrderedDict
import json
import math
import os
import platform
import re
import resource
import statistics
import struct
import sys
import time

import torch
from torch import nn


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def make_activation(kind):
    """OpenAI's QuickGELU, or the exact (erf) GELU that open_clip uses when quick_gelu is false."""
    if kind == "quick_gelu":
        return QuickGELU()
    if kind == "gelu":
        return nn.GELU()  # approximate="none": the erf form
    raise ValueError(f"unknown activation {kind!r}")


class Mlp(nn.Module):
    def __init__(self, width, hidden, activation="quick_gelu"):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.gelu = make_activation(activation)
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block; x is [T, B, D] (sequence first, as nn.MultiheadAttention's default)."""

    def __init__(self, width, heads, attn_mask=None, activation="quick_gelu"):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = Mlp(width, 4 * width, activation)
        self.ln_2 = nn.LayerNorm(width)
        self.attn_mask = attn_mask  # a plain attribute, not a buffer (not in the state_dict)

    def forward(self, x, attn_mask=None):
        mask = self.attn_mask if attn_mask is None else attn_mask
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None, activation="quick_gelu"):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask, activation) for _ in range(layers)])

    def forward(self, x, attn_mask=None):
        if attn_mask is None:
            return self.resblocks(x)
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch, width, layers, heads, embed_dim, activation="quick_gelu"):
        super().__init__()
        grid = image_size // patch
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, activation=activation)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))

    def forward(self, pixels):  # [B, 3, S, S]
        x = self.conv1(pixels)  # [B, width, g, g]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, g*g, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)  # [B, g*g+1, width]
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # through [T, B, width]
        return self.ln_post(x[:, 0, :]) @ self.proj  # [B, embed]


class Bottleneck(nn.Module):
    """OpenAI's ModifiedResNet bottleneck (clip/model.py): avgpool before the last 1x1 conv when strided."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample = None
        if stride > 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, stride=1, bias=False)),
                ("1", nn.BatchNorm2d(planes * self.expansion)),
            ]))

    def forward(self, x):
        identity = x
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.avgpool(out)
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu3(out + identity)


class AttentionPool2d(nn.Module):
    def __init__(self, spacial_dim, embed_dim, num_heads, output_dim=None):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spacial_dim ** 2 + 1, embed_dim) / embed_dim ** 0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        self.num_heads = num_heads

    def forward(self, x):
        x = x.flatten(start_dim=2).permute(2, 0, 1)  # [HW, B, C]
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # [HW+1, B, C]
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        x, _ = nn.functional.multi_head_attention_forward(
            query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight, k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
            in_proj_weight=None, in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0, out_proj_weight=self.c_proj.weight,
            out_proj_bias=self.c_proj.bias, use_separate_proj_weight=True, training=self.training, need_weights=False)
        return x.squeeze(0)


class ModifiedResNet(nn.Module):
    """OpenAI's ModifiedResNet image tower (https://github.com/openai/CLIP/blob/main/clip/model.py)."""

    def __init__(self, layers, output_dim, heads, input_resolution=224, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.attnpool = AttentionPool2d(input_resolution // 32, width * 32, heads, output_dim)

    def _make_layer(self, planes, blocks, stride=1):
        layers = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        for _ in range(1, blocks):
            layers.append(Bottleneck(self._inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.avgpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


class Clip(nn.Module):
    def __init__(self, embed_dim=512, image_size=224, patch=32, vision_width=768, vision_layers=12,
                 context_length=77, vocab_size=49408, text_width=512, text_heads=8, text_layers=12,
                 vision_head_width=64, activation="quick_gelu"):
        super().__init__()
        self.context_length = context_length
        self.image_size = image_size
        if patch is None:  # ModifiedResNet (vision_layers: blocks per stage)
            self.visual = ModifiedResNet(vision_layers, embed_dim, vision_width * 32 // vision_head_width, image_size, vision_width)
        else:
            self.visual = VisionTransformer(image_size, patch, vision_width, vision_layers, vision_width // vision_head_width, embed_dim, activation)
        mask = torch.full((context_length, context_length), float("-inf")).triu_(1)
        self.transformer = Transformer(text_width, text_layers, text_heads, attn_mask=mask, activation=activation)
        self._masks = {context_length: mask}
        self.token_embedding = nn.Embedding(vocab_size, text_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, text_width))
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.empty(text_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=text_width ** -0.5)

    def encode_image(self, pixels):
        return self.visual(pixels)

    def causal_mask(self, length):
        if length not in self._masks:
            self._masks[length] = torch.full((length, length), float("-inf")).triu_(1)
        return self._masks[length]

    def encode_text(self, tokens):  # [B, T] int64, T <= context_length (rows cut after the longest EOT)
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]  # [B, T, D]
        mask = None if length == self.context_length else self.causal_mask(length)
        x = self.transformer(x.permute(1, 0, 2), mask).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection  # [B, embed]


# ---------------------------------------------------------------------------------------------
# A minimal safetensors reader (format: u64 LE header length, JSON header, raw data section)
# ---------------------------------------------------------------------------------------------

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I32": torch.int32, "I64": torch.int64}


def read_safetensors(path):
    """{name: float32 tensor} from a safetensors file (whole file read once)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (header_len,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    header.pop("__metadata__", None)
    base = 8 + header_len
    if sys.byteorder != "little":
        raise RuntimeError("this reader assumes a little-endian host")
    out = {}
    for name, entry in header.items():
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        itemsize = torch.tensor([], dtype=dtype).element_size()
        count = (end - begin) // itemsize
        t = torch.frombuffer(data, dtype=dtype, count=count, offset=base + begin) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(entry["shape"]).to(torch.float32).clone()
    return out


def read_raw(path, dtype, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=dtype).reshape(shape).clone()


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------


def no_grad_context():
    return torch.inference_mode() if hasattr(torch, "inference_mode") else torch.no_grad()


def random_tokens(batch, context, vocab, gen):
    """SOT, random ids, EOT (the largest id) at a random position, zero padding; like tokenised text."""
    sot, eot = vocab - 2, vocab - 1
    tokens = torch.zeros(batch, context, dtype=torch.long)
    for b in range(batch):
        length = int(torch.randint(8, context, (1,), generator=gen))  # position of EOT
        tokens[b, 0] = sot
        tokens[b, 1:length] = torch.randint(1, sot, (length - 1,), generator=gen)
        tokens[b, length] = eot
    return tokens


def time_it(fn, warmup, iters, budget_s=float("inf")):
    """warmup untimed calls, then up to iters timed ones, stopping once budget_s is spent (>= 1 call)."""
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < iters and (not times or sum(times) < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summarise(batch, times):
    best = min(times)
    med = statistics.median(times)
    return {
        "batch": batch,
        "iters": len(times),
        "seconds": [round(t, 4) for t in times],
        "items_per_s_best": batch / best,
        "items_per_s_median": batch / med,
    }


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def parity(model, parity_dir):
    """Loads cliplab's weights, runs its fixed inputs, compares with cliplab's features."""
    with open(os.path.join(parity_dir, "meta.json")) as f:
        meta = json.load(f)
    state = read_safetensors(os.path.join(parity_dir, meta["checkpoint"]))
    model.load_state_dict(state, strict=True)
    del state
    pixels = read_raw(os.path.join(parity_dir, meta["pixels"]["file"]), torch.float32, meta["pixels"]["shape"])
    tokens = read_raw(os.path.join(parity_dir, meta["tokens"]["file"]), torch.int32, meta["tokens"]["shape"]).long()
    result = {}
    with no_grad_context():
        ours = {"image": model.encode_image(pixels), "text": model.encode_text(tokens)}
    for kind in ("image", "text"):
        spec = meta[f"{kind}_features"]
        theirs = read_raw(os.path.join(parity_dir, spec["file"]), torch.float32, spec["shape"])
        ref = ours[kind].double()
        diff = (theirs.double() - ref).abs()
        result[kind] = {
            # max|tfjs - torch| / max|torch|: the project's feature tolerance measure
            "max_abs_diff": float(diff.max()),
            "max_rel_diff": float(diff.max() / ref.abs().max().clamp_min(1e-12)),
            # per-row cosine similarity of the feature vectors, the smallest
            "min_cosine": float(torch.nn.functional.cosine_similarity(theirs.double(), ref, dim=1).min()),
        }
    return result


def setup(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set
    t0 = time.perf_counter()
    model = (model_from_meta(json.loads(args.model_json)) if args.model_json else Clip()).eval()
    info = {
        "ok": True,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "inference_mode": hasattr(torch, "inference_mode"),
        "blas": blas_info(),
        "build_seconds": round(time.perf_counter() - t0, 3),
    }
    return model, info


class Inputs:
    """Random inputs per (kind, batch), made once."""

    def __init__(self, seed, image_size=224, context_length=77, vocab_size=49408):
        self.gen = torch.Generator().manual_seed(seed)
        self.cache = {}
        self.image_size, self.context_length, self.vocab_size = image_size, context_length, vocab_size

    def get(self, kind, batch):
        key = (kind, batch)
        if key not in self.cache:
            if kind == "image":
                self.cache[key] = torch.randn(batch, 3, self.image_size, self.image_size, generator=self.gen)
            elif kind == "text":
                self.cache[key] = random_tokens(batch, self.context_length, self.vocab_size, self.gen)
            else:
                raise ValueError(f"unknown kind {kind!r}")
        return self.cache[key]


def encode(model, kind, x):
    return model.encode_image(x) if kind == "image" else model.encode_text(x)


class _Tower(nn.Module):
    def __init__(self, model, kind):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, x):
        return encode(self.model, self.kind, x)


def export_onnx(model, directory, seed):
    """torch.onnx.export of both encoders (opset 14, dynamic batch), the graphs onnxruntime runs in
    bench/inference.ts; vision takes pixel_values [B, 3, S, S] float32, text input_ids [B, T] int64."""
    os.makedirs(directory, exist_ok=True)
    t0 = time.perf_counter()
    inputs = Inputs(seed, model.image_size, model.context_length, model.token_embedding.num_embeddings)
    files = {}
    with torch.no_grad():
        for kind, name, out in (("image", "pixel_values", "image_embeds"), ("text", "input_ids", "text_embeds")):
            path = os.path.join(directory, f"{'vision' if kind == 'image' else 'text'}.onnx")
            # The wrapper must be in eval mode too: export restores the wrapper's own mode afterwards,
            # and a fresh module's train() would put the whole model (its BatchNorm) in training mode.
            torch.onnx.export(_Tower(model, kind).eval(), inputs.get(kind, 2), path, input_names=[name], output_names=[out],
                              dynamic_axes={name: {0: "batch"}, out: {0: "batch"}}, opset_version=14)
            files["vision" if kind == "image" else "text"] = path
    model.eval()
    return {"ok": True, **files, "seconds": round(time.perf_counter() - t0, 2)}


def run_encoders(args):
    model, out = setup(args)
    inputs = Inputs(args.seed, model.image_size, model.context_length, model.token_embedding.num_embeddings)
    rss_after_build = max_rss_mb()
    with no_grad_context():
        pixels, tokens = inputs.get("image", args.image_batch), inputs.get("text", args.text_batch)
        img_times = time_it(lambda: model.encode_image(pixels), args.warmup, args.image_iters, args.budget)
        rss_after_image = max_rss_mb()
        txt_times = time_it(lambda: model.encode_text(tokens), args.warmup, args.text_iters, args.budget)
    out["image"] = summarise(args.image_batch, img_times)
    out["text"] = summarise(args.text_batch, txt_times)
    out["peak_rss_mb"] = {"after_build": rss_after_build, "after_image": rss_after_image, "after_text": max_rss_mb()}
    if args.parity_dir:
        try:
            out["parity"] = parity(model, args.parity_dir)
        except Exception as err:  # report, do not lose the timings
            out["parity"] = {"error": f"{type(err).__name__}: {err}"}
    return out


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(args):
    """The command loop described in the module docstring."""
    model, info = setup(args)
    inputs = Inputs(args.seed, model.image_size, model.context_length, model.token_embedding.num_embeddings)
    info["ready"] = True
    info["peak_rss_mb_after_build"] = max_rss_mb()
    reply(info)
    rss_before_parity = None
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            op = cmd.get("cmd")
            if op == "time":
                x = inputs.get(cmd["kind"], int(cmd["batch"]))
                with no_grad_context():
                    c0, t0 = time.process_time(), time.perf_counter()
                    encode(model, cmd["kind"], x)
                    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
                reply({"ok": True, "seconds": seconds, "cpu_seconds": cpu})
            elif op == "parity":
                rss_before_parity = max_rss_mb()
                reply({"ok": True, "parity": parity(model, cmd["dir"])})
            elif op == "export_onnx":
                reply(export_onnx(model, cmd["dir"], args.seed))
            elif op == "exit":
                reply({"ok": True, "peak_rss_mb": rss_before_parity or max_rss_mb(), "peak_rss_mb_with_parity": max_rss_mb()})
                return 0
            else:
                reply({"ok": False, "error": f"unknown command {op!r}"})
        except Exception as err:
            reply({"ok": False, "error": f"{type(err).__name__}: {err}"})
    return 0



# ---------------------------------------------------------------------------------------------
# Training (bench/train.ts): the same model, loss, optimizer and data as cliplab's trainer
# ---------------------------------------------------------------------------------------------


def model_from_meta(m):
    return Clip(embed_dim=m["embed_dim"], image_size=m["image_size"], patch=m["patch"], vision_width=m["vision_width"],
                vision_layers=m["vision_layers"], context_length=m["context_length"], vocab_size=m["vocab_size"],
                text_width=m["text_width"], text_heads=m["text_heads"], text_layers=m["text_layers"],
                vision_head_width=m["vision_head_width"], activation=m["activation"])


def adamw_for(model, opt):
    """open_clip's grouping: weight decay on matrices and conv kernels, never on embeddings, gains, biases, logit_scale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embedding" not in name else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": opt["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"])


MAX_LOGIT_SCALE = math.log(100)


def train_step(model, optimizer, pixels, tokens, lr, grad_clip):
    """Symmetric InfoNCE, backward, global-norm clip, AdamW, the logit_scale clamp; returns (loss, grad norm)."""
    for g in optimizer.param_groups:
        g["lr"] = lr
    img = model.encode_image(pixels)
    txt = model.encode_text(tokens)
    img = img / img.norm(dim=1, keepdim=True)
    txt = txt / txt.norm(dim=1, keepdim=True)
    logits = model.logit_scale.exp() * img @ txt.t()
    labels = torch.arange(logits.shape[0])
    loss = (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.t(), labels)) / 2
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip else float("inf"))
    optimizer.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
    return float(loss.item()), float(norm)


class TrainBench:
    """State of the `train --serve` peer: one model and optimizer per loaded batch set."""

    def __init__(self, args):
        self.args = args
        self.model = None
        self.optimizer = None
        self.batches = []
        self.cursor = 0
        self.meta = None

    def load(self, directory, batch):
        with open(os.path.join(directory, "meta.json")) as f:
            meta = json.load(f)
        self.meta = meta
        m = meta["model"]
        torch.manual_seed(self.args.seed)
        self.model = model_from_meta(m).train()
        self.model.load_state_dict(read_safetensors(os.path.join(directory, meta["weights"])), strict=True)
        self.optimizer = adamw_for(self.model, meta["adamw"])
        entry = meta["sets"][str(batch)]
        n, s, ctx = entry["count"], m["image_size"], m["context_length"]
        pixels = read_raw(os.path.join(directory, entry["pixels"]), torch.float32, [n, batch, s, s, 3])
        tokens = read_raw(os.path.join(directory, entry["tokens"]), torch.int32, [n, batch, ctx]).long()
        self.batches = [(pixels[i].permute(0, 3, 1, 2).contiguous(), tokens[i, :, :entry["lengths"][i]].contiguous()) for i in range(n)]
        self.cursor = 0
        self.step_index = 0
        return {"batches": n, "params": sum(p.numel() for p in self.model.parameters())}

    def steps(self, n, lr):
        seconds, losses = [], []
        c0 = time.process_time()
        for _ in range(n):
            pixels, tokens = self.batches[self.cursor % len(self.batches)]
            self.cursor += 1
            t0 = time.perf_counter()
            loss, _ = train_step(self.model, self.optimizer, pixels, tokens, lr, self.meta["grad_clip"])
            seconds.append(time.perf_counter() - t0)
            losses.append(loss)
        return {"seconds": seconds, "losses": losses, "cpu_seconds": time.process_time() - c0}


def zero_shot_weights(model, prompts, classes, templates):
    with no_grad_context():
        emb = model.encode_text(prompts)
        emb = emb / emb.norm(dim=1, keepdim=True)
        mean = emb.reshape(classes, templates, -1).mean(dim=1)
        return mean / mean.norm(dim=1, keepdim=True)


def zero_shot_top1(model, weights, images_u8, labels, table, limit, batch=500):
    """Fraction of the first `limit` test images whose nearest class embedding (cosine) is the label."""
    correct = 0
    with no_grad_context():
        for start in range(0, limit, batch):
            end = min(limit, start + batch)
            feats = model.encode_image(pixels_from_u8(images_u8[start:end], table, model.image_size))
            pred = (feats / feats.norm(dim=1, keepdim=True) @ weights.t()).argmax(dim=1)
            correct += int((pred == labels[start:end]).sum())
    return correct / limit


def pixels_from_u8(images_u8, table, size=None):
    """[B, H, W] grey levels -> [B, 3, S, S] CLIP-normalised, through cliplab's float32 lookup table [3, 256],
    centred on a black canvas when S > H (as cliplab's Batcher does)."""
    b, h, w = images_u8.shape
    size = size or h
    if size > h:
        canvas = torch.zeros((b, size, size), dtype=images_u8.dtype)
        top, left = (size - h) // 2, (size - w) // 2
        canvas[:, top:top + h, left:left + w] = images_u8
        images_u8 = canvas
    return table[:, images_u8.long()].permute(1, 0, 2, 3).contiguous()


def train_accuracy(directory, args):
    """The default recipe end to end on the batches cliplab's Batcher made, evaluated like cliplab's trainer."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    m = meta["model"]
    size = meta["height"]
    load = lambda key, dtype, shape: read_raw(os.path.join(directory, meta[key]), dtype, shape)
    train_u8 = load("train_images", torch.uint8, [meta["train_count"], size, size])
    test_u8 = load("test_images", torch.uint8, [meta["test_count"], size, size])
    test_labels = load("test_labels", torch.uint8, [meta["test_count"]]).long()
    table = load("table", torch.float32, [3, 256])
    steps, batch = meta["steps"], meta["batch"]
    indices = load("indices", torch.int32, [steps, batch]).long()
    tokens = load("tokens", torch.int32, [steps, batch, m["context_length"]]).long()
    prompts = load("prompts", torch.int32, [meta["classes"] * meta["templates"], m["context_length"]]).long()
    torch.manual_seed(args.seed)
    model = model_from_meta(m).train()
    model.load_state_dict(read_safetensors(os.path.join(directory, meta["weights"])), strict=True)
    optimizer = adamw_for(model, meta["adamw"])
    eval_steps = set(meta["eval_steps"])
    train_seconds, evals, losses = 0.0, [], []
    wall0, cpu0 = time.perf_counter(), time.process_time()

    def evaluate(step, limit):
        model.eval()
        w = zero_shot_weights(model, prompts, meta["classes"], meta["templates"])
        top1 = zero_shot_top1(model, w, test_u8, test_labels, table, limit)
        model.train()
        return top1

    for step in range(steps):
        pixels = pixels_from_u8(train_u8[indices[step]], table, m["image_size"])
        toks = tokens[step, :, :meta["lengths"][step]].contiguous()
        t0 = time.perf_counter()
        loss, _ = train_step(model, optimizer, pixels, toks, meta["lrs"][step], meta["grad_clip"])
        train_seconds += time.perf_counter() - t0
        losses.append(loss)
        if not math.isfinite(loss):
            raise RuntimeError(f"loss is {loss} at step {step}")
        done = step + 1
        if done in eval_steps:
            evals.append({"step": done, "train_seconds": train_seconds, "top1": evaluate(done, meta["eval_limit"]), "images": meta["eval_limit"]})
    final = evaluate(steps, meta["final_limit"])
    return {
        "steps": steps,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - wall0,
        "cpu_seconds": time.process_time() - cpu0,
        "pairs_per_s": steps * batch / train_seconds,
        "final_top1": final,
        "final_images": meta["final_limit"],
        "final_loss": losses[-1],
        "losses_every_50": losses[::50],
        "evals": evals,
        "logit_scale": float(model.logit_scale),
    }


def serve_train(args):
    """`train --serve`: {"cmd": "load", "dir", "batch"}, {"cmd": "steps", "n", "lr"}, {"cmd": "accuracy", "dir"}, {"cmd": "exit"}."""
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    bench = TrainBench(args)
    reply({"ok": True, "ready": True, "torch": torch.__version__, "python": platform.python_version(),
           "threads": torch.get_num_threads(), "blas": blas_info(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            op = cmd.get("cmd")
            if op == "load":
                reply({"ok": True, **bench.load(cmd["dir"], int(cmd["batch"]))})
            elif op == "steps":
                reply({"ok": True, **bench.steps(int(cmd["n"]), float(cmd["lr"]))})
            elif op == "accuracy":
                reply({"ok": True, **train_accuracy(cmd["dir"], args), "peak_rss_mb": max_rss_mb()})
            elif op == "exit":
                reply({"ok": True, "peak_rss_mb": max_rss_mb()})
                return 0
            else:
                reply({"ok": False, "error": f"unknown command {op!r}"})
        except Exception as err:
            reply({"ok": False, "error": f"{type(err).__name__}: {err}"})
    return 0


def blas_info():
    """The BLAS_INFO / USE_MKLDNN fields of torch's build configuration."""
    try:
        cfg = torch.__config__.show()
    except Exception:
        return None
    fields = re.findall(r"\b(BLAS_INFO|USE_MKLDNN|USE_OPENMP)=([^,\s]+)", cfg)
    return ", ".join(f"{k}={v}" for k, v in fields) or None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="suite", required=True)
    e = sub.add_parser("encoders", help="image and text encoder throughput of ViT-B/32")
    e.add_argument("--image-batch", type=int, default=8)
    e.add_argument("--text-batch", type=int, default=32)
    e.add_argument("--image-iters", type=int, default=3)
    e.add_argument("--text-iters", type=int, default=3)
    e.add_argument("--warmup", type=int, default=1)
    e.add_argument("--budget", type=float, default=float("inf"), help="seconds of timed calls per encoder, at most")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--parity-dir", default=None, help="directory with meta.json written by bench/inference.ts")
    e.add_argument("--model-json", default=None, help="the architecture as model_from_meta takes it (default: ViT-B/32)")
    e.add_argument("--serve", action="store_true", help="answer JSON-line commands on stdin (see the docstring)")
    t = sub.add_parser("train", help="training steps of a small CLIP (bench/train.ts); --serve only")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--serve", action="store_true", help="answer JSON-line commands on stdin (see serve_train)")
    args = p.parse_args(argv)
    try:
        if args.suite == "train":
            if not args.serve:
                raise ValueError("train runs only as --serve (driven by bench/train.ts)")
            return serve_train(args)
        if args.serve:
            return serve(args)
        out = run_encoders(args)
    except Exception as err:
        print(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}"}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
