/** Demographic parity, equalised odds, accuracy gap and assignment rates against hand calculations. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  accuracyGap,
  assignmentRates,
  demographicParityDifference,
  equalizedOddsGap,
  equalizedOddsRates,
  perGroupAccuracy,
} from "../../src/audit/fairness/group_metrics";
import { assertThrowsOneLine } from "../helpers/errors";
import { Random } from "../../src/util/random";

// Group x: items 0-3, group y: items 4-7. Positive class 1.
const PRED = Int32Array.from([1, 0, 1, 1, 0, 1, 0, 0]);
const LABELS = Int32Array.from([1, 1, 0, 0, 1, 1, 0, 0]);
const GROUPS = ["x", "x", "x", "x", "y", "y", "y", "y"];

describe("group metrics", () => {
  it("demographic parity: P(yhat=1|x) = 3/4, P(yhat=1|y) = 1/4", () => {
    assert.equal(demographicParityDifference(PRED, GROUPS, 1), 0.5);
    assert.equal(demographicParityDifference(PRED, GROUPS, 0), 0.5);
  });

  it("equalised odds: TPR x 1/2, y 1/2; FPR x 1, y 0 -> gap 1", () => {
    const r = equalizedOddsRates(PRED, LABELS, GROUPS, 1);
    assert.deepEqual(r.tpr, { x: 0.5, y: 0.5 });
    assert.deepEqual(r.fpr, { x: 1, y: 0 });
    assert.equal(r.tprGap, 0);
    assert.equal(r.fprGap, 1);
    assert.equal(equalizedOddsGap(PRED, LABELS, GROUPS, 1), 1);
  });

  it("accuracy per group (x 2/4, y 3/4... ) and its gap", () => {
    // x: preds 1,0,1,1 vs 1,1,0,0 -> 1 right; y: 0,1,0,0 vs 1,1,0,0 -> 3 right.
    assert.deepEqual(perGroupAccuracy(PRED, LABELS, GROUPS), { x: 0.25, y: 0.75 });
    assert.equal(accuracyGap(PRED, LABELS, GROUPS), 0.5);
  });

  it("assignment rates to a set of classes (the harmful-label probe)", () => {
    const pred = Int32Array.from([3, 4, 0, 0, 0, 0, 0, 4]);
    assert.deepEqual(assignmentRates(pred, GROUPS, [3, 4]), { x: 0.5, y: 0.25 });
  });

  it("bootstrap intervals: seeded, contain the value, and cover the truth of a balanced sample", () => {
    const a = demographicParityDifference(PRED, GROUPS, 1, { bootstrap: 300, seed: 4 });
    const b = demographicParityDifference(PRED, GROUPS, 1, { bootstrap: 300, seed: 4 });
    assert.deepEqual(a, b);
    assert.equal(a.value, 0.5);
    assert.ok(a.ci95[0] <= 0.5 && a.ci95[1] >= 0.5);
    // On a larger sample, another seed gives another interval.
    const rng = new Random(0);
    const pred = Int32Array.from({ length: 300 }, () => rng.int(3));
    const groups = Array.from({ length: 300 }, (_, i) => (i % 3 ? "x" : "y"));
    const c4 = demographicParityDifference(pred, groups, 1, { bootstrap: 300, seed: 4 });
    const c5 = demographicParityDifference(pred, groups, 1, { bootstrap: 300, seed: 5 });
    assert.notDeepEqual(c4.ci95, c5.ci95);
    assert.equal(c4.value, c5.value);
    const eo = equalizedOddsGap(PRED, LABELS, GROUPS, 1, { bootstrap: 200, seed: 1 });
    assert.equal(eo.value, 1);
    assert.ok(eo.ci95[0] <= eo.ci95[1]);
  });

  it("bad input: each a one-line error naming the argument", () => {
    assertThrowsOneLine(() => demographicParityDifference(PRED, GROUPS.slice(1), 1), /demographicParityDifference: groups has 7 entries but there are 8 items \(mismatched lengths\)/);
    assertThrowsOneLine(() => equalizedOddsGap(PRED, LABELS.slice(1), GROUPS, 1), /equalizedOddsGap: labels has 7 entries, expected 8/);
    assertThrowsOneLine(() => demographicParityDifference(PRED, GROUPS.map(() => "x"), 1), /groups holds a single group \("x"\)/);
    assertThrowsOneLine(
      () => demographicParityDifference(PRED, GROUPS, 1, { groupNames: ["x", "y", "z"] }),
      /group "z" has no members in groups \(groups present: x, y\)/,
    );
    assertThrowsOneLine(() => demographicParityDifference(PRED, GROUPS, 1, { groupNames: ["x", "w"] }), /groups has "y", which groupNames does not list \(valid: x, w\)/);
    assertThrowsOneLine(() => equalizedOddsGap(PRED, Int32Array.from([1, 1, 0, 0, 0, 0, 0, 0]), GROUPS, 1), /group "y" has no item with label 1 \(positiveClass\)/);
    assertThrowsOneLine(() => demographicParityDifference(PRED, GROUPS, -1), /positiveClass must be a class id/);
    assertThrowsOneLine(() => demographicParityDifference(Int32Array.from([0, 1]), ["a", ""], 1), /groups\[1\] must be a non-empty string/);
  });
});
