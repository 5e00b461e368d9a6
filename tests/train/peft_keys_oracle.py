"""Oracle for tests/train/peft_adapter_test.ts: loads adapter_model.bin with torch.load (python3-torch 1.13) and
checks it against the state-dict keys PEFT 0.3 saves for LlamaForCausalLM, derived here from the module tree:
LoraModel wraps the model as `base_model.model`, LlamaForCausalLM holds `model` (LlamaModel: embed_tokens,
layers.N.self_attn.{q,k,v,o}_proj, layers.N.mlp.{gate,up,down}_proj) and `lm_head`; a targeted nn.Linear(in, out)
gets lora_A = Linear(in, r) (weight (r, in)) and lora_B = Linear(r, out) (weight (out, r)); get_peft_model_state_dict
drops the adapter name; modules_to_save are saved whole under the original module's name.
Also parses adapter_model.safetensors by hand (8-byte header length, JSON, raw little-endian data) and requires
the same values. Prints "ok N tensors" on success.
"""
import json
import struct
import sys

import torch

args = json.loads(sys.argv[1])
dim, hidden, vocab, r = args["dim"], args["hidden"], args["vocab"], args["r"]
head = dim // args["heads"]
kv_dim = args["kv_heads"] * head
linears = {
    "q_proj": ("self_attn", dim, dim),
    "k_proj": ("self_attn", dim, kv_dim),
    "v_proj": ("self_attn", dim, kv_dim),
    "o_proj": ("self_attn", dim, dim),
    "gate_proj": ("mlp", dim, hidden),
    "up_proj": ("mlp", dim, hidden),
    "down_proj": ("mlp", hidden, dim),
}
expected = {}
for layer in range(args["layers"]):
    for name in args["targets"]:
        block, n_in, n_out = linears[name]
        prefix = f"base_model.model.model.layers.{layer}.{block}.{name}"
        expected[f"{prefix}.lora_A.weight"] = (r, n_in)
        expected[f"{prefix}.lora_B.weight"] = (n_out, r)
whole = {"embed_tokens": "base_model.model.model.embed_tokens.weight", "lm_head": "base_model.model.lm_head.weight"}
for m in args["modules_to_save"]:
    expected[whole[m]] = (vocab, dim)

sd = torch.load(f"{args['dir']}/adapter_model.bin", map_location="cpu")
assert isinstance(sd, dict), type(sd)
missing = sorted(set(expected) - set(sd))
extra = sorted(set(sd) - set(expected))
assert not missing and not extra, f"missing {missing[:5]} extra {extra[:5]}"
want_dtype = getattr(torch, args["dtype"])
for k, shape in expected.items():
    t = sd[k]
    assert tuple(t.shape) == shape, f"{k}: shape {tuple(t.shape)} expected {shape}"
    assert t.dtype == want_dtype, f"{k}: dtype {t.dtype}"
    s = float(t.double().abs().sum())
    e = args["abs_sums"][k]
    tol = 1e-9 if args["dtype"] == "float32" else 2e-3
    assert abs(s - e) <= tol * max(1.0, abs(e)), f"{k}: sum |x| {s} expected {e}"

with open(f"{args['dir']}/adapter_model.safetensors", "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8 : 8 + n])
assert header.pop("__metadata__") == {"format": "pt"}
assert set(header) == set(expected), "safetensors keys differ"
fmt = {"F32": ("f", 4, torch.float32), "F16": ("e", 2, torch.float16)}
for k, info in header.items():
    code, size, dt = fmt[info["dtype"]]
    a, b = info["data_offsets"]
    vals = struct.unpack(f"<{(b - a) // size}{code}", raw[8 + n + a : 8 + n + b])
    t = torch.tensor(vals, dtype=torch.float64).reshape(info["shape"])
    assert torch.equal(t, sd[k].double()), f"{k}: safetensors and .bin values differ"
print(f"ok {len(expected)} tensors")
