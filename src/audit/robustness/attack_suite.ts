/**
 * The attack part of the robustness audit: untargeted FGSM (https://arxiv.org/abs/1412.6572) and
 * PGD (https://arxiv.org/abs/1706.06083) at every budget of both norms, the "more steps" PGD runs,
 * targeted PGD towards a random wrong class, adversarial examples for the report, and the sanity
 * checks over the results (see audit.ts for what they mean).
 */
import * as tf from "@tensorflow/tfjs";
import type { ZeroShotModel } from "../../eval/zero_shot";
import { mixSeed } from "../../data/batcher";
import { Random } from "../../util/random";
import { AttackNorm, fgsm, pgd } from "./attacks";
import { zeroShotLoss } from "./objective";
import type { AdversarialExample, AttackRow, ResolvedAuditOptions, RobustnessResult, SanityCheck, SanityChecks, TargetedRow, TopCaption } from "./types";

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The lower median element (of a sorted list). */
export function median<T>(xs: T[]): T {
  return xs[Math.floor((xs.length - 1) / 2)];
}

/** The upper median element (of a sorted list). */
function upperMedian<T>(xs: T[]): T {
  return xs[Math.floor(xs.length / 2)];
}

export type Classify = (emb: tf.Tensor2D, classes: Int32Array) => { pred: Int32Array; cos: Float32Array; probs: Float32Array };

