/**
 * Gradient checkpointing (Chen et al. 2016, https://arxiv.org/abs/1604.06174), as open_clip's
 * `--grad-checkpointing` does per transformer block: under a gradient tape a checkpointed block
 * keeps only its input; its activations are recomputed from that input in the backward pass.
 * Memory for a tower falls from every block's activations to one block's (plus the block inputs),
 * for about one more forward pass.
 *
 * tfjs has no checkpoint op, so a block becomes one `tf.customGrad` op whose inputs are the block
 * input and the block's weights, whose forward runs untaped (customGrad runs it as a kernel) and
 * whose gradient re-runs the block under a fresh tape (`tf.grads`). tfjs keeps a single active tape
 * and starts a new one when no gradient is being recorded, which is the case during the outer
 * backward pass: the outer tape is put back after the inner gradient, so both stay intact.
 */
import * as tf from "@tensorflow/tfjs";
import type { Weights } from "./layers";

let depth = 0;

/** Runs `fn` with checkpointing on when `on` (encoders check `gradCheckpointingActive`). */
export function withGradCheckpointing<T>(on: boolean, fn: () => T): T {
  if (!on) return fn();
  depth += 1;
  try {
    return fn();
  } finally {
    depth -= 1;
  }
}

/** Whether blocks should be checkpointed now: inside `withGradCheckpointing` and under a tape. */
export function gradCheckpointingActive(): boolean {
  return depth > 0 && tf.engine().isTapeOn();
}

interface EngineTape {
  state: { activeTape: unknown };
}

/**
 * `block(x, w)` as one op that keeps only `x` and the weights `names` for its gradient. Every
 * weight the block reads must be in `names` (a one-line error otherwise), since gradients flow to
 * the op's inputs only.
 */
export function checkpointed(
  x: tf.Tensor3D,
  w: Weights,
  names: readonly string[],
  block: (x: tf.Tensor3D, w: Weights) => tf.Tensor3D,
): tf.Tensor3D {
  const index = new Map(names.map((n, i) => [n, i]));
  const local = (ws: readonly tf.Tensor[]): Weights => (name) => {
    const i = index.get(name);
    if (i === undefined) throw new Error(`grad checkpointing: the block reads ${name}, which is not among its ${names.length} listed weights`);
    return ws[i];
  };
  const op = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const inputs = args as tf.Tensor[];
    save(inputs);
    const value = block(inputs[0] as tf.Tensor3D, local(inputs.slice(1)));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const engine = tf.engine() as unknown as EngineTape;
        const outer = engine.state.activeTape;
        try {
          const grads = tf.grads((...xs: tf.Tensor[]) => block(xs[0] as tf.Tensor3D, local(xs.slice(1))));
          return grads(saved, dy);
        } finally {
          engine.state.activeTape = outer;
        }
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, ...names.map((n) => w(n))) as tf.Tensor3D;
}
