/**
 * Choosing an inference engine for a Clip: "onnx" (onnxruntime-node, an error if it cannot
 * start), "tfjs" (the Clip itself), or "auto" (onnx when onnxruntime-node loads, else tfjs), with
 * the reason, for the CLI to print. With `quantize: "int8"` the engine is onnx (int8 towers run
 * only there): "auto" then needs onnxruntime-node too, and "tfjs" is an error.
 */
import type { Clip } from "../model/clip";
import type { EmbeddingEngine } from "./engine";
import { OnnxEngine, OnnxEngineOptions } from "./onnx";
import { TfjsEngine } from "./tfjs";
import { OnnxRuntimeUnavailableError } from "./onnxruntime";

export const ENGINE_KINDS = ["auto", "onnx", "tfjs"] as const;
export type EngineKind = (typeof ENGINE_KINDS)[number];

export async function createEngine(clip: Clip, kind: EngineKind = "auto", opts: OnnxEngineOptions = {}): Promise<{ engine: EmbeddingEngine; reason: string }> {
  if (!ENGINE_KINDS.includes(kind)) throw new RangeError(`engine must be one of ${ENGINE_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  if (kind === "tfjs") {
    if (opts.quantize) throw new RangeError(`quantize ${opts.quantize} runs on the onnx engine, not tfjs: use engine onnx or auto`);
    return { engine: new TfjsEngine(clip), reason: "asked for" };
  }
  try {
    const engine = await OnnxEngine.fromClip(clip, opts);
    const precision = engine.precision === "float32" ? "" : `, ${engine.precision} linear layers`;
    return { engine, reason: `${kind === "auto" ? "auto: " : ""}onnxruntime-node, ${engine.threads} intra-op thread${engine.threads === 1 ? "" : "s"}${precision}` };
  } catch (err) {
    if (kind === "auto" && !opts.quantize && err instanceof OnnxRuntimeUnavailableError) {
      return { engine: new TfjsEngine(clip), reason: `auto: ${err.message}; using tfjs` };
    }
    throw err;
  }
}
