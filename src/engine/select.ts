/**
 * Choosing an inference engine for a Clip: "onnx" (onnxruntime-node, an error if it cannot
 * start), "tfjs" (the Clip itself), or "auto" (onnx when onnxruntime-node loads, else tfjs), with
 * the reason, for the CLI to print.
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
  if (kind === "tfjs") return { engine: new TfjsEngine(clip), reason: "asked for" };
  try {
    const engine = await OnnxEngine.fromClip(clip, opts);
    return { engine, reason: `${kind === "auto" ? "auto: " : ""}onnxruntime-node, ${engine.threads} intra-op thread${engine.threads === 1 ? "" : "s"}` };
  } catch (err) {
    if (kind === "auto" && err instanceof OnnxRuntimeUnavailableError) {
      return { engine: new TfjsEngine(clip), reason: `auto: ${err.message}; using tfjs` };
    }
    throw err;
  }
}
