/**
 * AdamW (Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101): Adam with weight decay
 * decoupled from the gradient, in PyTorch's exact form (`torch.optim.AdamW`: decay
 * `p *= 1 - lr * wd`, then `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`).
 * Moments are tf.Variables next to the weights; the state round-trips through plain arrays so
 * checkpoints resume exactly.
 *
 * Row-sparse parameters (the token embedding: 49,408 rows, of which a caption set uses ~100) are
 * updated only on the rows that have ever had a gradient. That is exact, not an approximation:
 * a row whose gradients were all zero has m = v = 0, so its AdamW step is 0 / (0 + eps) = 0, and
 * without weight decay (never applied to embeddings) it does not move. The rows' moments live in
 * compact [rows, D] variables; each step gathers the weight rows, applies the same elementwise
 * formula as the dense path and scatters them back, so the result is bit-for-bit the dense one.
 *
 * With cliplab's fused C kernels active (src/backend/fused_adamw.ts) the dense parameters are
 * updated in place, one call per parameter, with the same float operations in the same order (so
 * the same bits) and no concat/split; the gradient norm for clipping is then summed in double.
 */
import * as tf from "@tensorflow/tfjs";
import { fusedAdamWActive, fusedAdamWRows, fusedAdamWStep, fusedSumSquares, fusedSumSquaresRows } from "../backend/fused_adamw";

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.1 };

export interface AdamWParam {
  name: string;
  variable: tf.Variable;
  /** Whether weight decay applies (open_clip: matrices only, never gains, biases, embeddings or the temperature). */
  decay: boolean;
  /**
   * Update only the rows (first axis) that have had a gradient (see the file header); needs
   * `decay: false`. The rows of each step come from `apply`'s `rows` argument or, when absent,
   * from the gradient's non-zero rows.
   */
  sparseRows?: boolean;
}

/** Moments of a row-sparse parameter: the touched rows (in first-touch order) and their m, v [rows, D]. */
interface SparseSlot {
  rows: number[];
  index: Set<number>;
  m: tf.Tensor2D | undefined;
  v: tf.Tensor2D | undefined;
}

export interface AdamWState {
  step: number;
  /** First and second moments by parameter name, in the variables' own layout. */
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export function validateAdamW(cfg: Partial<AdamWConfig>): AdamWConfig {
  const c = { ...ADAMW_DEFAULTS, ...cfg };
  const inUnit = (k: "beta1" | "beta2") => {
    if (!(c[k] >= 0 && c[k] < 1)) throw new Error(`adamw: ${k} must be in [0, 1), got ${c[k]}`);
  };
  inUnit("beta1");
  inUnit("beta2");
  if (!(c.eps > 0)) throw new Error(`adamw: eps must be > 0, got ${c.eps}`);
  if (!(c.weightDecay >= 0)) throw new Error(`adamw: weightDecay must be >= 0, got ${c.weightDecay}`);
  return c;
}

/** Dense parameters updated together: one parameter, or (fused) all with the same decay flag, flattened. */
interface DenseGroup {
  params: AdamWParam[];
  decay: boolean;
  /** Element counts of the params, in order. */
  sizes: number[];
  /** Moments: the parameter's shape for a single parameter, [sum of sizes] for a fused group. */
  m: tf.Variable;
  v: tf.Variable;
}

export interface AdamWOptions {
  /**
   * Update all dense parameters with the same decay flag as one flat vector (a concat, ~13
   * elementwise kernels, a split) instead of ~13 kernels per parameter. The arithmetic per
   * element is the same, so the result is bit-for-bit the unfused one; it saves ~1,000 kernel
   * launches per step for a CLIP with ~90 tensors. Every gradient must then be given to `apply`.
   */
  fuse?: boolean;
}

export class AdamW {
  readonly config: AdamWConfig;
  private readonly params: AdamWParam[];
  private readonly groups: DenseGroup[] = [];
  private readonly sparse = new Map<string, SparseSlot>();
  private stepCount = 0;

