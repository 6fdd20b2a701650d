/** train, eval and embed on sources other than Fashion-MNIST, run in-process through `main`. */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli as run } from "../helpers/cli";
import { readArrowFile, readVectorColumn } from "../../src/io/arrow";
import { tmpDir } from "../helpers/fixtures";
import { initBackend } from "../../src/backend/select";
import { SHAPES, TINY_64, saveTiny64, writeShapeFolder, writeShapeTsv } from "../report/shapes_data";

let folder: string;
let tsv: string;
let checkpoint: string;

before(async () => {
  await initBackend();
  folder = await writeShapeFolder(tmpDir(), 6);
  tsv = await writeShapeTsv(tmpDir(), 4);
  checkpoint = await saveTiny64(path.join(tmpDir(), "model.safetensors"));
});

function lastJson(r: { out: string[] }): any {
  return JSON.parse(r.out[r.out.length - 1]);
}

/** Only the lines that are not the backend report. */
function errors(r: { err: string[] }): string[] {
  return r.err.filter((l) => !l.startsWith("backend:") && !l.startsWith("engine:") && !l.startsWith("[") && !l.startsWith("\r"));
}

/** An embed output's rows by identity (kind, source index, caption): batch sizes change the row order, not the rows. */
function rows(file: string): { id: string; emb: number[] }[] {
  const tb = readArrowFile(file);
  const e = readVectorColumn(tb, "embedding");
  const kind = tb.getChild("kind")!.toArray() as string[];
  const index = tb.getChild("index")!.toArray() as Int32Array;
  const caption = tb.getChild("caption")!.toArray() as (string | null)[];
  return kind.map((k, i) => ({ id: `${k}:${index[i]}:${caption[i]}`, emb: Array.from(e.values.subarray(i * e.dim, (i + 1) * e.dim)) }));
}

