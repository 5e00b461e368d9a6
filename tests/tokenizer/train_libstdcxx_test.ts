/**
 * The trainer's emulations of libstdc++ (std::unordered_map<uint64_t, …> iteration order under insert/erase,
 * std::partial_sort's selection, std::mt19937 + uniform_int_distribution<uint64_t>) against the real thing: a small
 * C++ program compiled with the system g++ at test time prints the oracle. Skips without g++. Also the C++ standard's
 * own check value for mt19937.
 */
import { assertEquals } from "../_assert.ts";
import { partialSortSelect, UnorderedMapOrder } from "../../src/tokenizer/train/libstdcxx.ts";
import { Mt19937 } from "../../src/tokenizer/train/mt19937.ts";

const CPP = `
#include <unordered_map>
#include <vector>
#include <algorithm>
#include <random>
#include <cstdio>
#include <cstdint>
int main() {
  std::mt19937_64 keys(7);
  std::unordered_map<uint64_t, int> m;
  std::vector<uint64_t> live;
  for (int i = 0; i < 20000; i++) {
    uint64_t k = (i % 4 == 0) ? (keys() % 200000) : keys();
    if (m.count(k)) continue;
    m[k] = i; live.push_back(k);
    printf("I %llu\\n", (unsigned long long)k);
    if (i % 5 == 4) { uint64_t e = live[keys() % live.size()]; if (m.erase(e)) printf("E %llu\\n", (unsigned long long)e); }
  }
  printf("ORDER"); for (auto &kv : m) printf(" %llu", (unsigned long long)kv.first); printf("\\n");
  std::vector<int> v; for (int i = 0; i < 5003; i++) v.push_back((int)(keys() % 7));
  printf("VALS"); for (int x : v) printf(" %d", x); printf("\\n");
  for (int k : {1, 2, 999, 1000, 1001, 5003}) {
    std::vector<int> idx(v.size()); for (size_t i = 0; i < v.size(); i++) idx[i] = (int)i;
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) { return v[a] > v[b]; });
    std::sort(idx.begin(), idx.begin() + k);
    printf("SEL %d", k); for (int i = 0; i < k; i++) printf(" %d", idx[i]); printf("\\n");
  }
  std::mt19937 g(12345678);
  printf("RNG");
  for (uint64_t n = 101; n < 3000; n += 7) { std::uniform_int_distribution<uint64_t> d(0, n - 1); printf(" %llu", (unsigned long long)d(g)); }
  std::uniform_int_distribution<uint64_t> big(0, 4000000000ull); printf(" %llu", (unsigned long long)big(g));
  printf("\\n");
}
`;

async function oracle(): Promise<string[] | undefined> {
  const dir = Deno.makeTempDirSync({ prefix: "yangtuo-libstdcxx-" });
  try {
    Deno.writeTextFileSync(`${dir}/t.cc`, CPP);
    let out;
    try {
      out = await new Deno.Command("g++", { args: ["-O1", "-o", `${dir}/t`, `${dir}/t.cc`] }).output();
    } catch {
      console.warn("skip: g++ not found");
      return undefined;
    }
    if (out.code !== 0) {
      console.warn(`skip: g++ failed: ${new TextDecoder().decode(out.stderr).slice(0, 200)}`);
      return undefined;
    }
    const run = await new Deno.Command(`${dir}/t`).output();
    return new TextDecoder().decode(run.stdout).trim().split("\n");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("UnorderedMapOrder, partialSortSelect and Mt19937 match libstdc++ (compiled with g++)", async () => {
  const lines = await oracle();
  if (!lines) return;
  const m = new UnorderedMapOrder();
  const ids = new Map<bigint, number>();
  const keyOf: bigint[] = [];
  let vals: number[] = [];
  let checked = 0;
  for (const line of lines) {
    const [op, ...rest] = line.split(" ");
    if (op === "I") {
      const k = BigInt(rest[0]);
      ids.set(k, keyOf.length);
      keyOf.push(k);
      m.insert(keyOf.length - 1, Number(k >> 32n), Number(k & 0xffffffffn));
    } else if (op === "E") m.erase(ids.get(BigInt(rest[0]))!);
    else if (op === "ORDER") {
      const got: string[] = [];
      m.forEach((n) => got.push(String(keyOf[n])));
      assertEquals(got, rest);
      checked++;
    } else if (op === "VALS") vals = rest.map(Number);
    else if (op === "SEL") {
      const k = Number(rest[0]);
      const idx = vals.map((_, i) => i);
      partialSortSelect(idx, k, (a, b) => vals[a] > vals[b]);
      assertEquals(idx.slice(0, k).sort((a, b) => a - b).map(String), rest.slice(1), `partial_sort k=${k}`);
      checked++;
    } else if (op === "RNG") {
      const g = new Mt19937(12345678);
      const got: string[] = [];
      for (let n = 101; n < 3000; n += 7) got.push(String(g.uniformBelow(n)));
      got.push(String(g.uniformBelow(4000000001)));
      assertEquals(got, rest);
      checked++;
    }
  }
  assertEquals(checked, 8);
});

Deno.test("Mt19937 gives the C++ standard's 10000th output for the default seed", () => {
  const g = new Mt19937(5489);
  let x = 0;
  for (let i = 0; i < 10000; i++) x = g.next();
  assertEquals(x, 4123659995);
});
