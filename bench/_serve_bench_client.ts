/**
 * The serve bench's streaming clients, in a Worker: their reads run on their own event loop, so time to first token
 * measures the server, not this process's main thread (which the model's forwards block).
 * see: serve_bench.ts
 */
/// <reference lib="deno.worker" />

/** One streaming completion: time to the first data event, tokens generated, total time. */
async function stream(url: string, prompt: string, maxTokens: number) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    body: JSON.stringify({
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (res.status !== 200) throw new Error(`stream: HTTP ${res.status} ${await res.text()}`);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let ttftMs = -1, buf = "", tokens = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (ttftMs < 0) ttftMs = performance.now() - t0;
    buf += value;
    const m = /"completion_tokens":(\d+)/.exec(buf);
    if (m) tokens = Number(m[1]);
    if (buf.length > 4096) buf = buf.slice(-512);
  }
  return { ttftMs, tokens, ms: performance.now() - t0 };
}

self.onmessage = async (e: MessageEvent<{ url: string; n: number; prompt: string; maxTokens: number }>) => {
  const { url, n, prompt, maxTokens } = e.data;
  try {
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: n }, () => stream(url, prompt, maxTokens)));
    self.postMessage({ results, wallMs: performance.now() - t0 });
  } catch (err) {
    self.postMessage({ error: (err as Error).message });
  }
};