export function runAttacks(
  o: ResolvedAuditOptions,
  model: ZeroShotModel,
  weights: tf.Tensor2D,
  source: tf.Tensor4D,
  allLabels: Int32Array,
  m: number,
  numClasses: number,
  embed: (x: tf.Tensor4D) => tf.Tensor2D,
  classify: Classify,
  caption: (c: number) => string,
  classNames: string[],
): Pick<RobustnessResult, "attackClean" | "attacks" | "moreStepsAttacks" | "targetedAttacks" | "sanity" | "examples"> {
  const labels = allLabels.slice(0, m);
  const x0 = tf.slice(source, [0, 0, 0, 0], [m, -1, -1, -1]) as tf.Tensor4D; // [m, h, w, 1]
  const targetRng = new Random(mixSeed(o.seed, 11));
  const targets = Int32Array.from(labels, (y) => (y + 1 + targetRng.int(numClasses - 1)) % numClasses);
  const grids: [AttackNorm, number[]][] = [
    ["linf", o.linfEps],
    ["l2", o.l2Eps],
  ];
  const nonZero = (g: number[]) => g.filter((e) => e > 0);
  const moreStepsEps = new Map(grids.filter(([, g]) => nonZero(g).length).map(([norm, g]) => [norm, median(nonZero(g))]));
  const exampleEps = nonZero(o.linfEps).length ? upperMedian(nonZero(o.linfEps)) : undefined;
  const runs =
    grids.reduce((k, [, g]) => k + 2 * g.length + (o.targeted ? nonZero(g).length : 0), 0) + moreStepsEps.size;
  let done = 0;
  const progress = (label: string) => o.onProgress?.({ phase: "attacks", done: ++done, total: runs, label });

  const cleanEmb = embed(x0);
  const clean = classify(cleanEmb, labels);
  const cleanTarget = classify(cleanEmb, targets);
  cleanEmb.dispose();
  const cleanCorrect = Array.from(labels, (y, i) => clean.pred[i] === y);
  const nCorrect = cleanCorrect.filter(Boolean).length;
  const cleanTop1 = nCorrect / m;
  const cleanCos = mean(Array.from(clean.cos));
  const top = (probs: Float32Array, i: number): TopCaption[] =>
    Array.from({ length: numClasses }, (_, c) => ({ caption: caption(c), probability: probs[i * numClasses + c] }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, 3);
  const exampleIdx = cleanCorrect.map((ok, i) => (ok ? i : -1)).filter((i) => i >= 0).slice(0, o.examples);
  const examples: AdversarialExample[] = [];

  /** Attacks all m images batch by batch with `make`, then classifies the adversarial images. */
  const evaluate = (
    make: (x: tf.Tensor4D, start: number) => tf.Tensor4D,
    classes: Int32Array,
    keep?: (adv: tf.Tensor4D) => void,
  ): { pred: Int32Array; cos: Float32Array; probs: Float32Array } => {
    const parts: tf.Tensor4D[] = [];
    try {
      for (let s = 0; s < m; s += o.batchSize) {
        const size = Math.min(o.batchSize, m - s);
        const x = tf.slice(x0, [s, 0, 0, 0], [size, -1, -1, -1]) as tf.Tensor4D;
        try {
          parts.push(make(x, s));
        } finally {
          x.dispose();
        }
      }
      const adv = tf.concat(parts, 0) as tf.Tensor4D; // [m, h, w, 1]
      try {
        keep?.(adv);
        const emb = embed(adv);
        try {
          return classify(emb, classes);
        } finally {
          emb.dispose();
        }
      } finally {
        adv.dispose();
      }
    } finally {
      tf.dispose(parts);
    }
  };

  const row = (attack: "fgsm" | "pgd", norm: AttackNorm, eps: number, steps: number, res: { pred: Int32Array; cos: Float32Array }): AttackRow => {
    let hits = 0;
    let flipped = 0;
    for (let i = 0; i < m; i++) {
      if (res.pred[i] === labels[i]) hits++;
      else if (cleanCorrect[i]) flipped++;
    }
    const cos = mean(Array.from(res.cos));
    return { attack, norm, eps, steps, top1: hits / m, successRate: nCorrect ? flipped / nCorrect : 0, matchCosine: cos, cosineDrop: cleanCos - cos };
  };

  const attacks: AttackRow[] = [];
  const moreStepsAttacks: AttackRow[] = [];
  const targetedAttacks: TargetedRow[] = [];
  try {
    grids.forEach(([norm, grid], gi) => {
      grid.forEach((eps, ei) => {
        const lossFor = (start: number, size: number) => zeroShotLoss(model, weights, labels.subarray(start, start + size));
        const f = evaluate((x, s) => fgsm(lossFor(s, x.shape[0]), x, { eps, norm }), labels);
        attacks.push(row("fgsm", norm, eps, 1, f));
        progress(`fgsm ${norm} eps=${eps.toPrecision(3)}`);
        const pgdRun = (steps: number, keep?: (adv: tf.Tensor4D) => void) =>
          evaluate(
            (x, s) =>
              pgd(lossFor(s, x.shape[0]), x, {
                eps,
                norm,
                steps,
                stepSize: (o.stepSizeFactor * eps) / steps,
                randomStart: true,
                seed: mixSeed(o.seed, gi, ei, steps, s),
              }),
            labels,
            keep,
          );
        const keepExamples =
          norm === "linf" && eps === exampleEps && exampleIdx.length
            ? (adv: tf.Tensor4D) => {
                const orig = x0.arraySync();
                const advValues = adv.arraySync();
                const picked = tf.gather(adv, exampleIdx) as tf.Tensor4D; // [k, h, w, 1]
                const emb = embed(picked);
                const res = classify(emb, Int32Array.from(exampleIdx, (i) => labels[i]));
                tf.dispose([picked, emb]);
                exampleIdx.forEach((i, k) => {
                  examples.push({
                    index: i,
                    label: labels[i],
                    className: classNames[labels[i]],
                    attack: "pgd",
                    norm,
                    eps,
                    height: x0.shape[1],
                    width: x0.shape[2],
                    channels: x0.shape[3],
                    original: orig[i].flat(2),
                    adversarial: advValues[i].flat(2),
                    cleanTop: top(clean.probs, i),
                    adversarialTop: top(res.probs, k),
                  });
                });
              }
            : undefined;
        const p = pgdRun(o.pgdSteps, keepExamples);
        attacks.push(row("pgd", norm, eps, o.pgdSteps, p));
        progress(`pgd ${norm} eps=${eps.toPrecision(3)}`);
        if (moreStepsEps.get(norm) === eps) {
          moreStepsAttacks.push(row("pgd", norm, eps, o.moreSteps, pgdRun(o.moreSteps)));
          progress(`pgd ${norm} eps=${eps.toPrecision(3)} ${o.moreSteps} steps`);
        }
        if (o.targeted && eps > 0) {
          const t = evaluate(
            (x, s) =>
              pgd(zeroShotLoss(model, weights, labels.subarray(s, s + x.shape[0]), { targets: targets.subarray(s, s + x.shape[0]) }), x, {
                eps,
                norm,
                steps: o.pgdSteps,
                stepSize: (o.stepSizeFactor * eps) / o.pgdSteps,
                randomStart: true,
                seed: mixSeed(o.seed, gi, ei, o.pgdSteps, s, 1),
              }),
            targets,
          );
          let success = 0;
          let hits = 0;
          for (let i = 0; i < m; i++) {
            if (t.pred[i] === targets[i]) success++;
            if (t.pred[i] === labels[i]) hits++;
          }
          targetedAttacks.push({
            attack: "pgd",
            norm,
            eps,
            steps: o.pgdSteps,
            successRate: success / m,
            targetCosine: mean(Array.from(t.cos)),
            cleanTargetCosine: mean(Array.from(cleanTarget.cos)),
            top1: hits / m,
          });
          progress(`targeted pgd ${norm} eps=${eps.toPrecision(3)}`);
        }
      });
    });
  } finally {
    x0.dispose();
  }
  return {
    attackClean: { top1: cleanTop1, matchCosine: cleanCos, n: m },
    attacks,
    moreStepsAttacks,
    targetedAttacks,
    sanity: sanityChecks(cleanTop1, attacks, moreStepsAttacks, o.tolerance),
    examples,
  };
}

/** The four sanity checks over the attack rows (see the module comment). */
export function sanityChecks(cleanTop1: number, attacks: AttackRow[], moreSteps: AttackRow[], tolerance: number): SanityChecks {
  const check = (details: SanityCheck["details"]): SanityCheck => ({ pass: details.every((d) => d.pass), details });
  const eps0 = attacks
    .filter((a) => a.eps === 0)
    .map((a) => ({ label: `${a.attack} ${a.norm} eps=0`, values: { top1: a.top1, clean: cleanTop1 }, pass: a.top1 === cleanTop1 }));
  const pgdVsFgsm = attacks
    .filter((a) => a.attack === "pgd" && a.eps > 0)
    .map((p) => {
      const f = attacks.find((a) => a.attack === "fgsm" && a.norm === p.norm && a.eps === p.eps)!;
      return { label: `${p.norm} eps=${p.eps}`, values: { pgd: p.top1, fgsm: f.top1 }, pass: p.top1 <= f.top1 + tolerance };
    });
  const monotone: SanityCheck["details"] = [];
  for (const attack of ["fgsm", "pgd"] as const) {
    for (const norm of ["linf", "l2"] as const) {
      const rows = attacks.filter((a) => a.attack === attack && a.norm === norm).sort((a, b) => a.eps - b.eps);
      for (let i = 1; i < rows.length; i++) {
        monotone.push({
          label: `${attack} ${norm} eps ${rows[i - 1].eps} -> ${rows[i].eps}`,
          values: { before: rows[i - 1].top1, after: rows[i].top1 },
          pass: rows[i].top1 <= rows[i - 1].top1 + tolerance,
        });
      }
    }
  }
  const more = moreSteps.map((x) => {
    const base = attacks.find((a) => a.attack === "pgd" && a.norm === x.norm && a.eps === x.eps)!;
    return {
      label: `pgd ${x.norm} eps=${x.eps}: ${base.steps} vs ${x.steps} steps`,
      values: { steps: base.steps, top1: base.top1, moreSteps: x.steps, top1MoreSteps: x.top1 },
      pass: x.top1 <= base.top1 + tolerance,
    };
  });
  return {
    epsZeroEqualsClean: check(eps0),
    pgdAtLeastFgsm: check(pgdVsFgsm),
    monotoneInEps: check(monotone),
    moreStepsNoHelp: check(more),
    tolerance,
  };
}
