/**
 * compareCorruptionErrors (ImageNet-C's CE, mCE and relative mCE, https://arxiv.org/abs/1903.12261
 * §3, against a baseline model) on a toy pair of results computed by hand; undefined CEs; audits
 * that do not match are refused.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { compareCorruptionErrors } from "../../src/audit/robustness/mce";
import type { RobustnessResult } from "../../src/audit/robustness/types";
import { assertThrowsOneLine } from "../helpers/errors";

/** A result holding only what CE reads: clean top-1 and top-1 per corruption x severity. */
function toy(clean: number, top1: Record<string, number[]>, severities = [1, 2, 3]): RobustnessResult {
  const corruptions = Object.entries(top1).flatMap(([name, values]) =>
    values.map((t, i) => ({ name, severity: severities[i], top1: t, matchCosine: 0, captionCosine: 0, recallAt1ImageToText: 0, recallAt1TextToImage: 0 })),
  );
  return {
    config: { dataset: "imagefolder:toy", images: 100, corruptions: Object.keys(top1), severities, seed: 0 },
    clean: { top1: clean },
    corruptions,
  } as unknown as RobustnessResult;
}

const close = (a: number | null, b: number) => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

describe("compareCorruptionErrors", () => {
  it("equals the hand calculation on a toy pair", () => {
    // Model: clean error 0.1; noise errors 0.2, 0.3, 0.5; blur 0.1, 0.2, 0.3.
    // Baseline: clean error 0.2; noise 0.4, 0.6, 0.8; blur 0.25, 0.3, 0.45.
    const model = toy(0.9, { noise: [0.8, 0.7, 0.5], blur: [0.9, 0.8, 0.7] });
    const base = toy(0.8, { noise: [0.6, 0.4, 0.2], blur: [0.75, 0.7, 0.55] });
    const r = compareCorruptionErrors(model, base, "toy baseline");
    assert.equal(r.baseline, "toy baseline");
    close(r.clean.error, 0.1);
    close(r.clean.baselineError, 0.2);
    const [noise, blur] = r.perCorruption;
    // CE_noise = (0.2 + 0.3 + 0.5) / (0.4 + 0.6 + 0.8) = 1.0 / 1.8
    close(noise.ce, 1.0 / 1.8);
    // relative CE_noise = ((0.2-0.1) + (0.3-0.1) + (0.5-0.1)) / ((0.4-0.2) + (0.6-0.2) + (0.8-0.2)) = 0.7 / 1.2
    close(noise.relativeCe, 0.7 / 1.2);
    // CE_blur = 0.6 / 1.0; relative = (0 + 0.1 + 0.2) / (0.05 + 0.1 + 0.25) = 0.3 / 0.4
    close(blur.ce, 0.6 / 1.0);
    close(blur.relativeCe, 0.3 / 0.4);
    close(r.mce, (1.0 / 1.8 + 0.6) / 2);
    close(r.relativeMce, (0.7 / 1.2 + 0.75) / 2);
    noise.errors.forEach((e, i) => close(e, [0.2, 0.3, 0.5][i]));
    assert.deepEqual(r.undefinedCe, []);
    // The baseline against itself: every CE is 1.
    const self = compareCorruptionErrors(base, base);
    for (const p of self.perCorruption) {
      close(p.ce, 1);
      close(p.relativeCe, 1);
    }
  });

  it("a CE whose denominator is 0 is null, listed, and left out of the mean", () => {
    const model = toy(0.9, { noise: [0.8, 0.7, 0.5], flat: [0.9, 0.9, 0.9] });
    // The baseline makes no error at all under "flat" (and no clean error either).
    const base = toy(1, { noise: [0.6, 0.4, 0.2], flat: [1, 1, 1] });
    const r = compareCorruptionErrors(model, base);
    const flat = r.perCorruption[1];
    assert.equal(flat.ce, null);
    assert.equal(flat.relativeCe, null);
    assert.deepEqual(r.undefinedCe.map((u) => [u.name, u.which]), [["flat", "ce"], ["flat", "relativeCe"]]);
    close(r.mce, (0.2 + 0.3 + 0.5) / (0.4 + 0.6 + 0.8));
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  });

  it("refuses audits of other images or settings with one line", () => {
    const a = toy(0.9, { noise: [0.8, 0.7, 0.5] });
    const b = toy(0.8, { noise: [0.6, 0.4, 0.2] });
    const other = { ...b, config: { ...b.config, severities: [1, 2, 4] } } as RobustnessResult;
    assertThrowsOneLine(() => compareCorruptionErrors(a, other), /^compareCorruptionErrors: the audits differ in severities \(\[1,2,3\] vs \[1,2,4\]\); audit both models on the same images/);
    const fewer = { ...b, config: { ...b.config, images: 50 } } as RobustnessResult;
    assertThrowsOneLine(() => compareCorruptionErrors(a, fewer), /^compareCorruptionErrors: the audits differ in images \(100 vs 50\)/);
  });
});
