/**
 * AdamW (Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101): Adam with weight decay
 * decoupled from the gradient, in PyTorch's exact form (`torch.optim.AdamW`: decay
 * `p *= 1 - lr * wd`, then `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`).
 * Moments are tf.Variables next to the weights; the state round-trips through plain arrays so
 * checkpoints resume exactly.
 */
import * as tf from "@tensorflow/tfjs";

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

export class AdamW {
  readonly config: AdamWConfig;
  private readonly params: AdamWParam[];
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private stepCount = 0;

  constructor(params: AdamWParam[], config: Partial<AdamWConfig> = {}) {
    this.config = validateAdamW(config);
    this.params = params;
    for (const p of params) {
      this.m.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
      this.v.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
    }
  }

  get step(): number {
    return this.stepCount;
  }

  /** One update with learning rate `lr`; `grads` by parameter name (missing ones are skipped). */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    this.stepCount += 1;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const t = this.stepCount;
    const stepSize = lr / (1 - beta1 ** t);
    const sqrtBias2 = Math.sqrt(1 - beta2 ** t);
    tf.tidy(() => {
      for (const p of this.params) {
        const g = grads[p.name];
        if (!g) continue;
        const m = this.m.get(p.name)!;
        const v = this.v.get(p.name)!;
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(mNew);
        v.assign(vNew);
        const decayed = p.decay && weightDecay > 0 ? tf.mul(p.variable, 1 - lr * weightDecay) : p.variable;
        const denom = tf.add(tf.div(tf.sqrt(vNew), sqrtBias2), eps);
        p.variable.assign(tf.sub(decayed, tf.mul(tf.div(mNew, denom), stepSize)));
      }
    });
  }

  getState(): AdamWState {
    const read = (vars: Map<string, tf.Variable>) =>
      new Map([...vars].map(([name, t]) => [name, new Float32Array(t.dataSync() as Float32Array)]));
    return { step: this.stepCount, m: read(this.m), v: read(this.v) };
  }

  setState(state: AdamWState): void {
    for (const p of this.params) {
      for (const [kind, store, src] of [["m", this.m, state.m], ["v", this.v, state.v]] as const) {
        const data = src.get(p.name);
        if (!data) throw new Error(`optimizer state has no ${kind} for ${p.name}`);
        const target = store.get(p.name)!;
        if (data.length !== target.size) {
          throw new Error(`optimizer state ${kind} for ${p.name} has ${data.length} values, expected ${target.size}`);
        }
        tf.tidy(() => target.assign(tf.tensor(data, target.shape, "float32")));
      }
    }
    this.stepCount = state.step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
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
