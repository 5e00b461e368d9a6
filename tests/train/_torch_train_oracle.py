# PyTorch 1.13 autograd oracle for src/train: builds a LLaMA from raw f32 files (Meta/GGUF row layout, RoPE on
# adjacent pairs via torch.view_as_complex as Meta's llama/model.py, GQA by repeating kv heads), optional LoRA
# (y = x Wᵀ + s·(x Aᵀ) Bᵀ as PEFT), LlamaForCausalLM's shifted CrossEntropyLoss(ignore_index=-100); prints the
# loss and the gradient of every trainable tensor as JSON, or runs N steps of torch.optim.AdamW + LambdaLR
# (the warmup+cosine/linear lambdas as transformers defines them) with clip_grad_norm_ and gradient accumulation.
# Usage: /usr/bin/python3 _torch_train_oracle.py MANIFEST.json   (tensors are DIR/<name>.f32 next to it)
import json, math, os, sys
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
man = json.load(open(sys.argv[1]))
d = os.path.dirname(sys.argv[1])
c = man["config"]
dim, L, H, KV, hd, V = c["dim"], c["nLayers"], c["nHeads"], c["nKvHeads"], c["hiddenDim"], c["vocabSize"]
hs = dim // H
eps, theta = c["normEps"], c["ropeTheta"]


def load(name, shape):
    t = torch.frombuffer(bytearray(open(os.path.join(d, name + ".f32"), "rb").read()), dtype=torch.float32)
    return t.clone().reshape(shape)


W = {}
trainable = set(man["trainable"])
DT = torch.float64 if man.get("float64") else torch.float32  # float64: the rounding-free reference
for name, shape in man["tensors"].items():
    W[name] = load(name, shape).to(DT).requires_grad_(name in trainable)

lora = man.get("lora")  # {"scaling": s}


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def lin(x, key):
    y = F.linear(x, W[key])
    if key + ".lora_A" in W:
        y = y + F.linear(F.linear(x, W[key + ".lora_A"]), W[key + ".lora_B"]) * lora["scaling"]
    return y


