/**
 * Restricted unpickler tests. Oracles: CPython's pickle module (pickles of plain values at protocols 2 and 4 that
 * we must decode to the same values; its integer encodings that PickleWriter must reproduce byte for byte; real
 * exploit pickles whose globals we must reject by name), plus hand-built malformed pickles.
 */
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { PickleGlobal, PickleTuple, PickleWriter, unpickle } from "../../src/formats/pickle.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { needsPython, runPython } from "./_torch_oracle.ts";

/** Tests without an external oracle run with no permissions: the readers are pure. */
const none = { permissions: "none" } as const;

const NONE = { allowedGlobals: new Set<string>() };

function hex(s: string): Uint8Array {
  return new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));
}

/** Unpickled value → JSON-able value in the shape the Python side prints. */
function toJson(v: unknown): unknown {
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [toJson(k), toJson(x)]) };
  if (v instanceof PickleTuple) return { tuple: v.items.map(toJson) };
  if (Array.isArray(v)) return v.map(toJson);
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (typeof v === "bigint") return { int: v.toString() };
  if (typeof v === "number" && Number.isInteger(v) && !Object.is(v, -0)) return { int: String(v) };
  if (typeof v === "number") return { float: v };
  return v;
}

const PY_TO_JSON = `
import pickle, json, sys, collections
def j(v):
    if isinstance(v, bool) or v is None or isinstance(v, str): return v
    if isinstance(v, int): return {"int": str(v)}
    if isinstance(v, float): return {"float": v}
    if isinstance(v, bytes): return {"bytes": list(v)}
    if isinstance(v, dict): return {"dict": [[j(k), j(x)] for k, x in v.items()]}
    if isinstance(v, tuple): return {"tuple": [j(x) for x in v]}
    if isinstance(v, list): return [j(x) for x in v]
    raise TypeError(type(v))
shared = [1, 2]
values = [
  {"a": 1, "b": -1, "c": 255, "d": 256, "e": 65535, "f": 65536, "g": -2**31, "h": 2**31, "i": 2**63, "j": -2**70},
  ("tuple", (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)),
  [None, True, False, 1.5, -0.25, 1.5e-300, "中文 ünïcode", "x" * 300],
  {"nested": {"list": [shared, shared], "t": (shared,)}, 7: "int key", None: "none key"},
  [list(range(2000))],
]
out = []
# bytes need protocol 3+ (protocol 2 pickles them as a call to _codecs.encode, which we do not allow)
for proto in (2, 4):
    for v in values + ([[b"\\x00\\xff", b"b" * 300]] if proto == 4 else []):
        out.append({"hex": pickle.dumps(v, protocol=proto).hex(), "json": j(v)})
print(json.dumps(out))
`;

Deno.test("unpickle() decodes CPython protocol 2 and 4 pickles of plain values", needsPython(), () => {
  const cases = JSON.parse(runPython(PY_TO_JSON)) as { hex: string; json: unknown }[];
  assertEquals(cases.length, 11);
  for (const c of cases) assertEquals(toJson(unpickle(hex(c.hex), NONE)), c.json);
});

Deno.test("unpickle() keeps memoized objects shared (BINPUT/BINGET)", none, () => {
  // pickle.dumps([s, s], 2) with s = [1]: the inner list is written once and fetched from the memo.
  const w = unpickle(hex("80025d7100285d71014b01616801652e"), NONE) as unknown[][];
  assertEquals(w.length, 2);
  assert(w[0] === w[1], "memoized list should be the same object");
});

