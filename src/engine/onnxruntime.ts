/**
 * onnxruntime-node, required only when an ONNX engine is asked for, so cliplab starts (and the
 * tfjs engine works) on machines where the package or its native binary is missing.
 */
import type * as Ort from "onnxruntime-node";

export type OnnxRuntime = typeof Ort;

export class OnnxRuntimeUnavailableError extends Error {
  override name = "OnnxRuntimeUnavailableError";
}

const loaded = new Map<string, OnnxRuntime>();

/**
 * Loads onnxruntime-node (or `moduleName`, for tests) once; a one-line OnnxRuntimeUnavailableError
 * saying why and what to do when it cannot be loaded.
 */
export function loadOnnxRuntime(moduleName = "onnxruntime-node"): OnnxRuntime {
  const known = loaded.get(moduleName);
  if (known) return known;
  let ort: OnnxRuntime;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ort = require(moduleName) as OnnxRuntime;
  } catch (err) {
    const reason = ((err as Error)?.message ?? String(err)).split("\n")[0];
    throw new OnnxRuntimeUnavailableError(
      `the onnx engine needs ${moduleName}, which could not be loaded (${reason}); install it with \`npm i onnxruntime-node\` or use the tfjs engine`,
    );
  }
  if (typeof ort?.InferenceSession?.create !== "function" || typeof ort?.Tensor !== "function") {
    throw new OnnxRuntimeUnavailableError(`${moduleName} loaded but has no InferenceSession.create / Tensor: not onnxruntime-node?`);
  }
  loaded.set(moduleName, ort);
  return ort;
}
