/** MaxSkew@k, Skew@k and NDKL against hand calculations (src/audit/fairness/metrics.ts). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { maxSkewAtK, ndkl, skewAtK } from "../../src/audit/fairness/metrics";
import { assertThrowsOneLine } from "../helpers/errors";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

describe("maxSkewAtK", () => {
  it("is ln(p_topk / p_desired) of the most over-represented group", () => {
    const ranked = ["a", "a", "b", "a", "b", "b"];
    // top 4: a 3/4, b 1/4; pool shares 1/2 each.
    close(maxSkewAtK(ranked, 4), Math.log(0.75 / 0.5));
    const s = skewAtK(ranked, 4);
    close(s.a, Math.log(1.5));
    close(s.b, Math.log(0.5));
    // With a desired distribution: ln(0.75 / 0.25) for a.
    close(maxSkewAtK(ranked, 4, { a: 0.25, b: 0.75 }), Math.log(3));
  });

  it("replaces a zero share in the top k by 1/k", () => {
    const s = skewAtK(["a", "a", "b", "b"], 2, { a: 0.5, b: 0.5 });
    close(s.a, Math.log(2));
    close(s.b, Math.log(0.5 / 0.5)); // count 0 -> 1/k = 0.5
  });

  it("is 0 for perfectly balanced rankings, at every even k", () => {
    const ranked = Array.from({ length: 40 }, (_, i) => (i % 2 ? "x" : "y"));
    for (const k of [2, 4, 10, 40]) close(maxSkewAtK(ranked, k), 0);
    const three = Array.from({ length: 30 }, (_, i) => ["p", "q", "r"][i % 3]);
    for (const k of [3, 9, 30]) close(maxSkewAtK(three, k), 0);
    // NDKL is not 0 here: the first prefixes cannot hold a third of each group. k = 3, uniform
    // shares: i=1 p=(1,0,0), KL = ln 3, weight 1; i=2 p=(1/2,1/2,0), KL = ln(3/2), weight
    // 1/log2(3); i=3 KL = 0, weight 1/2. (ln 3 + ln 1.5 / log2 3) / (1 + 1/log2 3 + 1/2) = 0.635606...
    close(ndkl(three, 3), (Math.log(3) + Math.log(1.5) / Math.log2(3)) / (1 + 1 / Math.log2(3) + 0.5));
    close(ndkl(three, 3), 0.6356062592577617, 1e-12);
  });

  it("errors: k too large, single group, unknown group in desired, bad shares", () => {
    assertThrowsOneLine(() => maxSkewAtK(["a", "b"], 3), /maxSkewAtK: k = 3 is larger than the ranking/);
    assertThrowsOneLine(() => maxSkewAtK(["a", "a"], 1), /maxSkewAtK: rankedGroups holds a single group \("a"\)/);
    assertThrowsOneLine(() => maxSkewAtK(["a", "c"], 1, { a: 0.5, b: 0.5 }), /rankedGroups has group "c", which desired does not list \(desired groups: a, b\)/);
    assertThrowsOneLine(() => maxSkewAtK(["a", "b"], 1, { a: 0.5, b: 0.6 }), /desired shares must sum to 1/);
    assertThrowsOneLine(() => maxSkewAtK(["a", "b"], 0), /maxSkewAtK: k must be a positive integer, got 0/);
    assertThrowsOneLine(() => maxSkewAtK([], 1), /maxSkewAtK: rankedGroups is empty/);
  });
});

describe("ndkl", () => {
  it("matches the hand calculation for k = 2 and k = 3", () => {
    const ranked = ["a", "b", "a", "b"];
    // i=1: KL({a:1} || .5/.5) = ln 2, weight 1; i=2: KL = 0, weight 1/log2(3).
    const z2 = 1 + 1 / Math.log2(3);
    close(ndkl(ranked, 2), Math.log(2) / z2);
    // i=3: p = (2/3, 1/3): KL = 2/3 ln(4/3) + 1/3 ln(2/3), weight 1/log2(4) = 1/2.
    const kl3 = (2 / 3) * Math.log(4 / 3) + (1 / 3) * Math.log(2 / 3);
    close(ndkl(ranked, 3), (Math.log(2) + kl3 / 2) / (z2 + 0.5));
  });

  it("is 0 only if every prefix matches the desired shares, larger for a segregated ranking", () => {
    const mixed = ["a", "b", "a", "b", "a", "b"];
    const segregated = ["a", "a", "a", "b", "b", "b"];
    assert.ok(ndkl(segregated, 6) > ndkl(mixed, 6));
    close(ndkl(["a", "b"], 1, { a: 1 - 1e-9, b: 1e-9 }), Math.log(1 / (1 - 1e-9)), 1e-9);
  });

  it("errors: single group without desired", () => {
    assertThrowsOneLine(() => ndkl(["z", "z", "z"], 2), /ndkl: rankedGroups holds a single group/);
  });
});
