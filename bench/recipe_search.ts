/**
 * Recipe search by accuracy against training steps (not wall time, which a shared machine
 * distorts): one trainClip run with the given options over TRAIN_DEFAULTS, zero-shot top-1 on the
 * first 2000 test images every `evalEvery` steps (outside the training clock), all 10,000 at the
 * end. One JSON object per line on stdout.
 *
 *   node --import tsx bench/recipe_search.ts '{"model": "RN-Nano-32", "epochs": 2}' 156
 *
 * CLIPLAB_THREADS picks the WASM threads (default 1). Results: bench/RESULTS.md.
 */
import { initBackend } from "../src/backend/select";
import { trainClip } from "../src/train/trainer";
import { Clip } from "../src/model/clip";
import { evaluateClip } from "../src/train/evaluate";
import { loadFashionMnist } from "../src/data/fashion_mnist";
import { CaptionSet } from "../src/data/captions";
(async () => {
  await initBackend({ prefer: "wasm", threads: Number(process.env.CLIPLAB_THREADS ?? 1) });
  if (!process.argv[2]) throw new Error("usage: bench/recipe_search.ts '<trainClip options as JSON>' [evalEvery]");
  const o = JSON.parse(process.argv[2]);
  const every = Number(process.argv[3] ?? 200);
  const test = loadFashionMnist("test");
  const captions = CaptionSet.load();
  let model: Clip | undefined;
  const c0 = process.cpuUsage();
  const log = (x: unknown) => process.stdout.write(JSON.stringify(x) + "\n");
  const r = await trainClip({ evalLimit: 2000, finalEvalLimit: 10000, retrievalLimit: 200, ...o }, {
    onStart: (i) => { model = i.model; log({ start: i.totalSteps, params: i.params }); },
    onStep: (e) => {
      if ((e.step + 1) % every !== 0 || e.step + 1 === e.totalSteps || !model) return;
      const ev = evaluateClip(model, test, captions, { zeroShotLimit: 2000, retrievalLimit: 100, seed: 1 });
      log({ step: e.step + 1, top1: ev.zeroShotTop1, loss: e.loss, scale: Math.exp(e.logitScale), trainS: Math.round(e.seconds * 1000) / 1000 });
    },
  });
  const u = process.cpuUsage(c0);
  log({ final: r.zeroShotTop1, steps: r.steps, trainSeconds: r.trainSeconds, pairsPerSecond: r.pairsPerSecond, cpuSeconds: (u.user + u.system) / 1e6, loss: r.finalLoss, rss: process.memoryUsage().rss / 2 ** 20 });
  r.model.dispose();
  process.exit(0);
})();
