"""open_clip loads what cliplab saves: run after bench/open_clip_interop.ts (see its header).

For each folder OUT_DIR/PRESET written there (model.safetensors + open_clip_config.json, fixed
inputs, cliplab's features), this builds the model with open_clip's own
``create_model("local-dir:FOLDER")`` -- its config reading, its checkpoint search and its strict
``load_state_dict`` -- runs ``encode_image`` / ``encode_text`` on the same inputs and prints the
largest differences from cliplab's features. With ``--fixtures DIR`` it also writes, per preset,
the state-dict names and shapes open_clip's ``CLIP`` has for that model_cfg (the fixture
test/io/checkpoint.test.ts compares cliplab's parameter list against).

open_clip does not need to be installed: ``--open-clip-src`` points at a checkout's ``src``
folder. On an old torch (Debian's 1.13) a few torch 2 names open_clip's modules touch at import
are shimmed, ``tqdm``/``ftfy``/``regex`` (tokenizer-only imports) are stubbed when absent, and
``safetensors.torch.load_file`` is a 30-line reader when the package is absent; none of that
touches the model code being checked.
"""
import argparse
import importlib
import json
import os
import struct
import sys
import types

import numpy as np
import torch


def install_shims():
    if not hasattr(torch, "compiler"):
        torch.compiler = types.SimpleNamespace(disable=lambda fn=None, **kw: fn if fn is not None else (lambda g: g), is_compiling=lambda: False)
    amp = importlib.import_module("torch.amp")
    if not hasattr(amp, "GradScaler"):
        amp.GradScaler = torch.cuda.amp.GradScaler
    F = torch.nn.functional
    if not hasattr(F, "scaled_dot_product_attention"):
        def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
            """torch 2's F.scaled_dot_product_attention in eager form (no dropout: evaluation only)."""
            s = q @ k.transpose(-2, -1) * (scale if scale is not None else q.shape[-1] ** -0.5)
            if is_causal:
                t, u = s.shape[-2], s.shape[-1]
                s = s.masked_fill(torch.ones(t, u, dtype=torch.bool).triu(1), float("-inf"))
            if attn_mask is not None:
                s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask
            return s.softmax(-1) @ v
        F.scaled_dot_product_attention = sdpa
    for name in ("tqdm", "ftfy"):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.tqdm = lambda x=None, *a, **k: x
            mod.fix_text = lambda s: s
            sys.modules[name] = mod
    try:
        import regex  # noqa: F401
    except ImportError:
        import re
        mod = types.ModuleType("regex")
        mod.__dict__.update({k: getattr(re, k) for k in dir(re) if not k.startswith("__")})
        mod.compile = lambda p, flags=0: re.compile(p.replace(r"\p{L}", "a-zA-Z").replace(r"\p{N}", "0-9"), flags)
        sys.modules["regex"] = mod
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        st = types.ModuleType("safetensors")
        st_torch = types.ModuleType("safetensors.torch")
        st_torch.load_file = read_safetensors
        st.torch = st_torch
        sys.modules["safetensors"] = st
        sys.modules["safetensors.torch"] = st_torch


