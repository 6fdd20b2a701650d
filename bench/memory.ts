/**
 * Real-size memory, measured one step per process (peak RSS is per process):
 *
 *   node --import tsx bench/memory.ts create MODEL [OUT]   Clip.create(MODEL); with OUT, saves OUT-F32/F16.safetensors
 *   node --import tsx bench/memory.ts load FILE            loadCheckpoint(FILE)
 *   node --import tsx bench/memory.ts encode FILE I T      loadCheckpoint(FILE), then I images and T full-length texts
 *
 * Prints one JSON line: seconds, peak RSS (VmHWM) before and after, RSS, tfjs bytes.
 * CLIPLAB_BACKEND picks the backend (default wasm); CLIPLAB_BLAS=off keeps the WASM (XNNPACK) matrix kernels.
 */
import * as fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/select";
import { Clip } from "../src/model/clip";
import { loadCheckpoint, saveCheckpoint } from "../src/io/checkpoint";

function kb(key: string): number {
  return Number(new RegExp(`${key}:\\s+(\\d+)`).exec(fs.readFileSync("/proc/self/status", "utf8"))![1]);
}
const mib = (kib: number) => Math.round(kib / 1024);

async function main(argv: string[]): Promise<void> {
  const [what, arg, out] = argv;
  await initBackend({ prefer: (process.env.CLIPLAB_BACKEND as "wasm") ?? "wasm" });
  const before = kb("VmHWM");
  const t0 = performance.now();
  let clip: Clip;
  if (what === "create") clip = Clip.create(arg, { seed: 0 });
  else if (what === "load") clip = await loadCheckpoint(arg);
  else if (what === "encode") clip = await loadCheckpoint(arg);
  else throw new Error(`usage: bench/memory.ts create MODEL [OUT] | load FILE | encode FILE IMAGES TEXTS (got ${JSON.stringify(what)})`);
  const secs = (performance.now() - t0) / 1000;
  const line = { what, arg, backend: tf.getBackend(), secs: +secs.toFixed(1), peakBeforeMiB: mib(before), peakRssMiB: mib(kb("VmHWM")), rssMiB: mib(kb("VmRSS")), tfMiB: Math.round(tf.memory().numBytes / 2 ** 20) };
  console.log(JSON.stringify(line));
  if (what === "create" && out) {
    for (const dtype of ["F32", "F16"] as const) {
      const t1 = performance.now();
      await saveCheckpoint(clip, `${out}-${dtype}.safetensors`, { dtype });
      console.log(JSON.stringify({ what: "save", dtype, secs: +((performance.now() - t1) / 1000).toFixed(1), peakRssMiB: mib(kb("VmHWM")) }));
    }
  }
  if (what === "encode") {
    const [images, texts] = [Number(argv[2]), Number(argv[3])];
    const size = clip.config.vision_cfg.image_size;
    const ctx = clip.config.text_cfg.context_length;
    const pixels = tf.randomNormal([images, size, size, 3], 0, 1, "float32", 1) as tf.Tensor4D;
    const ids = new Int32Array(texts * ctx).map((_, i) => (i % ctx === ctx - 1 ? 49407 : 1 + (i % 1000)));
    const tokens = tf.tensor2d(ids, [texts, ctx], "int32");
    for (const [kind, run] of [["images", () => clip.encodeImage(pixels)], ["texts", () => clip.encodeText(tokens)]] as const) {
      if ((kind === "images" ? images : texts) === 0) continue;
      const t1 = performance.now();
      const info = await tf.profile(() => run().dispose());
      console.log(JSON.stringify({ what: kind, n: kind === "images" ? images : texts, secs: +((performance.now() - t1) / 1000).toFixed(1), tfPeakMiB: Math.round(info.peakBytes / 2 ** 20), wasmHeapMiB: heapMiB(), peakRssMiB: mib(kb("VmHWM")) }));
    }
    tf.dispose([pixels, tokens]);
  }
  clip.dispose();
}

/** The WASM heap's current size (it grows, never shrinks), or null off wasm. */
function heapMiB(): number | null {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  return b.wasm ? Math.round(b.wasm.HEAPU8.buffer.byteLength / 2 ** 20) : null;
}

main(process.argv.slice(2)).catch((err) => {
  console.error((err as Error).message);
  process.exit(1);
});
