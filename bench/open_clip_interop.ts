/**
 * open_clip interop, checked against open_clip's own code: for each preset, a model made here is
 * saved as open_clip loads a folder (`model.safetensors` + `open_clip_config.json`), with fixed
 * inputs and our features; bench/open_clip_interop.py then builds the model with open_clip's
 * `create_model("local-dir:FOLDER")` (its config, its weights search, its strict `load_state_dict`),
 * compares its features with ours, and writes the state-dict names and shapes open_clip's `CLIP`
 * has for that model_cfg to test/fixtures/open_clip/ (what test/io/checkpoint.test.ts compares our
 * parameter list with).
 *
 *   npx tsx bench/open_clip_interop.ts [OUT_DIR]        # default bench/out/open_clip_interop
 *   /usr/bin/python3 bench/open_clip_interop.py OUT_DIR --open-clip-src PATH/TO/open_clip/src [--fixtures test/fixtures/open_clip]
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/select";
import { Clip } from "../src/model/clip";
import { saveCheckpoint } from "../src/io/checkpoint";
import { Random } from "../src/util/random";
import { OUT_DIR } from "./common";

const PRESETS = ["ViT-Tiny-28", "RN-Micro-32", "RN-Tiny-32", "ViT-B-32"];

async function main(): Promise<void> {
  const out = process.argv[2] ?? path.join(OUT_DIR, "open_clip_interop");
  await initBackend({ prefer: "wasm" });
  for (const preset of PRESETS) {
    const dir = path.join(out, preset);
    fs.mkdirSync(dir, { recursive: true });
    const clip = Clip.create(preset, { seed: 5 });
    await saveCheckpoint(clip, path.join(dir, "model.safetensors"), { openClipConfig: true });
    const size = clip.config.vision_cfg.image_size;
    const rng = new Random(7);
    const n = 2;
    const nhwc = Float32Array.from({ length: n * size * size * 3 }, () => rng.normal()); // [n, S, S, 3], normalised pixels
    const tokens = [
      [49406, 320, 1125, 539, 320, 2368, 49407],
      [49406, 1929, 49407, 0, 0, 0, 0],
    ];
    const [img, txt] = tf.tidy(() => {
      const pixels = tf.tensor4d(nhwc, [n, size, size, 3]);
      return [clip.encodeImage(pixels).arraySync(), clip.encodeText(tf.tensor2d(tokens, undefined, "int32")).arraySync()];
    });
    // Images NCHW for torch.
    const nchw = new Float32Array(nhwc.length);
    for (let b = 0; b < n; b++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) {
      nchw[((b * 3 + c) * size + y) * size + x] = nhwc[((b * size + y) * size + x) * 3 + c];
    }
    fs.writeFileSync(path.join(dir, "inputs_nchw_f32.bin"), Buffer.from(nchw.buffer));
    fs.writeFileSync(path.join(dir, "expected.json"), JSON.stringify({ preset, imageShape: [n, 3, size, size], tokens, imageFeatures: img, textFeatures: txt, contextLength: clip.config.text_cfg.context_length }));
    clip.dispose();
    process.stdout.write(`${preset}: ${dir}\n`);
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
