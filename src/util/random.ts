/**
 * Seeded random numbers, so that model initialisation, batching and augmentation reproduce
 * exactly on every backend (tfjs's own seeded ops differ between backends).
 */

/** mulberry32's output for a state (the state itself steps by 0x6d2b79f5). */
function mulberryOutput(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** A 32-bit generator (mulberry32): small, fast, and good enough for initialisation and shuffling. */
export class Random {
  private state: number;
  private spareNormal: number | undefined;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
    this.state = Math.floor(seed) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    return mulberryOutput(this.state);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * `mean + std * normal()` for each element in order, bit for bit, with the generator inlined
   * (no per-value call or boxed spare): 1.7x faster, and drawing normals is most of the time
   * `Clip.create` takes for a real-size model (ViT-L-14 draws 427M of them).
   */
  fillNormal(out: Float32Array, std = 1, mean = 0): Float32Array {
    const n = out.length;
    let i = 0;
    if (n > 0 && this.spareNormal !== undefined) {
      out[i++] = mean + std * this.spareNormal;
      this.spareNormal = undefined;
    }
    let state = this.state;
    while (i < n) {
      // Two draws of next() (u never 0), exactly as normal() makes them.
      let u = 0;
      while (u === 0) {
        state = (state + 0x6d2b79f5) >>> 0;
        u = mulberryOutput(state);
      }
      state = (state + 0x6d2b79f5) >>> 0;
      const v = mulberryOutput(state);
      const r = Math.sqrt(-2 * Math.log(u));
      out[i++] = mean + std * (r * Math.cos(2 * Math.PI * v));
      const second = r * Math.sin(2 * Math.PI * v);
      if (i < n) out[i++] = mean + std * second;
      else this.spareNormal = second;
    }
    this.state = state;
    return out;
  }

  fillUniform(out: Float32Array, low: number, high: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * this.next();
    return out;
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[] | Int32Array): typeof items {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** Fisher-Yates shuffle in place within each block of indices (items move only inside their block). */
  shuffleWithin<T>(items: T[] | Int32Array, blocks: readonly Int32Array[]): typeof items {
    for (const b of blocks) {
      for (let i = b.length - 1; i > 0; i--) {
        const j = this.int(i + 1);
        const tmp = items[b[i]];
        items[b[i]] = items[b[j]];
        items[b[j]] = tmp;
      }
    }
    return items;
  }

  /** A child generator whose stream does not overlap this one's in practice. */
  fork(): Random {
    return new Random(Math.floor(this.next() * 4294967296) ^ 0x9e3779b9);
  }
}

/** A 32-bit hash of a few integers (murmur3's finaliser applied after each), for seeding. */
export function mixSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    if (!Number.isFinite(p)) throw new RangeError(`mixSeed: parts must be finite numbers, got ${p}`);
    // Integers up to 2^53: both 32-bit halves take part.
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    for (const word of [lo, hi]) {
      h = Math.imul(h ^ word, 0x9e3779b1) >>> 0;
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b) >>> 0;
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35) >>> 0;
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}
