/**
 * formats: model file readers and writers (GGUF, safetensors, llama2.c, PyTorch zip/pickle, Meta params). Pure:
 * every reader takes a ByteSource and every writer a ByteSink; files are opened in src/io.
 *
 * @example
 * ```ts
 * import { ByteReader } from "./mod.ts";
 * new ByteReader(new Uint8Array([7, 0]), { format: "demo" }).u16(); // 7
 * ```
 */
export * from "./byte_reader.ts";
export * from "./byte_writer.ts";
export * from "./gguf.ts";
export * from "./gguf_writer.ts";
export * from "./safetensors.ts";
export * from "./llama2c.ts";
export * from "./zip.ts";
export * from "./pickle.ts";
export * from "./pytorch.ts";
export * from "./pytorch_writer.ts";
export * from "./meta.ts";
export * from "./protobuf.ts";
export * from "./sentencepiece_model.ts";
