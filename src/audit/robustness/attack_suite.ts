/**
 * The attack part of the robustness audit: untargeted FGSM (https://arxiv.org/abs/1412.6572), PGD
 * (https://arxiv.org/abs/1706.06083), APGD-CE and APGD-T (https://arxiv.org/abs/2003.01690,
 * apgd.ts) at every budget of both norms (those of `attacks`), the worst case over them per image,
 * the "more steps" PGD runs, targeted PGD towards a random wrong class, adversarial examples for
 * the report, and the sanity checks over the results (see audit.ts for what they mean).
 *
 * Images are attacked a batch at a time, straight from the prepared set: the batched encoder asks
 * for each batch's pixels, which are the attack's output (normalised), so only one batch of
 * adversarial images exists at a time. L2 budgets are applied scaled to the input size
 * (budgets.ts); rows report the nominal and the applied budget.
 */
import * as tf from "@tensorflow/tfjs";
import { preparedBatch01, type PreparedSet } from "../../data/prepared";
import { Random, mixSeed } from "../../util/random";
import { AttackNorm, fgsm, perturbationNorms, pgd } from "./attacks";
import { apgdCe, apgdT } from "./apgd";
import { appliedEps } from "./budgets";
import { zeroShotLogitsFn, zeroShotLoss, type Normalisation, type ObjectiveModel } from "./objective";
import { previewPixels } from "./preview";
import type { AdversarialExample, AttackName, AttackRow, ResolvedAuditOptions, RobustnessResult, SanityCheck, SanityChecks, TargetedRow, TopCaption } from "./types";

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

/** An attack's predictions on the adversarial images, and the largest perturbation it made. */
type Evaluated = ReturnType<Classify> & { perturbation: { maxLinf: number; maxL2: number } };

export interface AttackContext {
  o: ResolvedAuditOptions;
  model: ObjectiveModel;
  /** Unit class embeddings [C, D]. */
  weights: tf.Tensor2D;
  norm: Normalisation;
  /** The audited images; the first `labels.length` are attacked. */
  set: PreparedSet;
  labels: Int32Array;
  numClasses: number;
  classNames: string[];
  /** The short caption of a class (the first template), for the examples' top captions. */
  caption: (c: number) => string;
  /** Values per input (S * S * 3), for the L2 budgets. */
  inputValues: number;
  /** Images per attack batch. */
  batchSize: number;
  classify: Classify;
  /** Unit features [k, D] of k images whose [0, 1] pixels `batch01` gives, encoded `batchSize` at a time. */
  embed: (k: number, batch01: (start: number, end: number) => tf.Tensor4D, batchSize: number) => tf.Tensor2D;
}