  constructor(params: AdamWParam[], config: Partial<AdamWConfig> = {}, options: AdamWOptions = {}) {
    this.config = validateAdamW(config);
    this.params = params;
    const dense: AdamWParam[] = [];
    for (const p of params) {
      if (p.sparseRows) {
        if (p.decay) throw new Error(`adamw: ${p.name} cannot be sparseRows with weight decay (decay moves every row)`);
        if (p.variable.rank < 1) throw new Error(`adamw: ${p.name} must have rows (rank >= 1) to be sparseRows, got shape [${p.variable.shape}]`);
        this.sparse.set(p.name, { rows: [], index: new Set(), m: undefined, v: undefined });
      } else {
        dense.push(p);
      }
    }
    const parts = options.fuse ? [true, false].map((d) => dense.filter((p) => p.decay === d)).filter((g) => g.length > 0) : dense.map((p) => [p]);
    for (const ps of parts) {
      const sizes = ps.map((p) => p.variable.size);
      const total = sizes.reduce((a, b) => a + b, 0);
      const zeros = () => tf.tidy(() => tf.variable(ps.length === 1 ? tf.zerosLike(ps[0].variable) : tf.zeros([total]), false));
      this.groups.push({ params: ps, decay: ps[0].decay, sizes, m: zeros(), v: zeros() });
    }
  }

  get step(): number {
    return this.stepCount;
  }

  /**
   * One update with learning rate `lr`; `grads` by parameter name (missing ones are skipped,
   * except in a fused group, where that is an error). `rows`: for row-sparse parameters, rows that
   * may have a non-zero gradient this step (a superset is fine: a zero-gradient row never touched
   * before stays exactly where it is).
   */
  apply(grads: Record<string, tf.Tensor>, lr: number, rows: Record<string, ArrayLike<number>> = {}): void {
    this.update(grads, lr, rows, null);
  }

  /**
   * Global-norm gradient clipping fused with the update: the norm over every gradient (for
   * row-sparse parameters over the step's rows, where all their non-zero values are), then, if it
   * exceeds `maxNorm`, every gradient scaled by maxNorm / (norm + 1e-6) as `clipGradNorm` does, then
   * the update. Returns the norm before clipping; when it is not finite nothing is updated.
   */
  clipAndApply(grads: Record<string, tf.Tensor>, lr: number, maxNorm: number, rows: Record<string, ArrayLike<number>> = {}): number {
    return this.update(grads, lr, rows, maxNorm);
  }

  private update(grads: Record<string, tf.Tensor>, lr: number, rows: Record<string, ArrayLike<number>>, maxNorm: number | null): number {
    if (fusedAdamWActive()) return this.updateInPlace(grads, lr, rows, maxNorm);
    const { beta1, beta2, eps, weightDecay } = this.config;
    return tf.tidy(() => {
      // Gradients per dense group (flattened when fused) and row candidates per sparse parameter.
      const flat = new Map<DenseGroup, tf.Tensor>();
      for (const group of this.groups) {
        const gs = group.params.map((p) => grads[p.name]);
        if (group.params.length === 1) {
          if (gs[0]) flat.set(group, gs[0]);
          continue;
        }
        const missing = group.params.filter((_, i) => !gs[i]).map((p) => p.name);
        if (missing.length) throw new Error(`adamw: no gradient for ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ` (+${missing.length - 3} more)` : ""} (a fused optimizer needs every gradient)`);
        flat.set(group, tf.concat(gs.map((g) => tf.reshape(g, [-1])))); // [total]
      }
      const stepRows = new Map<string, ArrayLike<number>>();
      for (const p of this.params) if (this.sparse.has(p.name) && grads[p.name]) stepRows.set(p.name, rows[p.name] ?? nonZeroRows(grads[p.name]));

      let norm = NaN;
      let scale = 1;
      if (maxNorm !== null) {
        const squares: tf.Scalar[] = [...flat.values()].map((g) => tf.sum(tf.square(g)));
        for (const [name, r] of stepRows) {
          const g = grads[name];
          if (r.length) squares.push(tf.sum(tf.square(tf.gather(tf.reshape(g, [g.shape[0], -1]), tf.tensor1d(Array.from(r), "int32")))));
        }
        norm = squares.length ? Math.sqrt(tf.addN(squares).dataSync()[0]) : 0;
        if (!Number.isFinite(norm)) return norm;
        if (norm > maxNorm) scale = maxNorm / (norm + 1e-6);
      }

      this.stepCount += 1;
      const t = this.stepCount;
      const stepSize = lr / (1 - beta1 ** t);
      const sqrtBias2 = Math.sqrt(1 - beta2 ** t);
      for (const [group, g0] of flat) {
        const g = scale !== 1 ? tf.mul(g0, scale) : g0;
        const { m, v } = group;
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(mNew);
        v.assign(vNew);
        const single = group.params.length === 1;
        const current = single ? group.params[0].variable : tf.concat(group.params.map((p) => tf.reshape(p.variable, [-1]))); // [total]
        const decayed = group.decay && weightDecay > 0 ? tf.mul(current, 1 - lr * weightDecay) : current;
        const denom = tf.add(tf.div(tf.sqrt(vNew), sqrtBias2), eps);
        const next = tf.sub(decayed, tf.mul(tf.div(mNew, denom), stepSize));
        if (single) {
          group.params[0].variable.assign(next);
        } else {
          tf.split(next, group.sizes).forEach((piece, i) => group.params[i].variable.assign(tf.reshape(piece, group.params[i].variable.shape)));
        }
      }
      for (const p of this.params) {
        const slot = this.sparse.get(p.name);
        if (slot && grads[p.name]) this.applySparse(p, slot, grads[p.name], stepRows.get(p.name)!, stepSize, sqrtBias2, scale);
      }
      return norm;
    });
  }

