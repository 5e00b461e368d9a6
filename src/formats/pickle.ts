/**
 * A restricted unpickler: an opcode interpreter for the pickles torch.save writes (protocol 2, plus the protocol 4
 * opcodes newer Pythons emit). Nothing is executed: GLOBAL/STACK_GLOBAL resolve only names the caller whitelists,
 * and REDUCE/NEWOBJ/BUILD/BINPERSID call the caller's pure handlers. Any other global is a FormatError naming it.
 * Also a small PickleWriter for the opcodes a state dict needs.
 * see: CPython Lib/pickle.py and Lib/pickletools.py (opcode table), PEP 307 (protocol 2), PEP 3154 (protocol 4)
 *
 * Byte layout: a stream of 1-byte opcodes, each followed by its inline argument (little-endian ints,
 * length-prefixed strings, or newline-terminated text for GLOBAL), ending with STOP ".". Values live on a stack;
 * MARK pushes a boundary that TUPLE/SETITEMS/APPENDS pop back to; PUT/GET store and fetch values in the memo.
 */
import { FormatError, UnsupportedError } from "../core/errors.ts";
import { ByteReader } from "./byte_reader.ts";
import { ByteWriter } from "./byte_writer.ts";

/** A reference to a whitelisted global, e.g. `torch._utils._rebuild_tensor_v2`. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  /** "module.name" */
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python tuple (kept apart from lists, which are JS arrays). */
export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

/** A Python dict, keys in insertion order (string, number, bigint, boolean or null keys). */
export type PickleDict = Map<PickleKey, PickleValue>;
export type PickleKey = string | number | bigint | boolean | null;

/**
 * A value the unpickler produces: null, boolean, number, bigint, string, Uint8Array, arrays (lists), PickleTuple,
 * PickleDict, PickleGlobal, or whatever the caller's handlers return — hence `unknown`.
 */
export type PickleValue = unknown;

/** What a caller lets the unpickler do. */
export interface UnpickleOptions {
  /** Globals allowed by GLOBAL/STACK_GLOBAL, as "module.name". Everything else is a FormatError. */
  allowedGlobals: ReadonlySet<string>;
  /** REDUCE and NEWOBJ: build a value from an allowed global and its argument tuple. */
  reduce?: (fn: PickleGlobal, args: PickleValue[], offset: number) => PickleValue;
  /** BUILD: apply `state` to `obj`; returns the (possibly new) object. Default: dicts get dict state merged. */
  build?: (obj: PickleValue, state: PickleValue, offset: number) => PickleValue;
  /** BINPERSID / PERSID: resolve a persistent id. Without it persistent ids are a FormatError. */
  persistentLoad?: (pid: PickleValue, offset: number) => PickleValue;
  /** Format name for errors (default "pickle"). */
  format?: string;
  /** Path for errors. */
  path?: string;
  /** Offset of the pickle in its file, added to error offsets (default 0). */
  baseOffset?: number;
  /** Maximum stack depth + memo entries (default 10,000,000). */
  maxItems?: number;
}

const MAX_GLOBAL_LINE = 256;

