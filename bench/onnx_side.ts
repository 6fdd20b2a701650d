/**
 * The onnx engine as a column of the encoder benchmark (bench/encoders.ts): the same Clip's
 * weights exported in memory (src/io/onnx/) and run by onnxruntime-node in this process, with
 * the thread count PyTorch gets. Its calls take turns with the tfjs and PyTorch calls, and its
 * features are compared with tfjs' on one fixed input.
 *
 * A call is `engine.embedImages(pixels NHWC)` / `engine.embedTexts(ids int32)`: the engine's
 * whole cost, including the NHWC -> NCHW transpose and the int64 copy of the ids.
 */
import { Clip } from "../src/model/clip";
import { OnnxEngine } from "../src/engine/onnx";
import { Random } from "../src/util/random";

type Kind = "image" | "text";

export interface OnnxParity {
  max_rel_diff: number;
  min_cosine: number;
}

export class OnnxSide {
  failure: string | undefined;
  private inputs = new Map<string, { data: Float32Array | Int32Array; length: number }>();

  private constructor(
    readonly engine: OnnxEngine,
    readonly buildSeconds: number,
  ) {}

  /** Exports the Clip in memory and opens both sessions; a reason instead when it cannot. */
  static async start(clip: Clip, threads: number): Promise<{ ok: true; side: OnnxSide } | { ok: false; reason: string }> {
    const t0 = performance.now();
    try {
      const engine = await OnnxEngine.fromClip(clip, { threads });
      return { ok: true, side: new OnnxSide(engine, (performance.now() - t0) / 1000) };
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  /** Random inputs for `kind` at `batch` (pixels, or ids shaped like CLIP's: SOT, ids, EOT, zeros). */
  prepare(kind: Kind, batch: number, rng: Random, tokens?: (batch: number) => Int32Array): void {
    const e = this.engine;
    if (kind === "image") {
      this.inputs.set(`${kind}/${batch}`, { data: rng.fillNormal(new Float32Array(batch * e.imageSize * e.imageSize * 3)), length: 0 });
    } else {
      this.inputs.set(`${kind}/${batch}`, { data: tokens!(batch), length: e.contextLength });
    }
  }

  /** One timed call: seconds, or undefined after a failure (reported once). */
  async call(kind: Kind, batch: number): Promise<number | undefined> {
    if (!this.alive) return undefined;
    const input = this.inputs.get(`${kind}/${batch}`);
    if (!input) throw new Error(`OnnxSide.call: prepare("${kind}", ${batch}) first`);
    try {
      const t0 = performance.now();
      if (kind === "image") await this.engine.embedImages(input.data as Float32Array, batch);
      else await this.engine.embedTexts(input.data as Int32Array, batch, input.length);
      return (performance.now() - t0) / 1000;
    } catch (err) {
      this.failure = (err as Error).message;
      console.log(`onnx engine failed: ${this.failure}; continuing without it`);
      return undefined;
    }
  }

  /** onnx vs tfjs features on one input: max|Δ| / max|tfjs| and the smallest per-row cosine. */
  static compare(onnx: Float32Array, tfjs: Float32Array, dim: number): OnnxParity {
    let diff = 0;
    let scale = 0;
    let minCos = 1;
    for (let i = 0; i < tfjs.length; i++) {
      diff = Math.max(diff, Math.abs(onnx[i] - tfjs[i]));
      scale = Math.max(scale, Math.abs(tfjs[i]));
    }
    for (let r = 0; r < tfjs.length / dim; r++) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let k = r * dim; k < (r + 1) * dim; k++) {
        dot += onnx[k] * tfjs[k];
        na += onnx[k] * onnx[k];
        nb += tfjs[k] * tfjs[k];
      }
      minCos = Math.min(minCos, dot / Math.sqrt(na * nb));
    }
    return { max_rel_diff: diff / scale, min_cosine: minCos };
  }

  dispose(): void {
    this.engine.dispose();
  }
}
