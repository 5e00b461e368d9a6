"""A small GGUF written by an independent writer, llama.cpp's gguf-py (GGUFWriter), for tests/formats/gguf_test.ts:
every scalar value type, string/number/bool arrays, and F32, F16, Q8_0 (via gguf.quants.quantize), Q6_K (raw
bytes) tensors. Our reader must parse it and our writer must reproduce it byte for byte. Run once; commit the output.

    mkdir /tmp/ggufpy && python3 -m zipfile -e gguf-0.19.0-py3-none-any.whl /tmp/ggufpy
    PYTHONPATH=/tmp/ggufpy python3 tests/formats/testdata/gen_gguf_py_fixture.py tests/formats/testdata/gguf_py_fixture.gguf
"""
import sys

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType as T
from gguf.quants import quantize

path = sys.argv[1]
w = GGUFWriter(path, "llama")  # writes general.architecture first
w.add_uint8("t.u8", 200)
w.add_int8("t.i8", -100)
w.add_uint16("t.u16", 60000)
w.add_int16("t.i16", -30000)
w.add_uint32("t.u32", 4000000000)
w.add_int32("t.i32", -2000000000)
w.add_uint64("t.u64", 2**63 + 5)
w.add_int64("t.i64", -(2**62))
w.add_float32("t.f32", 0.1)
w.add_float64("t.f64", 0.1)
w.add_bool("t.bool", True)
w.add_string("t.str", "羊驼 Alpaca")
w.add_array("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "▁你好", "\ufeff"])
w.add_array("tokenizer.ggml.scores", [0.0, -1.5, 0.25])
w.add_array("tokenizer.ggml.token_type", [2, 3, 3])
w.add_array("t.bools", [True, False])
rng = np.random.default_rng(3)
w.add_tensor("token_embd.weight", rng.standard_normal((5, 8)).astype(np.float16))
w.add_tensor("output_norm.weight", rng.standard_normal(8).astype(np.float32))
x = rng.standard_normal((2, 64)).astype(np.float32)
w.add_tensor("blk.0.attn_q.weight", quantize(x, T.Q8_0), raw_dtype=T.Q8_0)
q6 = rng.integers(0, 256, size=(1, 210), dtype=np.uint8)
q6[0, 208:210] = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)
w.add_tensor("blk.0.ffn_down.weight", q6, raw_dtype=T.Q6_K)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