/**
 * Runs the pickle in `bytes` and returns the value STOP leaves. Throws FormatError for malformed pickles and
 * non-whitelisted globals, UnsupportedError for valid opcodes a state dict never uses (INST, OBJ, EXT*, sets).
 *
 * @example
 * ```ts
 * import { unpickle } from "./pickle.ts";
 * // pickle.dumps({"a": 1}, protocol=2)
 * const b = new Uint8Array([0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x61, 0x71, 1, 0x4b, 1, 0x73, 0x2e]);
 * (unpickle(b, { allowedGlobals: new Set() }) as Map<string, number>).get("a"); // 1
 * ```
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PickleValue {
  const format = options.format ?? "pickle";
  const base = options.baseOffset ?? 0;
  const maxItems = options.maxItems ?? 10_000_000;
  const r = new ByteReader(bytes, { format, path: options.path });
  const err = (msg: string, at = r.offset) => new FormatError(msg, { format, offset: base + at, path: options.path });
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();

  const pop = (what: string): unknown => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) {
      throw err(`Cannot unpickle: stack underflow at ${what}`);
    }
    return stack.pop();
  };
  const top = (what: string): unknown => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) {
      throw err(`Cannot unpickle: empty stack at ${what}`);
    }
    return stack[stack.length - 1];
  };
  const popMark = (what: string): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw err(`Cannot unpickle: ${what} without a MARK`);
    return stack.splice(m);
  };
  const push = (v: unknown): void => {
    if (stack.length + memo.size >= maxItems) throw err(`Cannot unpickle: more than ${maxItems} stack and memo items`);
    stack.push(v);
  };
  const put = (i: number): void => {
    if (stack.length === 0) throw err("Cannot unpickle: memo PUT on an empty stack");
    if (!memo.has(i) && stack.length + memo.size >= maxItems) {
      throw err(`Cannot unpickle: more than ${maxItems} memo items`);
    }
    memo.set(i, stack[stack.length - 1]);
  };
  const get = (i: number): void => {
    if (!memo.has(i)) throw err(`Cannot unpickle: memo key ${i} is not defined`);
    push(memo.get(i));
  };
  const lenString = (n: number, what: string, lossy = false): string => {
    if (n > r.remaining) throw err(`Cannot unpickle ${what}: length ${n} exceeds the ${r.remaining} bytes left`);
    return r.string(n, what, { maxBytes: bytes.length, lossy });
  };
  const line = (what: string): string => {
    const start = r.offset;
    const end = Math.min(bytes.length, start + MAX_GLOBAL_LINE);
    let i = start;
    while (i < end && bytes[i] !== 0x0a) i++;
    if (i >= end) throw err(`Cannot unpickle ${what}: no newline within ${MAX_GLOBAL_LINE} bytes`);
    const s = r.string(i - start, what, { lossy: true });
    r.skip(1, "newline");
    return s;
  };
  const resolveGlobal = (module: string, name: string, at: number): PickleGlobal => {
    const q = `${module}.${name}`;
    if (!options.allowedGlobals.has(q)) {
      throw err(`Cannot unpickle: global "${q}" is not allowed (only state-dict globals are; nothing is executed)`, at);
    }
    return new PickleGlobal(module, name);
  };
  const call = (what: string, fnV: unknown, argsV: unknown, at: number): unknown => {
    if (!(fnV instanceof PickleGlobal)) throw err(`Cannot unpickle: ${what} of a non-global value`, at);
    if (!(argsV instanceof PickleTuple)) throw err(`Cannot unpickle: ${what} arguments are not a tuple`, at);
    if (!options.reduce) throw err(`Cannot unpickle: ${what} of "${fnV.qualifiedName}" is not allowed`, at);
    return options.reduce(fnV, argsV.items, base + at);
  };
  const setItems = (d: unknown, kv: unknown[], at: number): void => {
    if (!(d instanceof Map)) throw err("Cannot unpickle: SETITEM(S) on a value that is not a dict", at);
    if (kv.length % 2) throw err("Cannot unpickle: SETITEMS with an odd number of items", at);
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i];
      if (!isKey(k)) throw err("Cannot unpickle: dict key is not a string, number or bool", at);
      // Python would keep the last value; a pickler never writes a key twice, so a repeat is a crafted file.
      if (d.has(k)) throw err(`Cannot unpickle: duplicate dict key ${JSON.stringify(String(k))}`, at);
      d.set(k, kv[i + 1]);
    }
  };
  const appendItems = (l: unknown, items: unknown[], at: number): void => {
    if (!Array.isArray(l)) throw err("Cannot unpickle: APPEND(S) on a value that is not a list", at);
    for (const v of items) {
      if (l.length >= maxItems) throw err(`Cannot unpickle: list longer than ${maxItems}`, at);
      l.push(v);
    }
  };

  while (true) {
    const at = r.offset;
    if (r.remaining === 0) throw err("Cannot unpickle: data ended without STOP");
    const op = r.u8("opcode");
    switch (op) {
      case 0x80: { // PROTO
        const v = r.u8("protocol");
        if (v > 5) throw err(`Cannot unpickle: unknown protocol ${v}`, at);
        break;
      }
      case 0x95: // FRAME: a length hint; the data is inline
        r.skip(8, "frame length");
        break;
      case 0x2e: { // STOP
        if (marks.length) throw err("Cannot unpickle: STOP with an open MARK", at);
        if (stack.length !== 1) throw err(`Cannot unpickle: STOP with ${stack.length} values on the stack`, at);
        return stack[0];
      }
      case 0x28: // MARK
        if (marks.length >= maxItems) throw err("Cannot unpickle: too many MARKs", at);
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length && stack.length === marks[marks.length - 1]) marks.pop();
        else pop("POP");
        break;
      case 0x31: // POP_MARK
        popMark("POP_MARK");
        break;
      case 0x32: // DUP
        push(top("DUP"));
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(r.i32("BININT"));
        break;
      case 0x4b: // BININT1
        push(r.u8("BININT1"));
        break;
      case 0x4d: // BININT2
        push(r.u16("BININT2"));
        break;
      case 0x8a: { // LONG1
        const n = r.u8("LONG1 length");
        push(decodeLong(r.bytes(n, "LONG1")));
        break;
      }
      case 0x8b: { // LONG4
        const n = r.i32("LONG4 length");
        if (n < 0 || n > 64) throw err(`Cannot unpickle LONG4: length ${n} is out of range (0..64)`, at);
        push(decodeLong(r.bytes(n, "LONG4")));
        break;
      }
      case 0x47: // BINFLOAT (big-endian f64)
        r.need(8, "BINFLOAT");
        push(new DataView(bytes.buffer, bytes.byteOffset + r.offset, 8).getFloat64(0, false));
        r.skip(8);
        break;
      case 0x49: { // INT (protocol 0 text: "I01\n" is True)
        const s = line("INT");
        if (s === "01") push(true);
        else if (s === "00") push(false);
        else if (/^-?\d{1,15}$/.test(s)) push(Number(s));
        else throw err(`Cannot unpickle INT: "${s.slice(0, 40)}"`, at);
        break;
      }
      case 0x58: // BINUNICODE
        push(lenString(r.u32("BINUNICODE length"), "BINUNICODE"));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(lenString(r.u8("SHORT_BINUNICODE length"), "SHORT_BINUNICODE"));
        break;
      case 0x8d: { // BINUNICODE8
        const n = r.u64Number("BINUNICODE8 length");
        push(lenString(n, "BINUNICODE8"));
        break;
      }
      case 0x54: // BINSTRING (Python 2 str; latin-1 text)
      case 0x55: { // SHORT_BINSTRING
        const n = op === 0x54 ? r.i32("BINSTRING length") : r.u8("SHORT_BINSTRING length");
        if (n < 0 || n > r.remaining) throw err(`Cannot unpickle BINSTRING: length ${n} is out of range`, at);
        push(latin1(r.bytes(n, "BINSTRING")));
        break;
      }
      case 0x42: // BINBYTES
      case 0x43: // SHORT_BINBYTES
      case 0x8e: { // BINBYTES8
        const n = op === 0x42
          ? r.u32("BINBYTES length")
          : op === 0x43
          ? r.u8("SHORT_BINBYTES length")
          : r.u64Number("BINBYTES8 length");
        if (n > r.remaining) {
          throw err(`Cannot unpickle BINBYTES: length ${n} exceeds the ${r.remaining} bytes left`, at);
        }
        push(r.bytes(n, "BINBYTES").slice());
        break;
      }
      case 0x29: // EMPTY_TUPLE
        push(new PickleTuple([]));
        break;
      case 0x85: // TUPLE1
        push(new PickleTuple([pop("TUPLE1")]));
        break;
      case 0x86: { // TUPLE2
        const b = pop("TUPLE2"), a = pop("TUPLE2");
        push(new PickleTuple([a, b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop("TUPLE3"), b = pop("TUPLE3"), a = pop("TUPLE3");
        push(new PickleTuple([a, b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(new PickleTuple(popMark("TUPLE")));
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark("LIST"));
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x64: { // DICT
        const kv = popMark("DICT");
        const d = new Map();
        setItems(d, kv, at);
        push(d);
        break;
      }
      case 0x61: { // APPEND
        const v = pop("APPEND");
        appendItems(top("APPEND"), [v], at);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark("APPENDS");
        appendItems(top("APPENDS"), items, at);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop("SETITEM"), k = pop("SETITEM");
        setItems(top("SETITEM"), [k, v], at);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark("SETITEMS");
        setItems(top("SETITEMS"), kv, at);
        break;
      }
      case 0x71: // BINPUT
        put(r.u8("BINPUT index"));
        break;
      case 0x72: // LONG_BINPUT
        put(r.u32("LONG_BINPUT index"));
        break;
      case 0x94: // MEMOIZE
        put(memo.size);
        break;
      case 0x70: { // PUT (text)
        const s = line("PUT");
        if (!/^\d{1,9}$/.test(s)) throw err(`Cannot unpickle PUT: bad index "${s.slice(0, 40)}"`, at);
        put(Number(s));
        break;
      }
      case 0x68: // BINGET
        get(r.u8("BINGET index"));
        break;
      case 0x6a: // LONG_BINGET
        get(r.u32("LONG_BINGET index"));
        break;
      case 0x67: { // GET (text)
        const s = line("GET");
        if (!/^\d{1,9}$/.test(s)) throw err(`Cannot unpickle GET: bad index "${s.slice(0, 40)}"`, at);
        get(Number(s));
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line("GLOBAL module");
        const name = line("GLOBAL name");
        push(resolveGlobal(module, name, at));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop("STACK_GLOBAL"), module = pop("STACK_GLOBAL");
        if (typeof module !== "string" || typeof name !== "string") {
          throw err("Cannot unpickle STACK_GLOBAL: module and name must be strings", at);
        }
        push(resolveGlobal(module, name, at));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop("REDUCE"), fn = pop("REDUCE");
        push(call("REDUCE", fn, args, at));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop("NEWOBJ"), cls = pop("NEWOBJ");
        push(call("NEWOBJ", cls, args, at));
        break;
      }
      case 0x62: { // BUILD
        const state = pop("BUILD");
        const obj = pop("BUILD");
        if (options.build) push(options.build(obj, state, base + at));
        else if (obj instanceof Map && state instanceof Map) {
          push(obj); // dict subclasses (OrderedDict with _metadata): attribute state is ignored
        } else throw err("Cannot unpickle: BUILD is not allowed here", at);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop("BINPERSID");
        if (!options.persistentLoad) throw err("Cannot unpickle: persistent ids are not allowed here", at);
        push(options.persistentLoad(pid, base + at));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line("PERSID");
        if (!options.persistentLoad) throw err("Cannot unpickle: persistent ids are not allowed here", at);
        push(options.persistentLoad(pid, base + at));
        break;
      }
      case 0x69: // INST
      case 0x6f: // OBJ
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
      case 0x8f: // EMPTY_SET
      case 0x90: // ADDITEMS
      case 0x91: // FROZENSET
      case 0x92: // NEWOBJ_EX
      case 0x96: // BYTEARRAY8
      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
      case 0x46: // FLOAT (text)
      case 0x4c: // LONG (text)
      case 0x53: // STRING (text)
      case 0x56: // UNICODE (text)
        throw new UnsupportedError(
          `Cannot unpickle: opcode 0x${op.toString(16)} ("${String.fromCharCode(op)}") at byte ${
            base + at
          } is not supported in state dicts`,
        );
      default:
        throw err(`Cannot unpickle: unknown opcode 0x${op.toString(16)}`, at);
    }
  }
}

function isKey(k: unknown): k is PickleKey {
  return k === null || typeof k === "string" || typeof k === "number" || typeof k === "bigint" ||
    typeof k === "boolean";
}

/** Two's-complement little-endian integer (LONG1/LONG4); a number when safe, else a bigint. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** Builds a protocol-2 pickle opcode by opcode (no memo: every value is written where it is used). */
export class PickleWriter {
  readonly #w = new ByteWriter(1024);