Deno.test("PickleWriter.int() encodes integers exactly as CPython's pickler", needsPython(), () => {
  const ints = [
    0,
    1,
    255,
    256,
    65535,
    65536,
    -1,
    -256,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 31,
    2 ** 32,
    2 ** 53 - 1,
    -(2 ** 53 - 1),
  ];
  const big = [2n ** 63n, -(2n ** 63n), 2n ** 64n - 1n, 128n << 32n, -129n << 40n];
  const all = [...ints.map(String), ...big.map(String)];
  const py = JSON.parse(runPython(
    `import pickle,json,sys
print(json.dumps([pickle.dumps(int(x), protocol=2)[2:-1].hex() for x in json.loads(sys.argv[1])]))`,
    JSON.stringify(all),
  )) as string[];
  const vals: (number | bigint)[] = [...ints, ...big];
  vals.forEach((x, i) => {
    const b = new PickleWriter().int(x).finish();
    assertEquals(
      [...b.subarray(2, b.length - 1)].map((y) => y.toString(16).padStart(2, "0")).join(""),
      py[i],
      String(x),
    );
    const back = unpickle(b, NONE);
    assertEquals(BigInt(back as number), BigInt(x));
  });
});

// ---- hostile input: globals ----

const EXPLOITS = `
import pickle, os, subprocess, builtins, json
class Sys:
    def __reduce__(self): return (os.system, ("echo pwned",))
class Eval:
    def __reduce__(self): return (builtins.eval, ("1+1",))
class Popen:
    def __reduce__(self): return (subprocess.Popen, (["echo", "pwned"],))
out = {}
for name, obj in (("system", Sys()), ("eval", Eval()), ("popen", Popen())):
    for proto in (2, 4):
        out["%s%d" % (name, proto)] = pickle.dumps({"w": obj}, protocol=proto).hex()
print(json.dumps(out))
`;

Deno.test(
  "unpickle() rejects CPython exploit pickles naming os.system, builtins.eval, subprocess.Popen",
  needsPython(),
  () => {
    const ex = JSON.parse(runPython(EXPLOITS)) as Record<string, string>;
    const torchLike = { allowedGlobals: new Set(["collections.OrderedDict", "torch._utils._rebuild_tensor_v2"]) };
    for (const p of [2, 4]) {
      // os.system pickles as posix.system on Linux.
      assertThrows(
        () => unpickle(hex(ex[`system${p}`]), torchLike),
        FormatError,
        'global "posix.system" is not allowed',
      );
      // protocol 2 spells builtins the Python 2 way.
      const builtins = p === 2 ? "__builtin__" : "builtins";
      assertThrows(
        () => unpickle(hex(ex[`eval${p}`]), torchLike),
        FormatError,
        `global "${builtins}.eval" is not allowed`,
      );
      const popen = p === 2 ? "commands.Popen" : "subprocess.Popen"; // CPython _compat_pickle mapping
      assertThrows(() => unpickle(hex(ex[`popen${p}`]), torchLike), FormatError, `global "${popen}" is not allowed`);
    }
  },
);

Deno.test("unpickle() rejects hand-written GLOBAL and STACK_GLOBAL references to os.system", none, () => {
  const classic = new TextEncoder().encode("cos\nsystem\n(S'echo hi'\ntR.");
  assertThrows(() => unpickle(classic, NONE), FormatError, 'global "os.system" is not allowed');
  // protocol 4: SHORT_BINUNICODE "os", SHORT_BINUNICODE "system", STACK_GLOBAL
  const p4 = hex("8004" + "8c026f73" + "8c0673797374656d" + "93" + "8c026869" + "85" + "52" + "2e");
  assertThrows(() => unpickle(p4, NONE), FormatError, 'global "os.system" is not allowed');
});

Deno.test("unpickle() refuses to call an allowed global without a reduce handler", none, () => {
  const p = new TextEncoder().encode("ccollections\nOrderedDict\n)R.");
  assertThrows(() => unpickle(p, { allowedGlobals: new Set(["collections.OrderedDict"]) }), FormatError, "not allowed");
  const g = unpickle(new TextEncoder().encode("ccollections\nOrderedDict\n."), {
    allowedGlobals: new Set(["collections.OrderedDict"]),
  });
  assert(g instanceof PickleGlobal && g.qualifiedName === "collections.OrderedDict");
});

// ---- hostile input: structure ----

