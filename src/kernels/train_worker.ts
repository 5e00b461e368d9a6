/**
 * Worker entry of the 2-thread WASM training kernels: instantiates the kernels on the caller's shared memory, then
 * runs the training export the control block's OP names (TRAIN_OP_EXPORTS) on its row range each time the sequence counter moves, and
 * publishes the sequence number as done. No message round-trips while running.
 * see: train_wasm.ts (the calling side, TRAIN_CTRL)
 */
/// <reference lib="deno.worker" />
import { TRAIN_CTRL, TRAIN_OP_EXPORTS, type TrainKernelExports, type TrainWorkerInit } from "./train_wasm.ts";

self.onmessage = (e: MessageEvent<TrainWorkerInit>) => {
  const { module, memory, control } = e.data;
  const ctrl = new Int32Array(control, 0, TRAIN_CTRL.ARGS);
  const args = new Float64Array(control, 8 * TRAIN_CTRL.ARGS, TRAIN_CTRL.N_ARGS);
  let raw: TrainKernelExports;
  try {
    const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => {} } });
    raw = instance.exports as unknown as TrainKernelExports;
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error).message });
    return;
  }
  let seen = Atomics.load(ctrl, TRAIN_CTRL.SEQ);
  self.postMessage({ type: "ready" });
  for (;;) {
    while (Atomics.load(ctrl, TRAIN_CTRL.SEQ) === seen) Atomics.wait(ctrl, TRAIN_CTRL.SEQ, seen, 1000);
    seen = Atomics.load(ctrl, TRAIN_CTRL.SEQ);
    const op = Atomics.load(ctrl, TRAIN_CTRL.OP);
    if (op === TRAIN_CTRL.OP_EXIT) break;
    try {
      const name = TRAIN_OP_EXPORTS[op];
      if (!name) throw new Error(`unknown training op ${op}`);
      (raw[name] as (...a: number[]) => void)(...Array.from(args));
    } catch (err) {
      Atomics.store(ctrl, TRAIN_CTRL.FAILED, 1);
      self.postMessage({ type: "error", message: (err as Error).message });
    }
    Atomics.store(ctrl, TRAIN_CTRL.DONE, seen);
    Atomics.notify(ctrl, TRAIN_CTRL.DONE);
  }
  self.close();
};
