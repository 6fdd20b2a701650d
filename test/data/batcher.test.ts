/** The seeded batcher (src/data/batcher.ts). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Batcher, type Batch } from "../../src/data/batcher";
import { mixSeed } from "../../src/util/random";
import { CaptionSet } from "../../src/data/captions";
import { normalizePixels } from "../../src/image/preprocess";
import { realSplit, syntheticImages } from "./util";

const data = syntheticImages(103, 7);
const AUG = { shift: 2, flip: 0.5, flipClasses: [0, 1, 2, 3, 4, 6, 8], rotate: 10, noise: 0.03, contrast: 0.2 };
const captions = CaptionSet.load();

function same(a: Batch, b: Batch): void {
  assert.deepEqual(a.indices, b.indices);
  assert.deepEqual(a.labels, b.labels);
  assert.deepEqual(a.captions, b.captions);
  assert.deepEqual(a.pixels, b.pixels);
  assert.equal(a.epoch, b.epoch);
  assert.equal(a.step, b.step);
}

describe("Batcher", () => {
  it("gives the same batches for the same seed, and other batches for another seed", () => {
    const a = new Batcher(data, { batchSize: 16, seed: 3, augment: AUG, captions });
    const b = new Batcher(data, { batchSize: 16, seed: 3, augment: AUG, captions });
    const c = new Batcher(data, { batchSize: 16, seed: 4, augment: AUG, captions });
    for (const [e, s] of [[0, 0], [0, 5], [2, 3]]) {
      same(a.batchAt(e, s), b.batchAt(e, s));
      assert.notDeepEqual(a.batchAt(e, s).indices, c.batchAt(e, s).indices);
    }
    // Asking again, out of order, gives the same batch.
    const first = a.batchAt(1, 2);
    a.batchAt(5, 0);
    same(a.batchAt(1, 2), first);
  });

  it("orders each epoch differently, every index once per epoch", () => {
    const b = new Batcher(data, { batchSize: 10, seed: 1, dropLast: false, captions: null });
    assert.equal(b.stepsPerEpoch, 11);
    const orders: string[] = [];
    for (let e = 0; e < 4; e++) {
      const seen: number[] = [];
      for (const batch of b.epoch(e)) seen.push(...batch.indices);
      assert.deepEqual([...seen].sort((x, y) => x - y), Array.from({ length: data.count }, (_, i) => i));
      orders.push(seen.join(","));
    }
    assert.equal(new Set(orders).size, 4);
    const order = b.epochOrder(1);
    assert.equal(order.join(","), orders[1]);
    order.fill(0); // a copy: changing it changes nothing
    assert.equal(b.epochOrder(1).join(","), orders[1]);
    assert.equal(b.batchAt(0, 10).size, 3);

    const d = new Batcher(data, { batchSize: 10, seed: 1, captions: null });
    assert.equal(d.stepsPerEpoch, 10);
    const seen = new Set<number>();
    for (const batch of d.epoch(0)) {
      assert.equal(batch.size, 10);
      batch.indices.forEach((i) => seen.add(i));
    }
    assert.equal(seen.size, 100);
    assert.throws(() => d.batchAt(0, 10), /step must be an integer in \[0, 9\], got 10/);
  });

  it("every index once per epoch on the real training split (dropLast drops 60000 mod 512)", () => {
    const train = realSplit("train");
    const b = new Batcher(train, { batchSize: 512, seed: 0, captions: null });
    assert.equal(b.stepsPerEpoch, 117);
    const count = new Uint8Array(train.count);
    for (let s = 0; s < b.stepsPerEpoch; s++) for (const i of b.indicesAt(2, s)) count[i]++;
    let once = 0;
    for (const c of count) {
      assert.ok(c <= 1);
      once += c;
    }
    assert.equal(once, 117 * 512);
  });

  it("resumes exactly from a saved state", () => {
    const opts = { batchSize: 16, seed: 12, augment: AUG, captions };
    const straight = new Batcher(data, opts);
    const reference: Batch[] = [];
    for (let i = 0; i < 20; i++) reference.push(straight.next()); // crosses epochs (6 steps each)
    const first = new Batcher(data, opts);
    for (let i = 0; i < 8; i++) same(first.next(), reference[i]);
    const saved = JSON.parse(JSON.stringify(first.state()));
    assert.deepEqual(saved, { epoch: 1, step: 2 });
    const resumed = new Batcher(data, opts);
    resumed.restore(saved);
    for (let i = 8; i < 20; i++) same(resumed.next(), reference[i]);
    same(straight.batchAt(2, 1), reference[13]);
    assert.throws(() => resumed.restore({ epoch: -1, step: 0 }), /epoch must be a non-negative integer/);
  });

  it("makes CLIP-normalised NHWC pixels, grey in 3 channels, black-padded to the centre", () => {
    const b = new Batcher(data, { batchSize: 4, seed: 2, imageSize: 32, captions: null });
    const batch = b.batchAt(0, 0);
    assert.equal(batch.pixels.length, 4 * 32 * 32 * 3);
    const black = normalizePixels(new Uint8Array(3));
    for (let k = 0; k < 4; k++) {
      const idx = batch.indices[k];
      const grey = data.images.subarray(idx * 784, (idx + 1) * 784);
      const rgb = new Uint8Array(784 * 3);
      for (let i = 0; i < 784; i++) rgb.fill(grey[i], 3 * i, 3 * i + 3);
      const want = normalizePixels(rgb);
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const o = ((k * 32 + y) * 32 + x) * 3;
          const got = batch.pixels.subarray(o, o + 3);
          const inside = y >= 2 && y < 30 && x >= 2 && x < 30;
          const exp = inside ? want.subarray(((y - 2) * 28 + (x - 2)) * 3, ((y - 2) * 28 + (x - 2)) * 3 + 3) : black;
          assert.deepEqual(got, exp, `image ${k} pixel ${y},${x}`);
        }
      }
      assert.equal(batch.labels[k], data.labels[idx]);
    }
    assert.deepEqual(batch.captions, []);
  });

  it("with zero-strength augmentation gives the same pixels as without", () => {
    const plain = new Batcher(data, { batchSize: 8, seed: 5, captions });
    const zero = new Batcher(data, { batchSize: 8, seed: 5, captions, augment: { shift: 0, rotate: 0, noise: 0, contrast: 0, flip: 0 } });
    same(plain.batchAt(1, 3), zero.batchAt(1, 3));
    const aug = new Batcher(data, { batchSize: 8, seed: 5, captions, augment: AUG });
    const a = aug.batchAt(1, 3);
    const p = plain.batchAt(1, 3);
    assert.deepEqual(a.indices, p.indices);
    assert.deepEqual(a.captions, p.captions, "augmentation does not change captions");
    assert.notDeepEqual(a.pixels, p.pixels);
  });

  it("captions each image by its class", () => {
    const b = new Batcher(data, { batchSize: 20, seed: 9, captions });
    const batch = b.batchAt(0, 1);
    assert.equal(batch.captions.length, 20);
    for (let k = 0; k < 20; k++) {
      const syn = captions.spec.classes[batch.labels[k]].synonyms;
      assert.ok(syn.some((s) => batch.captions[k].includes(s)), `${batch.captions[k]} for ${captions.classNames[batch.labels[k]]}`);
    }
  });

  it("validates its options", () => {
    assert.throws(() => new Batcher(data, { batchSize: 0, seed: 1 }), /batchSize must be a positive integer, got 0/);
    assert.throws(() => new Batcher(data, { batchSize: 8, seed: -1 }), /seed must be a non-negative safe integer/);
    assert.throws(() => new Batcher(data, { batchSize: 8, seed: 1, imageSize: 24 }), /imageSize must be an integer >= the image size 28, got 24/);
    assert.throws(() => new Batcher(data, { batchSize: 200, seed: 1 }), /103 images make no batch of 200 with dropLast/);
    assert.throws(() => new Batcher(data, { batchSize: 8, seed: 1, augment: { rotation: 3 } as never }), /Batcher: augment: unknown key "rotation"; valid keys: shift, flip/);
    assert.throws(() => new Batcher(data, { batchSize: 8, seed: 1, shuffle: true } as never), /unknown option "shuffle"; valid options: batchSize, seed/);
    const other = { ...data, classNames: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] };
    assert.throws(() => new Batcher(other, { batchSize: 8, seed: 1 }), /caption set is for classes \[T-shirt\/top.*\], the data has \[a, b/);
  });

  it("mixSeed separates nearby inputs", () => {
    const seen = new Set<number>();
    for (let a = 0; a < 20; a++) for (let b = 0; b < 20; b++) seen.add(mixSeed(7, a, b));
    assert.equal(seen.size, 400);
    assert.notEqual(mixSeed(1, 2), mixSeed(2, 1));
    assert.notEqual(mixSeed(2 ** 32), mixSeed(0));
  });
});