  /** `update` on the fused C kernels: dense parameters in place (see the file header). */
  private updateInPlace(grads: Record<string, tf.Tensor>, lr: number, rows: Record<string, ArrayLike<number>>, maxNorm: number | null): number {
    const { beta1, beta2, eps, weightDecay } = this.config;
    return tf.tidy(() => {
      for (const group of this.groups) {
        if (group.params.length === 1) continue;
        const missing = group.params.filter((p) => !grads[p.name]).map((p) => p.name);
        if (missing.length) throw new Error(`adamw: no gradient for ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ` (+${missing.length - 3} more)` : ""} (a fused optimizer needs every gradient)`);
      }
      const stepRows = new Map<string, ArrayLike<number>>();
      for (const p of this.params) if (this.sparse.has(p.name) && grads[p.name]) stepRows.set(p.name, rows[p.name] ?? nonZeroRows(grads[p.name]));
      for (const p of this.params) {
        const r = stepRows.get(p.name);
        const numRows = p.variable.shape[0];
        if (r) for (let i = 0; i < r.length; i++) if (!Number.isInteger(r[i]) || r[i] < 0 || r[i] >= numRows) throw new RangeError(`adamw: row ${r[i]} of ${p.name} is outside [0, ${numRows})`);
      }
      let norm = NaN;
      let scale = 1;
      if (maxNorm !== null) {
        let sum = 0;
        for (const group of this.groups) for (const p of group.params) if (grads[p.name]) sum += fusedSumSquares(grads[p.name]);
        for (const [name, r] of stepRows) sum += fusedSumSquaresRows(grads[name], r);
        norm = Math.sqrt(sum);
        if (!Number.isFinite(norm)) return norm;
        if (norm > maxNorm) scale = maxNorm / (norm + 1e-6);
      }
      this.stepCount += 1;
      const t = this.stepCount;
      const stepSize = lr / (1 - beta1 ** t);
      const sqrtBias2 = Math.sqrt(1 - beta2 ** t);
      for (const group of this.groups) {
        const decay = group.decay && weightDecay > 0 ? 1 - lr * weightDecay : 1;
        let offset = 0;
        group.params.forEach((p, i) => {
          const g = grads[p.name];
          if (g) fusedAdamWStep(p.variable, group.m, group.v, offset, g, { beta1, beta2, eps, decay, stepSize, sqrtBias2, gradScale: scale });
          offset += group.sizes[i];
        });
      }
      for (const p of this.params) {
        const slot = this.sparse.get(p.name);
        if (!slot || !grads[p.name]) continue;
        this.touchRows(p, slot, stepRows.get(p.name)!);
        if (slot.rows.length) fusedAdamWRows(p.variable, slot.m!, slot.v!, grads[p.name], slot.rows, { beta1, beta2, eps, decay: 1, stepSize, sqrtBias2, gradScale: scale });
      }
      return norm;
    });
  }