  constructor() {
    this.#w.u8(0x80); // PROTO 2
    this.#w.u8(2);
  }
  mark(): this {
    this.#w.u8(0x28);
    return this;
  }
  emptyDict(): this {
    this.#w.u8(0x7d);
    return this;
  }
  emptyTuple(): this {
    this.#w.u8(0x29);
    return this;
  }
  /** TUPLE after a mark(). */
  tuple(): this {
    this.#w.u8(0x74);
    return this;
  }
  setItems(): this {
    this.#w.u8(0x75);
    return this;
  }
  global(module: string, name: string): this {
    if (/\n/.test(module + name)) throw new RangeError("Cannot pickle a global name containing a newline");
    this.#w.u8(0x63);
    this.#w.utf8(`${module}\n${name}\n`);
    return this;
  }
  reduce(): this {
    this.#w.u8(0x52);
    return this;
  }
  binPersId(): this {
    this.#w.u8(0x51);
    return this;
  }
  bool(v: boolean): this {
    this.#w.u8(v ? 0x88 : 0x89);
    return this;
  }
  none(): this {
    this.#w.u8(0x4e);
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.#w.u8(0x58);
    this.#w.u32(b.length);
    this.#w.bytes(b);
    return this;
  }
  /** An integer with the smallest opcode CPython would pick (BININT1/BININT2/BININT/LONG1). */
  int(v: number | bigint): this {
    if (typeof v === "number" && !Number.isSafeInteger(v)) throw new RangeError(`Cannot pickle ${v} as an int`);
    const n = BigInt(v);
    if (n >= 0n && n < 256n) {
      this.#w.u8(0x4b);
      this.#w.u8(Number(n));
    } else if (n >= 0n && n < 65536n) {
      this.#w.u8(0x4d);
      this.#w.u16(Number(n));
    } else if (n >= -(1n << 31n) && n < 1n << 31n) {
      this.#w.u8(0x4a);
      this.#w.i32(Number(n));
    } else {
      const out: number[] = [];
      let x = n;
      do {
        out.push(Number(x & 0xffn));
        x >>= 8n;
      } while (!(x === 0n && (out[out.length - 1] & 0x80) === 0) && !(x === -1n && (out[out.length - 1] & 0x80) !== 0));
      this.#w.u8(0x8a);
      this.#w.u8(out.length);
      this.#w.bytes(new Uint8Array(out));
    }
    return this;
  }
  /** A tuple of ints, with TUPLE1/2/3 for short ones as CPython does. */
  intTuple(xs: readonly number[]): this {
    if (xs.length === 0) return this.emptyTuple();
    if (xs.length > 3) this.mark();
    for (const x of xs) this.int(x);
    this.#w.u8(xs.length === 1 ? 0x85 : xs.length === 2 ? 0x86 : xs.length === 3 ? 0x87 : 0x74);
    return this;
  }
  /** Appends STOP and returns the pickle bytes. */
  finish(): Uint8Array {
    this.#w.u8(0x2e);
    return this.#w.finish();
  }
}
