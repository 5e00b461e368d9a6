"""Oracle for tests/train/data_test.ts: the seed's data preparation re-done in Python with SentencePiece itself
(python3-sentencepiece), independently of yangtuo's tokenizer and packing.
- pre-training (run_clm_pt_with_peft.py): each line of the .txt is one example; LlamaTokenizer gives
  [bos] + sp.encode(line); datasets' batched map hands group_texts 1,000 examples at a time; each batch is
  concatenated and cut into block_size chunks, the remainder dropped (a batch shorter than one block stays whole
  in run_clm: those short blocks are filtered here because yangtuo drops them, a documented difference).
- SFT (build_dataset.py): source = PROMPT_TEMPLATE with instruction (+ "\n" + input); target = output + "</s>",
  which LlamaTokenizer reads as sp.encode(output) + [eos]; ids = (source + target)[:max], labels = ([-100] *
  len(source) + target)[:max].
Prints JSON {"blocks": [[...]], "sft": [{"ids": [...], "labels": [...]}]}.
"""
import json
import sys

import sentencepiece as spm

args = json.loads(sys.argv[1])
sp = spm.SentencePieceProcessor(model_file=args["model"])
bos, eos = sp.bos_id(), sp.eos_id()
block = args["block_size"]

with open(args["txt"], encoding="utf-8") as f:
    lines = f.read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
examples = [[bos] + sp.encode(line) for line in lines]
blocks = []
for g in range(0, len(examples), 1000):
    concatenated = [t for ex in examples[g : g + 1000] for t in ex]
    total = len(concatenated)
    if total >= block:
        total = (total // block) * block
    blocks += [concatenated[i : i + block] for i in range(0, total, block)]
blocks = [b for b in blocks if len(b) == block]

TEMPLATE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response: "
)
with open(args["alpaca"], encoding="utf-8") as f:
    records = json.load(f)
sft = []
for r in records:
    instruction = r["instruction"]
    if r.get("input") is not None and r.get("input") != "":
        instruction = instruction + "\n" + r["input"]
    s = [bos] + sp.encode(TEMPLATE.format_map({"instruction": instruction}))
    t = sp.encode(r["output"]) + [eos]
    m = args["max_seq_length"]
    sft.append({"ids": (s + t)[:m], "labels": ([-100] * len(s) + t)[:m]})
print(json.dumps({"blocks": blocks, "sft": sft}))