Deno.test("unpickle() rejects stack underflow", none, () => {
  assertThrows(() => unpickle(hex("800286" + "2e"), NONE), FormatError, "stack underflow");
  assertThrows(() => unpickle(hex("80024b01284b0286" + "2e"), NONE), FormatError, "stack underflow");
});

Deno.test("unpickle() rejects an undefined memo key", none, () => {
  assertThrows(() => unpickle(hex("8002680b2e"), NONE), FormatError, "memo key 11");
});

Deno.test("unpickle() rejects an unknown opcode", none, () => {
  assertThrows(() => unpickle(hex("8002ff2e"), NONE), FormatError, "unknown opcode 0xff");
});

Deno.test("unpickle() rejects opcodes a state dict never uses with UnsupportedError", none, () => {
  assertThrows(() => unpickle(hex("80028f2e"), NONE), UnsupportedError, "0x8f");
  assertThrows(() => unpickle(new TextEncoder().encode("(ios\nsystem\n."), NONE), UnsupportedError, "0x69");
});

Deno.test("unpickle() rejects data without STOP and STOP with extra stack items", none, () => {
  assertThrows(() => unpickle(hex("80024b01"), NONE), FormatError, "without STOP");
  assertThrows(() => unpickle(hex("80024b014b022e"), NONE), FormatError, "2 values");
  assertThrows(() => unpickle(hex("8002284b012e"), NONE), FormatError, "open MARK");
});

Deno.test("unpickle() rejects string and bytes lengths past the end of the data", none, () => {
  assertThrows(() => unpickle(hex("800258ffffff7f61612e"), NONE), FormatError, "exceeds");
  assertThrows(() => unpickle(hex("800242ffffff7f61612e"), NONE), FormatError, "exceeds");
  assertThrows(() => unpickle(hex("80028dffffffffffffff0061612e"), NONE), FormatError);
  assertThrows(() => unpickle(hex("80028bffffff7f2e"), NONE), FormatError, "LONG4");
});

Deno.test("unpickle() rejects a GLOBAL line with no newline", none, () => {
  const p = new Uint8Array(1000).fill(0x61);
  p[0] = 0x63;
  assertThrows(() => unpickle(p, NONE), FormatError, "no newline");
});

Deno.test("unpickle() rejects duplicate dict keys", none, () => {
  // {'a': 1, 'a': 2} written with one SETITEMS
  const p = hex("80027d28" + "5801000000614b01" + "5801000000614b02" + "752e");
  assertThrows(() => unpickle(p, NONE), FormatError, 'duplicate dict key "a"');
});

Deno.test("unpickle() rejects SETITEMS on a non-dict and APPENDS on a non-list", none, () => {
  assertThrows(() => unpickle(hex("80025d284b014b02752e"), NONE), FormatError, "not a dict");
  assertThrows(() => unpickle(hex("80027d284b01652e"), NONE), FormatError, "not a list");
});

Deno.test("unpickle() bounds stack and memo growth", none, () => {
  const n = 5000;
  const p = new Uint8Array(2 + n + 1);
  p.set([0x80, 2]);
  p.fill(0x4e, 2, 2 + n); // NONE × n
  p[p.length - 1] = 0x2e;
  assertThrows(() => unpickle(p, { ...NONE, maxItems: 1000 }), FormatError, "more than 1000");
});

Deno.test("unpickle() throws FormatError for every truncation of a valid pickle", none, () => {
  const w = new PickleWriter().emptyDict().mark().str("k").intTuple([1, 2, 3, 4]).str("big").int(2n ** 70n).setItems();
  const full = w.finish();
  assertEquals(toJson(unpickle(full, NONE)), {
    dict: [["k", { tuple: [1, 2, 3, 4].map((i) => ({ int: String(i) })) }], ["big", { int: String(2n ** 70n) }]],
  });
  for (let n = 0; n < full.length; n++) assertThrows(() => unpickle(full.subarray(0, n), NONE), FormatError);
});