export function runAttacks(ctx: AttackContext): Pick<RobustnessResult, "attackClean" | "attacks" | "moreStepsAttacks" | "targetedAttacks" | "sanity" | "examples"> {
  const { o, model, weights, norm, set, labels, numClasses, classNames, classify } = ctx;
  const m = labels.length;
  const has = (a: AttackName) => o.attacks.includes(a);
  const targetRng = new Random(mixSeed(o.seed, 11));
  const targets = Int32Array.from(labels, (y) => (y + 1 + targetRng.int(numClasses - 1)) % numClasses);
  const grids: [AttackNorm, number[]][] = [
    ["linf", o.linfEps],
    ["l2", o.l2Eps],
  ];
  const nonZero = (g: number[]) => g.filter((e) => e > 0);
  const moreStepsEps = new Map(has("pgd") ? grids.filter(([, g]) => nonZero(g).length).map(([norm, g]) => [norm, median(nonZero(g))]) : []);
  const exampleEps = nonZero(o.linfEps).length ? upperMedian(nonZero(o.linfEps)) : undefined;
  const exampleAttack = (["pgd", "apgd-ce", "apgd-t", "fgsm"] as AttackName[]).find(has);
  const targeted = o.targeted && has("pgd");
  const runs = grids.reduce((k, [, g]) => k + o.attacks.length * g.length + (targeted ? nonZero(g).length : 0), 0) + moreStepsEps.size;
  let done = 0;
  const progress = (label: string) => o.onProgress?.({ phase: "attacks", done: ++done, total: runs, label });
  const clean01 = (s: number, e: number) => preparedBatch01(set, s, e);

  // Clean features of the attacked images, in the attack batches (so eps = 0 reproduces them exactly).
  const cleanEmb = ctx.embed(m, clean01, ctx.batchSize); // [m, D]
  const clean = classify(cleanEmb, labels);
  const cleanTarget = classify(cleanEmb, targets);
  cleanEmb.dispose();
  const cleanCorrect = Array.from(labels, (y, i) => clean.pred[i] === y);
  const nCorrect = cleanCorrect.filter(Boolean).length;
  const cleanTop1 = nCorrect / m;
  const cleanCos = mean(Array.from(clean.cos));
  const top = (probs: Float32Array, i: number): TopCaption[] =>
    Array.from({ length: numClasses }, (_, c) => ({ caption: ctx.caption(c), probability: probs[i * numClasses + c] }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, 3);
  const exampleIdx = cleanCorrect.map((ok, i) => (ok ? i : -1)).filter((i) => i >= 0).slice(0, o.examples);
  const examples: AdversarialExample[] = [];

  /**
   * Attacks all m images batch by batch with `make` (the batch's [0, 1] pixels and its start),
   * encodes each adversarial batch as it is made, then classifies them against `classes`.
   * `keep` sees every adversarial batch with its clean pixels before it is freed.
   */
  const evaluate = (
    make: (x: tf.Tensor4D, start: number) => tf.Tensor4D,
    classes: Int32Array,
    keep?: (x: tf.Tensor4D, adv: tf.Tensor4D, start: number) => void,
  ): Evaluated => {
    const perturbation = { maxLinf: 0, maxL2: 0 };
    const adversarial01 = (s: number, e: number): tf.Tensor4D => {
      const x = clean01(s, e); // [b, S, S, 3]
      try {
        const adv = make(x, s); // [b, S, S, 3]
        keep?.(x, adv, s);
        const size = perturbationNorms(x, adv);
        for (const v of size.linf) perturbation.maxLinf = Math.max(perturbation.maxLinf, v);
        for (const v of size.l2) perturbation.maxL2 = Math.max(perturbation.maxL2, v);
        return adv;
      } finally {
        x.dispose();
      }
    };
    const emb = ctx.embed(m, adversarial01, ctx.batchSize); // [m, D]
    try {
      return { ...classify(emb, classes), perturbation };
    } finally {
      emb.dispose();
    }
  };

  /** A row from per-image correctness and cosines. */
  const rowOf = (attack: AttackRow["attack"], norm: AttackNorm, eps: number, steps: number, correct: ArrayLike<number | boolean>, cosines: ArrayLike<number>, perturbation: Evaluated["perturbation"]): AttackRow => {
    let hits = 0;
    let flipped = 0;
    for (let i = 0; i < m; i++) {
      if (correct[i]) hits++;
      else if (cleanCorrect[i]) flipped++;
    }
    const cos = mean(Array.from(cosines));
    return {
      attack,
      norm,
      eps,
      appliedEps: appliedEps(norm, eps, ctx.inputValues),
      steps,
      top1: hits / m,
      successRate: nCorrect ? flipped / nCorrect : 0,
      matchCosine: cos,
      cosineDrop: cleanCos - cos,
      perturbation,
    };
  };
  const row = (attack: AttackRow["attack"], norm: AttackNorm, eps: number, steps: number, res: Evaluated): AttackRow =>
    rowOf(attack, norm, eps, steps, Array.from(labels, (y, i) => res.pred[i] === y), res.cos, res.perturbation);

  const attacks: AttackRow[] = [];
  const moreStepsAttacks: AttackRow[] = [];
  const targetedAttacks: TargetedRow[] = [];
  const lossFor = (start: number, size: number, targeted = false) =>
    zeroShotLoss(model, weights, labels.subarray(start, start + size), { norm, ...(targeted ? { targets: targets.subarray(start, start + size) } : {}) });
  const logits01 = zeroShotLogitsFn(model, weights, norm);
  grids.forEach(([normName, grid], gi) => {
    grid.forEach((eps, ei) => {
      const budget = appliedEps(normName, eps, ctx.inputValues);
      // The examples' pixels, gathered from the batches that hold them.
      const kept = new Map<number, { original: number[]; adversarial: number[]; height: number; width: number }>();
      const keepFor = (attack: AttackName) =>
        attack === exampleAttack && normName === "linf" && eps === exampleEps && exampleIdx.length
          ? (x: tf.Tensor4D, adv: tf.Tensor4D, s: number) => {
              const [b, h, w, c] = x.shape;
              const mine = exampleIdx.filter((i) => i >= s && i < s + b);
              if (!mine.length) return;
              const xv = x.dataSync();
              const av = adv.dataSync();
              const per = h * w * c;
              for (const i of mine) {
                const k = i - s;
                const orig = previewPixels(xv.subarray(k * per, (k + 1) * per), h, w, c);
                const advShown = previewPixels(av.subarray(k * per, (k + 1) * per), h, w, c);
                kept.set(i, { original: orig.pixels, adversarial: advShown.pixels, height: orig.height, width: orig.width });
              }
            }
          : undefined;
      const collectExamples = (attack: AttackName, res: Evaluated) => {
        for (const i of exampleIdx) {
          const px = kept.get(i);
          if (!px) continue;
          examples.push({
            index: i,
            key: set.keys[i],
            label: labels[i],
            className: classNames[labels[i]],
            attack,
            norm: normName,
            eps,
            height: px.height,
            width: px.width,
            channels: 3,
            original: px.original,
            adversarial: px.adversarial,
            cleanTop: top(clean.probs, i),
            adversarialTop: top(res.probs, i),
          });
        }
      };
      // Per image, across the attacks at this budget: still correct under all of them, and the lowest cosine.
      const robust = new Uint8Array(m).fill(1);
      const lowestCos = new Float32Array(m).fill(Infinity);
      const worst = { maxLinf: 0, maxL2: 0 };
      const record = (attack: AttackName, steps: number, res: Evaluated) => {
        for (let i = 0; i < m; i++) {
          if (res.pred[i] !== labels[i]) robust[i] = 0;
          lowestCos[i] = Math.min(lowestCos[i], res.cos[i]);
        }
        worst.maxLinf = Math.max(worst.maxLinf, res.perturbation.maxLinf);
        worst.maxL2 = Math.max(worst.maxL2, res.perturbation.maxL2);
        attacks.push(row(attack, normName, eps, steps, res));
        progress(`${attack} ${normName} eps=${eps.toPrecision(3)}`);
      };
      const pgdRun = (steps: number, keep?: (x: tf.Tensor4D, adv: tf.Tensor4D, start: number) => void) =>
        evaluate(
          (x, s) =>
            pgd(lossFor(s, x.shape[0]), x, {
              eps: budget,
              norm: normName,
              steps,
              stepSize: (o.stepSizeFactor * budget) / steps,
              randomStart: true,
              seed: mixSeed(o.seed, gi, ei, steps, s),
            }),
          labels,
          keep,
        );
      const apgdOpts = (s: number, kind: number) => ({ eps: budget, norm: normName, steps: o.apgdSteps, restarts: o.apgdRestarts, seed: mixSeed(o.seed, gi, ei, o.apgdSteps, s, kind) });
      const runners: Record<AttackName, () => { res: Evaluated; steps: number }> = {
        fgsm: () => ({ res: evaluate((x, s) => fgsm(lossFor(s, x.shape[0]), x, { eps: budget, norm: normName }), labels, keepFor("fgsm")), steps: 1 }),
        pgd: () => ({ res: pgdRun(o.pgdSteps, keepFor("pgd")), steps: o.pgdSteps }),
        "apgd-ce": () => ({
          res: evaluate((x, s) => apgdCe(logits01, x, labels.subarray(s, s + x.shape[0]), apgdOpts(s, 2)), labels, keepFor("apgd-ce")),
          steps: o.apgdSteps,
        }),
        "apgd-t": () => ({
          res: evaluate((x, s) => apgdT(logits01, x, labels.subarray(s, s + x.shape[0]), { ...apgdOpts(s, 3), targets: o.apgdTargets }), labels, keepFor("apgd-t")),
          steps: o.apgdSteps,
        }),
      };
      for (const attack of o.attacks) {
        const { res, steps } = runners[attack]();
        record(attack, steps, res);
        if (attack === exampleAttack) collectExamples(attack, res);
        if (attack === "pgd" && moreStepsEps.get(normName) === eps) {
          moreStepsAttacks.push(row("pgd", normName, eps, o.moreSteps, pgdRun(o.moreSteps)));
          progress(`pgd ${normName} eps=${eps.toPrecision(3)} ${o.moreSteps} steps`);
        }
        if (attack === "pgd" && targeted && eps > 0) {
          const t = evaluate(
            (x, s) =>
              pgd(lossFor(s, x.shape[0], true), x, {
                eps: budget,
                norm: normName,
                steps: o.pgdSteps,
                stepSize: (o.stepSizeFactor * budget) / o.pgdSteps,
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
            norm: normName,
            eps,
            appliedEps: budget,
            steps: o.pgdSteps,
            successRate: success / m,
            targetCosine: mean(Array.from(t.cos)),
            cleanTargetCosine: mean(Array.from(cleanTarget.cos)),
            top1: hits / m,
          });
          progress(`targeted pgd ${normName} eps=${eps.toPrecision(3)}`);
        }
      }
      if (o.attacks.length > 1) attacks.push(rowOf("worst-case", normName, eps, 0, robust, lowestCos, worst));
    });
  });
  return {
    attackClean: { top1: cleanTop1, matchCosine: cleanCos, n: m },
    attacks,
    moreStepsAttacks,
    targetedAttacks,
    sanity: sanityChecks(cleanTop1, attacks, moreStepsAttacks, o.tolerance),
    examples,
  };
}

/** The sanity checks over the attack rows (see the module comment of audit.ts). */
export function sanityChecks(cleanTop1: number, attacks: AttackRow[], moreSteps: AttackRow[], tolerance: number): SanityChecks {
  const check = (details: SanityCheck["details"]): SanityCheck => ({ pass: details.every((d) => d.pass), details });
  const eps0 = attacks
    .filter((a) => a.eps === 0)
    .map((a) => ({ label: `${a.attack} ${a.norm} eps=0`, values: { top1: a.top1, clean: cleanTop1 }, pass: a.top1 === cleanTop1 }));
  const stronger = (attack: AttackRow["attack"], than: AttackRow["attack"]) =>
    attacks
      .filter((a) => a.attack === attack && a.eps > 0)
      .flatMap((p) => {
        const f = attacks.find((a) => a.attack === than && a.norm === p.norm && a.eps === p.eps);
        if (!f) return [];
        const key = (name: string) => name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
        const label = than === "fgsm" ? `${p.norm} eps=${p.eps}` : `${attack} ${p.norm} eps=${p.eps}`;
        return [{ label, values: { [key(attack)]: p.top1, [key(than)]: f.top1 }, pass: p.top1 <= f.top1 + tolerance }];
      });
  const monotone: SanityCheck["details"] = [];
  for (const attack of ["fgsm", "pgd", "apgd-ce", "apgd-t", "worst-case"] as const) {
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
    pgdAtLeastFgsm: check(stronger("pgd", "fgsm")),
    apgdAtLeastPgd: check([...stronger("apgd-ce", "pgd"), ...stronger("apgd-t", "pgd")]),
    monotoneInEps: check(monotone),
    moreStepsNoHelp: check(more),
    tolerance,
  };
}
