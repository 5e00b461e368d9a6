"""A small safetensors file written by an independent writer, Hugging Face safetensors (Rust core, `safetensors.numpy.
save_file`), for tests/formats/safetensors_test.ts: F32, F16, I32, U8 and a BF16 tensor (bf16 bits stored through
`numpy.uint16` and relabelled, since numpy has no bfloat16), plus `__metadata__`. Our reader must parse it and our
writer must reproduce it byte for byte. Run once; commit the output.

    mkdir /tmp/stpy && python3 -m zipfile -e safetensors-0.8.0-cp310-abi3-manylinux_2_17_x86_64.whl /tmp/stpy
    PYTHONPATH=/tmp/stpy python3 tests/formats/testdata/gen_safetensors_fixture.py tests/formats/testdata/hf_fixture.safetensors
"""
import struct
import sys

import numpy as np
from safetensors.numpy import save_file

path = sys.argv[1]
rng = np.random.default_rng(5)
tensors = {
    "model.embed_tokens.weight": rng.standard_normal((6, 4)).astype(np.float16),
    "model.norm.weight": rng.standard_normal(4).astype(np.float32),
    "ids": np.arange(-3, 3, dtype=np.int32),
    "mask": np.array([1, 0, 1], dtype=np.uint8),
    "lm_head.weight": rng.standard_normal((2, 4)),  # float64
}
save_file(tensors, path, metadata={"format": "pt"})
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(f.read(n).decode())