def read_safetensors(path, device="cpu"):
    """safetensors format: u64 little-endian header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        start, end = e["data_offsets"]
        raw = data[start:end]
        if e["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif e["dtype"] == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif e["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: {name} has dtype {e['dtype']}")
        out[name] = torch.from_numpy(arr.copy().reshape(e["shape"]))
    return out


def same_architecture(a, b):
    """Two model_cfgs build the same CLIP (defaults filled by open_clip's config dataclasses)."""
    if a is None or "vision_cfg" not in a or "text_cfg" not in a:
        return False
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg
    try:
        return (
            a.get("embed_dim") == b.get("embed_dim")
            and bool(a.get("quick_gelu", False)) == bool(b.get("quick_gelu", False))
            and not a.get("custom_text", False)
            and CLIPVisionCfg(**a["vision_cfg"]) == CLIPVisionCfg(**b["vision_cfg"])
            and CLIPTextCfg(**a["text_cfg"]) == CLIPTextCfg(**b["text_cfg"])
        )
    except TypeError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--open-clip-src", help="open_clip's src folder (when open_clip is not installed)")
    ap.add_argument("--fixtures", help="write <preset>.state_dict.json here")
    args = ap.parse_args()
    if args.open_clip_src:
        sys.path.insert(0, args.open_clip_src)
    install_shims()
    import open_clip

    torch.set_num_threads(2)
    results = {}
    for preset in sorted(os.listdir(args.out_dir)):
        folder = os.path.join(args.out_dir, preset)
        if not os.path.isfile(os.path.join(folder, "expected.json")):
            continue
        expected = json.load(open(os.path.join(folder, "expected.json")))
        model = open_clip.create_model("local-dir:" + folder)
        model.eval()
        n, c, h, w = expected["imageShape"]
        images = torch.from_numpy(np.fromfile(os.path.join(folder, "inputs_nchw_f32.bin"), dtype="<f4").reshape(n, c, h, w).copy())
        ctx = expected["contextLength"]
        tokens = torch.zeros(len(expected["tokens"]), ctx, dtype=torch.long)
        for i, row in enumerate(expected["tokens"]):
            tokens[i, : len(row)] = torch.tensor(row)
        with torch.no_grad():
            img = model.encode_image(images).numpy()
            txt = model.encode_text(tokens).numpy()
        ours_img = np.array(expected["imageFeatures"], dtype=np.float64)
        ours_txt = np.array(expected["textFeatures"], dtype=np.float64)
        rel = lambda a, b: float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
        pp = getattr(model.visual, "preprocess_cfg", {})
        results[preset] = {
            "image_max_rel_diff": rel(img, ours_img),
            "text_max_rel_diff": rel(txt, ours_txt),
            "params": int(sum(p.numel() for p in model.parameters())),
            "preprocess_cfg": pp,
        }
        print(f"{preset}: open_clip.create_model('local-dir:...') loaded strictly; features vs cliplab: image {results[preset]['image_max_rel_diff']:.2e}, text {results[preset]['text_max_rel_diff']:.2e} (max |diff| / max |value|); preprocess_cfg {pp}")
        # A built-in open_clip config with the same architecture: then create_model(NAME, pretrained=FILE) works too.
        cfg = json.load(open(os.path.join(folder, "open_clip_config.json")))["model_cfg"]
        same = [name for name in open_clip.list_models() if same_architecture(open_clip.get_model_config(name), cfg)]
        results[preset]["builtin_configs"] = same
        if same:
            named = open_clip.create_model(same[0], pretrained=os.path.join(folder, "model.safetensors"))
            named.eval()
            with torch.no_grad():
                img2 = named.encode_image(images).numpy()
            results[preset]["builtin_image_max_rel_diff"] = rel(img2, ours_img)
            print(f"  also open_clip.create_model({same[0]!r}, pretrained=FILE): image {rel(img2, ours_img):.2e}; built-in configs with this architecture: {same}")
        if args.fixtures:
            os.makedirs(args.fixtures, exist_ok=True)
            sd = model.state_dict()
            fixture = {
                "source": "open_clip " + getattr(open_clip, "__version__", "?") + ": CLIP(**model_cfg).state_dict() (names and shapes); made by bench/open_clip_interop.py",
                "model_cfg": cfg,
                "state_dict": [[k, list(v.shape)] for k, v in sd.items()],
            }
            with open(os.path.join(args.fixtures, f"{preset}.state_dict.json"), "w") as f:
                # One tensor per line.
                f.write("{\n")
                f.write(f'"source": {json.dumps(fixture["source"])},\n"model_cfg": {json.dumps(cfg)},\n"state_dict": [\n')
                f.write(",\n".join(json.dumps(e) for e in fixture["state_dict"]))
                f.write("\n]\n}\n")
    with open(os.path.join(args.out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