describe("cliplab eval on any source", () => {
  it("an image folder: CLIP_benchmark's classification result as the last line", async () => {
    const r = await run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const j = lastJson(r);
    assert.deepEqual(Object.keys(j).slice(0, 5), ["dataset", "model", "pretrained", "task", "metrics"]);
    assert.equal(j.task, "zeroshot_classification");
    assert.equal(j.dataset, path.basename(folder));
    assert.equal(j.pretrained, checkpoint);
    assert.deepEqual(Object.keys(j.metrics), ["acc1", "acc5", "mean_per_class_recall"]);
    assert.equal(j.metrics.acc5, 1, "3 classes: top-5 is always a hit");
    assert.equal(j.images, 18);
    assert.equal(j.skipped, 0);
  });

  it("a TSV with labels; --task zeroshot_retrieval gives recall@1/5/10 both ways", async () => {
    const c = await run(["eval", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--csv-label-key", "label", "--json"]);
    assert.equal(c.code, 0, c.err.join("\n"));
    assert.equal(lastJson(c).task, "zeroshot_classification");
    const r = await run(["eval", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--csv-label-key", "label", "--task", "zeroshot_retrieval", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const m = lastJson(r).metrics;
    assert.deepEqual(Object.keys(m).sort(), ["image", "text"].flatMap((d) => [1, 5, 10].map((k) => `${d}_retrieval_recall@${k}`)).sort());
    for (const v of Object.values(m) as number[]) assert.ok(v >= 0 && v <= 1);
    assert.ok(m["image_retrieval_recall@10"] >= m["image_retrieval_recall@1"]);
  });

  it("captions without labels: retrieval only, and it says so", async () => {
    const r = await run(["eval", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.ok(r.out.some((l) => /has captions but no labels: zero-shot classification is impossible, retrieval only/.test(l)), r.out.join("\n"));
    assert.equal(lastJson(r).task, "zeroshot_retrieval");
    const bad = await run(["eval", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--task", "zeroshot_classification"]);
    assert.equal(bad.code, 1);
    assert.match(errors(bad)[0], /has no labels, so zero-shot classification is impossible/);
  });

  it("bad input: one line, non-zero exit", async () => {
    const bad = await run(["eval", "--checkpoint", checkpoint, "--data", `folder:${folder}`]);
    assert.equal(bad.code, 1);
    assert.deepEqual(errors(bad).length, 1);
    assert.match(errors(bad)[0], /^cliplab eval: .*unknown source kind "folder"; valid kinds: fashion-mnist, imagefolder, csv, wds, parquet, arrow/);
    const names = path.join(tmpDir(), "names.txt");
    fs.writeFileSync(names, "one\ntwo\n");
    const wrong = await run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--classnames", names]);
    assert.equal(wrong.code, 1);
    assert.match(errors(wrong)[0], /names\.txt: has 2 class names but the data has 3 class folders/);
    assert.equal((await run(["eval", "--checkpoint", checkpoint, "--task", "nope"])).code, 2);
  });
});

describe("cliplab embed --data", () => {
  it("one row per image and per caption; shards concatenate to the whole", async () => {
    const dir = tmpDir();
    const whole = path.join(dir, "all.arrow");
    const r = await run(["embed", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--csv-label-key", "label", "--out", whole, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const j = lastJson(r);
    assert.equal(j.images, 12);
    assert.equal(j.texts, 12);
    assert.ok(j.imagesPerSecond > 0 && j.textsPerSecond > 0 && j.seconds > 0);
    const t = readArrowFile(whole);
    assert.deepEqual(t.schema.fields.map((f) => f.name), ["kind", "key", "index", "label", "caption", "embedding"]);
    const kinds = t.getChild("kind")!.toArray() as string[];
    assert.equal(kinds.filter((k) => k === "image").length, 12);
    const labels = t.getChild("label")!.toArray() as string[];
    assert.ok(labels.every((l) => (SHAPES as readonly string[]).includes(l)));
    const captions = t.getChild("caption")!.toArray() as (string | null)[];
    assert.ok(captions.some((c) => c !== null && c.includes('drawn "by hand"')));

    // Three shards, concatenated, then put back in source order: the single-process rows.
    const parts = [];
    for (let s = 0; s < 3; s++) {
      const file = path.join(dir, `shard${s}.arrow`);
      const rs = await run(["embed", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--csv-label-key", "label", "--out", file, "--shard", `${s}/3`]);
      assert.equal(rs.code, 0, rs.err.join("\n"));
      parts.push(...rows(file));
    }
    const single = rows(whole);
    assert.equal(parts.length, single.length);
    const byId = new Map(single.map((r) => [r.id, r.emb]));
    for (const p of parts) {
      const want = byId.get(p.id);
      assert.ok(want, `row ${p.id} is not in the single-process output`);
      const diff = Math.max(...p.emb.map((v, i) => Math.abs(v - want[i])));
      assert.ok(diff < 1e-5, `${p.id}: embeddings differ by ${diff}`);
    }
  });

  it("a corrupt image: an error naming the file and no output; --skip-bad-images goes on and records it", async () => {
    const dir = tmpDir();
    const broken = await writeShapeFolder(path.join(dir, "shapes"), 2);
    const bad = path.join(broken, "square", "img001.png");
    fs.writeFileSync(bad, Buffer.from("not a png at all"));
    const out = path.join(dir, "e.arrow");
    const r = await run(["embed", "--checkpoint", checkpoint, "--data", `imagefolder:${broken}`, "--out", out]);
    assert.equal(r.code, 1);
    assert.equal(errors(r).length, 1, errors(r).join("\n"));
    assert.match(errors(r)[0], /img001\.png/);
    assert.ok(!fs.existsSync(out));
    assert.deepEqual(fs.readdirSync(dir), ["shapes"], "nothing half-written");
    const s = await run(["embed", "--checkpoint", checkpoint, "--data", `imagefolder:${broken}`, "--out", out, "--skip-bad-images", "--json"]);
    assert.equal(s.code, 0, s.err.join("\n"));
    const j = lastJson(s);
    assert.equal(j.images, 5);
    assert.equal(j.skipped, 1);
    assert.equal(j.skippedItems[0].key, bad);
    assert.ok(j.skippedItems[0].reason.length > 0);
  });
});

describe("--engine", () => {
  it("onnx gives the tfjs engine's results: the same eval metrics, embeddings within 1e-5", async () => {
    const dir = tmpDir();
    const runs: Record<string, { metrics: Record<string, number>; rows: Map<string, number[]> }> = {};
    for (const engine of ["tfjs", "onnx"]) {
      const e = await run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--engine", engine, "--json"]);
      assert.equal(e.code, 0, e.err.join("\n"));
      assert.ok(e.err.some((l) => l.startsWith(`engine: ${engine}`)), e.err.join("\n"));
      const out = path.join(dir, `${engine}.arrow`);
      const m = await run(["embed", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--out", out, "--engine", engine, "--json"]);
      assert.equal(m.code, 0, m.err.join("\n"));
      assert.equal(lastJson(m).engine, engine);
      runs[engine] = { metrics: lastJson(e).metrics, rows: new Map(rows(out).map((r) => [r.id, r.emb])) };
    }
    assert.deepEqual(runs.onnx.metrics, runs.tfjs.metrics);
    assert.equal(runs.onnx.rows.size, runs.tfjs.rows.size);
    for (const [id, a] of runs.tfjs.rows) {
      const b = runs.onnx.rows.get(id);
      assert.ok(b, `${id} missing from the onnx output`);
      const scale = Math.max(...a.map(Math.abs));
      const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
      assert.ok(diff < 1e-5 * scale, `${id}: onnx and tfjs embeddings differ by ${diff} (scale ${scale})`);
    }
    assert.equal((await run(["eval", "--checkpoint", checkpoint, "--engine", "gpu"])).code, 2);
  });

  it("defaults to auto (onnxruntime here) and says so; --quantize int8 runs int8 towers close to float32", async () => {
    const dir = tmpDir();
    const plain = await run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--json"]);
    assert.equal(plain.code, 0, plain.err.join("\n"));
    assert.ok(plain.err.some((l) => /^engine: onnx \(auto: onnxruntime-node, \d+ intra-op threads?\)$/.test(l)), plain.err.join("\n"));
    const q = await run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--quantize", "int8", "--json"]);
    assert.equal(q.code, 0, q.err.join("\n"));
    assert.ok(q.err.some((l) => /^engine: onnx \(auto: .*int8 linear layers\)$/.test(l)), q.err.join("\n"));
    const fp = path.join(dir, "fp32.arrow");
    const int8 = path.join(dir, "int8.arrow");
    assert.equal((await run(["embed", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--out", fp])).code, 0);
    const e = await run(["embed", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--out", int8, "--quantize", "int8", "--json"]);
    assert.equal(e.code, 0, e.err.join("\n"));
    const ref = new Map(rows(fp).map((r) => [r.id, r.emb]));
    let differs = false;
    for (const r of rows(int8)) {
      const a = ref.get(r.id)!;
      let ab = 0;
      let aa = 0;
      let bb = 0;
      a.forEach((v, i) => {
        ab += v * r.emb[i];
        aa += v * v;
        bb += r.emb[i] * r.emb[i];
        if (v !== r.emb[i]) differs = true;
      });
      assert.ok(ab / Math.sqrt(aa * bb) >= 0.99, `${r.id}: cosine ${ab / Math.sqrt(aa * bb)} to float32`);
    }
    assert.ok(differs, "the int8 embeddings are not the float32 ones");
    const tfjs = await run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--engine", "tfjs", "--quantize", "int8"]);
    assert.equal(tfjs.code, 2);
    assert.match(errors(tfjs)[0], /--quantize int8 runs on onnxruntime: use --engine onnx or auto, not tfjs/);
    assert.equal((await run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--quantize", "int4"])).code, 2);
  });
});

describe("cliplab train on an image folder", () => {
  it("a tiny model trained from scratch beats chance", async () => {
    const dir = tmpDir();
    const cfg = path.join(dir, "tiny64.json");
    fs.writeFileSync(cfg, JSON.stringify(TINY_64));
    const r = await run(["train", "--model", cfg, "--data", `imagefolder:${folder}`, "--val-data", `imagefolder:${folder}`, "--epochs", "6", "--batch", "6", "--lr", "0.003", "--out", path.join(dir, "run"), "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const j = lastJson(r);
    assert.equal(j.steps, 18);
    assert.ok(j.zeroShotTop1 > 1 / 3 + 0.15, `zero-shot top-1 ${j.zeroShotTop1} vs chance 1/3`);
    assert.ok(fs.existsSync(path.join(dir, "run", "model.safetensors")));
  });
});
