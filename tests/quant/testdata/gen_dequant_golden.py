"""Golden dequantization vectors from an independent implementation: llama.cpp's gguf-py (`gguf.quants.dequantize`,
numpy), for every block type yangtuo reads. Run once; the JSON is committed and never regenerated with our code.

    mkdir /tmp/ggufpy && python3 -m zipfile -e gguf-0.19.0-py3-none-any.whl /tmp/ggufpy
    PYTHONPATH=/tmp/ggufpy python3 tests/quant/testdata/gen_dequant_golden.py > tests/quant/testdata/dequant_golden.json

Blocks are seeded random bytes whose f16 scale fields are overwritten with finite values of moderate size, so the
expected floats are finite. Outputs are float32 bit patterns (hex), compared exactly or within a stated tolerance.
"""
import json
import sys

import numpy as np
import gguf
from gguf.quants import dequantize
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T

# (type, byte offsets of f16 fields within a block)
TYPES = {
    "Q4_0": (T.Q4_0, [0]),
    "Q4_1": (T.Q4_1, [0, 2]),
    "Q5_0": (T.Q5_0, [0]),
    "Q5_1": (T.Q5_1, [0, 2]),
    "Q8_0": (T.Q8_0, [0]),
    "Q2_K": (T.Q2_K, [80, 82]),
    "Q3_K": (T.Q3_K, [108]),
    "Q4_K": (T.Q4_K, [0, 2]),
    "Q5_K": (T.Q5_K, [0, 2]),
    "Q6_K": (T.Q6_K, [208]),
}

rng = np.random.default_rng(20261127)
out = {"generator": f"gguf-py {getattr(gguf, '__version__', '0.19.0')} gguf.quants.dequantize, numpy {np.__version__}",
       "cases": {}}
for name, (qt, f16_offsets) in TYPES.items():
    block_size, type_size = GGML_QUANT_SIZES[qt]
    n_blocks = 3 if block_size == 32 else 2
    raw = rng.integers(0, 256, size=n_blocks * type_size, dtype=np.uint8)
    for b in range(n_blocks):
        for off in f16_offsets:
            val = np.float16(rng.uniform(-0.05, 0.05) if off == f16_offsets[0] else rng.uniform(0, 0.02))
            raw[b * type_size + off: b * type_size + off + 2] = np.frombuffer(val.tobytes(), dtype=np.uint8)
    y = dequantize(raw, qt).astype(np.float32).reshape(-1)
    assert y.size == n_blocks * block_size, (name, y.size)
    out["cases"][name] = {
        "bytes": raw.tobytes().hex(),
        "n": int(y.size),
        "f32_bits": y.view(np.uint32).tolist(),
    }
json.dump(out, sys.stdout, separators=(",", ":"))
sys.stdout.write("\n")