  /** Adds the candidate rows never touched before to the slot (zero moments). */
  private touchRows(p: AdamWParam, slot: SparseSlot, candidates: ArrayLike<number>): void {
    const numRows = p.variable.shape[0];
    const rowSize = p.variable.size / numRows;
    const fresh: number[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const r = candidates[i];
      if (!Number.isInteger(r) || r < 0 || r >= numRows) throw new RangeError(`adamw: row ${r} of ${p.name} is outside [0, ${numRows})`);
      if (!slot.index.has(r)) {
        slot.index.add(r);
        fresh.push(r);
      }
    }
    if (fresh.length) {
      slot.rows.push(...fresh);
      const grow = (old: tf.Tensor2D | undefined) => {
        const zeros = tf.zeros([fresh.length, rowSize]) as tf.Tensor2D;
        return tf.keep(old ? (tf.concat([old, zeros], 0) as tf.Tensor2D) : zeros);
      };
      const [m0, v0] = [slot.m, slot.v];
      slot.m = grow(m0);
      slot.v = grow(v0);
      m0?.dispose();
      v0?.dispose();
    }
  }

  /** The row-sparse update: the dense formula on the gathered rows ever touched (inside apply's tidy). */
  private applySparse(p: AdamWParam, slot: SparseSlot, g: tf.Tensor, candidates: ArrayLike<number>, stepSize: number, sqrtBias2: number, scale: number): void {
    const { beta1, beta2, eps } = this.config;
    this.touchRows(p, slot, candidates);
    if (!slot.rows.length) return;
    const numRows = p.variable.shape[0];
    const rowSize = p.variable.size / numRows;
    const idx = tf.tensor1d(slot.rows, "int32"); // [S]
    const g2 = tf.reshape(g, [numRows, rowSize]); // [V, D]
    const gathered = tf.gather(g2, idx); // [S, D]
    const gS = scale !== 1 ? tf.mul(gathered, scale) : gathered;
    const m = slot.m!;
    const v = slot.v!;
    const mNew = tf.add(tf.mul(m, beta1), tf.mul(gS, 1 - beta1)) as tf.Tensor2D; // [S, D]
    const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(gS), 1 - beta2)) as tf.Tensor2D;
    slot.m = tf.keep(mNew);
    slot.v = tf.keep(vNew);
    m.dispose();
    v.dispose();
    const pS = tf.gather(tf.reshape(p.variable, [numRows, rowSize]), idx); // [S, D]
    const denom = tf.add(tf.div(tf.sqrt(vNew), sqrtBias2), eps);
    const updated = tf.sub(pS, tf.mul(tf.div(mNew, denom), stepSize)); // [S, D]
    const scattered = tf.tensorScatterUpdate(tf.reshape(p.variable, [numRows, rowSize]), tf.reshape(idx, [-1, 1]), updated); // [V, D]
    p.variable.assign(tf.reshape(scattered, p.variable.shape));
  }

  /** Rows ever updated of a row-sparse parameter (first-touch order); undefined for a dense one. */
  sparseRowsOf(name: string): readonly number[] | undefined {
    return this.sparse.get(name)?.rows;
  }

  getState(): AdamWState {
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const group of this.groups) {
      for (const [target, moments] of [[m, group.m], [v, group.v]] as const) {
        const data = moments.dataSync() as Float32Array;
        let offset = 0;
        group.params.forEach((p, i) => {
          target.set(p.name, data.slice(offset, offset + group.sizes[i]));
          offset += group.sizes[i];
        });
      }
    }
    for (const p of this.params) {
      const slot = this.sparse.get(p.name);
      if (!slot) continue;
      // Checkpoints hold dense moments (rows never touched are 0), whatever the layout here.
      const rowSize = p.variable.size / p.variable.shape[0];
      for (const [target, compact] of [[m, slot.m], [v, slot.v]] as const) {
        const dense = new Float32Array(p.variable.size);
        if (compact) {
          const data = compact.dataSync() as Float32Array;
          slot.rows.forEach((r, i) => dense.set(data.subarray(i * rowSize, (i + 1) * rowSize), r * rowSize));
        }
        target.set(p.name, dense);
      }
    }
    return { step: this.stepCount, m, v };
  }

  setState(state: AdamWState): void {
    for (const p of this.params) {
      for (const kind of ["m", "v"] as const) {
        const data = state[kind].get(p.name);
        if (!data) throw new Error(`optimizer state has no ${kind} for ${p.name}`);
        if (data.length !== p.variable.size) {
          throw new Error(`optimizer state ${kind} for ${p.name} has ${data.length} values, expected ${p.variable.size}`);
        }
      }
    }
    for (const p of this.params) {
      const slot = this.sparse.get(p.name);
      if (slot) this.restoreSparse(p, slot, state.m.get(p.name)!, state.v.get(p.name)!);
    }
    for (const group of this.groups) {
      for (const [moments, src] of [[group.m, state.m], [group.v, state.v]] as const) {
        const data = new Float32Array(moments.size);
        let offset = 0;
        group.params.forEach((p, i) => {
          data.set(src.get(p.name)!, offset);
          offset += group.sizes[i];
        });
        tf.tidy(() => moments.assign(tf.tensor(data, moments.shape, "float32")));
      }
    }
    this.stepCount = state.step;
  }

  /** Touched rows are those with any non-zero moment; the others are exactly untouched rows. */
  private restoreSparse(p: AdamWParam, slot: SparseSlot, m: Float32Array, v: Float32Array): void {
    const numRows = p.variable.shape[0];
    const rowSize = p.variable.size / numRows;
    const rows: number[] = [];
    for (let r = 0; r < numRows; r++) {
      for (let k = r * rowSize; k < (r + 1) * rowSize; k++) {
        if (m[k] !== 0 || v[k] !== 0) {
          rows.push(r);
          break;
        }
      }
    }
    const pick = (src: Float32Array) => {
      const out = new Float32Array(rows.length * rowSize);
      rows.forEach((r, i) => out.set(src.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
      return rows.length ? tf.tensor2d(out, [rows.length, rowSize]) : undefined;
    };
    slot.m?.dispose();
    slot.v?.dispose();
    slot.rows = rows;
    slot.index = new Set(rows);
    slot.m = pick(m);
    slot.v = pick(v);
  }

  dispose(): void {
    for (const g of this.groups) tf.dispose([g.m, g.v]);
    for (const slot of this.sparse.values()) tf.dispose([slot.m, slot.v].filter((t): t is tf.Tensor2D => t !== undefined));
  }
}

/** Indices of the rows (first axis) of `g` holding any non-zero value. */
function nonZeroRows(g: tf.Tensor): number[] {
  const flags = tf.tidy(() => tf.any(tf.notEqual(tf.reshape(g, [g.shape[0], -1]), 0), 1).dataSync());
  const rows: number[] = [];
  for (let i = 0; i < flags.length; i++) if (flags[i]) rows.push(i);
  return rows;
}

/**
 * open_clip's rule for weight decay (matrices and conv kernels only: gains, biases and the
 * temperature are 0-d or 1-d), with embeddings also excluded.
 */
export function decaysWeight(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && !name.includes("embedding");
}

/** Rescales all gradients so their global L2 norm is at most `maxNorm`; returns the norm before clipping. */
export function clipGradNorm(grads: Record<string, tf.Tensor>, maxNorm: number): { norm: number; clipped: Record<string, tf.Tensor> } {
  const names = Object.keys(grads);
  const norm = tf.tidy(() => {
    const squares = names.map((n) => tf.sum(tf.square(grads[n])));
    return Math.sqrt(tf.addN(squares).dataSync()[0]);
  });
  if (!(norm > maxNorm) || !Number.isFinite(norm)) return { norm, clipped: grads };
  const scale = maxNorm / (norm + 1e-6);
  const clipped: Record<string, tf.Tensor> = {};
  for (const n of names) {
    clipped[n] = tf.mul(grads[n], scale);
    grads[n].dispose();
  }
  return { norm, clipped };
}