def rope(x, T):  # x (B, T, heads, hs), adjacent pairs as complex numbers
    freqs = 1.0 / (theta ** (torch.arange(0, hs, 2)[: hs // 2].float() / hs))
    f = torch.outer(torch.arange(T).float(), freqs)
    cis = torch.polar(torch.ones_like(f), f)[None, :, None, :]
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * cis.to(xc.dtype)).flatten(3)


def loss_of(tokens, labels):
    B, T = tokens.shape
    x = W["tok_embd"][tokens]
    mask = torch.full((T, T), float("-inf"), dtype=DT).triu(1)
    for l in range(L):
        p = f"layers.{l}."
        h = rms(x, W[p + "attn_norm"])
        q = rope(lin(h, p + "q").view(B, T, H, hs), T)
        k = rope(lin(h, p + "k").view(B, T, KV, hs), T)
        v = lin(h, p + "v").view(B, T, KV, hs)
        k = k.repeat_interleave(H // KV, dim=2)
        v = v.repeat_interleave(H // KV, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hs) + mask, dim=-1)
        x = x + lin((a @ v).transpose(1, 2).reshape(B, T, dim), p + "o")
        h = rms(x, W[p + "ffn_norm"])
        x = x + lin(F.silu(lin(h, p + "gate")) * lin(h, p + "up"), p + "down")
    logits = lin(rms(x, W["output_norm"]), "output")
    shift_logits = logits[:, :-1, :].reshape(-1, V)
    shift_labels = labels[:, 1:].reshape(-1)
    return torch.nn.CrossEntropyLoss(ignore_index=-100)(shift_logits, shift_labels)


def batch(b):
    t = torch.tensor(b["tokens"], dtype=torch.long).view(b["batch"], b["seqLen"])
    y = torch.tensor(b["labels"], dtype=torch.long).view(b["batch"], b["seqLen"])
    return t, y


def hf_merged_loss(tokens, labels):
    # transformers' layout: q/k rows permuted for rotate-half RoPE (convert_llama_weights_to_hf.py `permute`), the
    # PEFT adapter merged as W + scaling·B·A (peft get_delta_weight), modules_to_save replacing the tensor
    def permute(w, n_heads):
        d1, d2 = w.shape
        return w.view(n_heads, d1 // n_heads // 2, 2, d2).transpose(1, 2).reshape(d1, d2)

    Hf = {k: v.detach().clone() for k, v in W.items() if ".lora_" not in k}
    for l in range(L):
        Hf[f"layers.{l}.q"] = permute(Hf[f"layers.{l}.q"], H)
        Hf[f"layers.{l}.k"] = permute(Hf[f"layers.{l}.k"], KV)
    hf_role = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate", "up_proj": "up",
               "down_proj": "down"}
    ad = {}
    for name, shape in man["adapter"].items():
        ad[name] = load("adapter." + name, shape).double()
    for name in ad:
        if name == "base_model.model.model.embed_tokens.weight":
            Hf["tok_embd"] = ad[name].float()
        elif name == "base_model.model.lm_head.weight":
            Hf["output"] = ad[name].float()
        elif name.endswith(".lora_A.weight"):
            parts = name.split(".")  # base_model.model.model.layers.{l}.{self_attn|mlp}.{x_proj}.lora_A.weight
            l, proj = int(parts[4]), parts[6]
            B_ = ad[name.replace("lora_A", "lora_B")]
            key = f"layers.{l}.{hf_role[proj]}"
            Hf[key] = (Hf[key].double() + man["adapterScaling"] * (B_ @ ad[name])).float()
    B, T = tokens.shape
    inv = 1.0 / (theta ** (torch.arange(0, hs, 2).float() / hs))
    emb = torch.cat([torch.outer(torch.arange(T).float(), inv)] * 2, dim=-1)
    cos, sin = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]

    def rot(x):  # LlamaRotaryEmbedding / apply_rotary_pos_emb: x·cos + rotate_half(x)·sin
        x1, x2 = x[..., : hs // 2], x[..., hs // 2:]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    x = Hf["tok_embd"][tokens]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(L):
        p = f"layers.{l}."
        h = rms(x, Hf[p + "attn_norm"])
        q = rot(F.linear(h, Hf[p + "q"]).view(B, T, H, hs))
        k = rot(F.linear(h, Hf[p + "k"]).view(B, T, KV, hs)).repeat_interleave(H // KV, dim=2)
        v = F.linear(h, Hf[p + "v"]).view(B, T, KV, hs).repeat_interleave(H // KV, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hs) + mask, dim=-1)
        x = x + F.linear((a @ v).transpose(1, 2).reshape(B, T, dim), Hf[p + "o"])
        h = rms(x, Hf[p + "ffn_norm"])
        x = x + F.linear(F.silu(F.linear(h, Hf[p + "gate"])) * F.linear(h, Hf[p + "up"]), Hf[p + "down"])
    logits = F.linear(rms(x, Hf["output_norm"]), Hf["output"])
    return torch.nn.CrossEntropyLoss(ignore_index=-100)(logits[:, :-1, :].reshape(-1, V), labels[:, 1:].reshape(-1))


names = man["trainable"]
out = {}
if "adapter" in man:
    with torch.no_grad():
        out["loss"] = hf_merged_loss(*batch(man["batch"])).item()
elif "steps" not in man:
    loss = loss_of(*batch(man["batch"]))
    loss.backward()
    out["loss"] = loss.item()
    out["grads"] = {n: W[n].grad.reshape(-1).tolist() for n in names}
else:
    o = man["optim"]
    decay = [W[n] for n in names if n in o["decay"]]
    nodecay = [W[n] for n in names if n not in o["decay"]]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weightDecay"]}, {"params": nodecay, "weight_decay": 0.0}],
        lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"])
    warm, total = o["warmup"], o["maxSteps"]

    def lam(step):  # transformers: get_{cosine,linear}_schedule_with_warmup
        if step < warm:
            return float(step) / float(max(1, warm))
        progress = float(step - warm) / float(max(1, total - warm))
        if o["schedule"] == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
        return max(0.0, float(total - step) / float(max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    losses, lrs, norms = [], [], []
    for micro in man["steps"]:
        opt.zero_grad()
        tot = 0.0
        for b in micro:
            loss = loss_of(*batch(b)) / len(micro)
            loss.backward()
            tot += loss.item()
        norms.append(torch.nn.utils.clip_grad_norm_([W[n] for n in names], o["maxGradNorm"]).item())
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        losses.append(tot)
    out["losses"], out["lrs"], out["gradNorms"] = losses, lrs, norms
    out["params"] = {n: W[n].detach().reshape(-1).tolist() for n in names}
print(json.dumps(out))
