/** Bootstrap intervals (src/eval/bootstrap.ts) and permutation tests (src/audit/fairness/permutation.ts). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bootstrapCi, bootstrapMean, quantileSorted } from "../../src/eval/bootstrap";
import { permutationTest } from "../../src/audit/fairness/permutation";
import { Random } from "../../src/util/random";
import { assertThrowsOneLine } from "../helpers/errors";

describe("bootstrap", () => {
  it("quantiles interpolate like numpy", () => {
    assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(quantileSorted([1, 2, 3, 4], 0.025), 1.075);
  });

  it("the mean's interval is seeded, contains the mean, and has about the normal-theory width", () => {
    const rng = new Random(1);
    const x = Array.from({ length: 400 }, () => rng.normal());
    const a = bootstrapMean(x, { resamples: 2000, seed: 3 });
    assert.deepEqual(a, bootstrapMean(x, { resamples: 2000, seed: 3 }));
    assert.ok(a.ci95[0] < a.value && a.value < a.ci95[1]);
    const width = a.ci95[1] - a.ci95[0];
    const se = 1 / Math.sqrt(400);
    assert.ok(width > 3.2 * se && width < 4.6 * se, `width ${width} vs 3.92 SE = ${3.92 * se}`);
  });

  it("stratified resamples keep each stratum's size", () => {
    const strata = ["a", "a", "a", "b"];
    bootstrapCi(
      4,
      (idx) => {
        assert.equal(Array.from(idx).filter((i) => i === 3).length, 1); // the lone "b" always drawn once
        return 0;
      },
      { resamples: 50, strata },
    );
  });

  it("permutation test: small p for a real difference, large for none; nullMean near 0 for a signed gap", () => {
    const rng = new Random(2);
    const n = 200;
    const groups = Array.from({ length: n }, (_, i) => (i % 2 ? "g" : "h"));
    const shifted = Array.from({ length: n }, (_, i) => rng.normal() + (i % 2 ? 0.6 : 0));
    const same = Array.from({ length: n }, () => rng.normal());
    const gap = (v: number[]) => (gs: readonly string[]) => {
      let a = 0, na = 0, b = 0, nb = 0; // prettier-ignore
      gs.forEach((g, i) => (g === "g" ? ((a += v[i]), na++) : ((b += v[i]), nb++)));
      return a / na - b / nb;
    };
    const real = permutationTest(groups, gap(shifted), { permutations: 1000, seed: 1 });
    assert.ok(real.pValue < 0.01, `p ${real.pValue}`);
    const none = permutationTest(groups, gap(same), { permutations: 1000, seed: 1 });
    assert.ok(none.pValue > 0.05, `p ${none.pValue}`);
    assert.ok(Math.abs(none.nullMean) < 0.05);
    assert.deepEqual(permutationTest(groups, gap(same), { permutations: 300, seed: 8 }), permutationTest(groups, gap(same), { permutations: 300, seed: 8 }));
  });

  it("permutation within strata keeps every stratum's group counts", () => {
    const groups = ["g", "g", "h", "h", "g", "h"];
    const strata = [0, 0, 0, 1, 1, 1];
    permutationTest(
      groups,
      (gs) => {
        assert.equal(gs.slice(0, 3).filter((g) => g === "g").length, 2);
        assert.equal(gs.slice(3).filter((g) => g === "g").length, 1);
        return 0;
      },
      { permutations: 50, strata },
    );
    assertThrowsOneLine(() => permutationTest(groups, () => 0, { strata: [0] }), /permutationTest: strata must have one entry per item \(6\), got 1/);
  });

  it("bad input: one-line errors naming the argument", () => {
    assertThrowsOneLine(() => bootstrapCi(3, () => 0, { strata: ["a", "b"] }), /bootstrapCi: strata must have one entry per item \(3\), got 2/);
    assertThrowsOneLine(() => bootstrapCi(0, () => 0), /bootstrapCi: n must be a positive integer, got 0/);
    assertThrowsOneLine(() => bootstrapMean([]), /bootstrapMean: values is empty/);
    assertThrowsOneLine(() => permutationTest(["a", "a"], () => 0), /permutationTest: groups holds a single group/);
    assertThrowsOneLine(() => permutationTest(["a", "b"], () => 0, { alternative: "less" as "greater" }), /alternative must be "greater" or "two-sided", got "less"/);
  });
});
