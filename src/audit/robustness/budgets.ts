/**
 * Attack budgets and batch sizes at the model's input size.
 *
 * L2 budgets are given for a reference input of 3x32x32 = 3072 values, RobustBench's CIFAR-10 L2
 * convention (Croce et al. 2021, https://arxiv.org/abs/2010.09670, eps = 0.5 there). The audit
 * attacks inputs of d = S*S*3 values and applies eps * sqrt(d / 3072): the same root-mean-square
 * change per value (||delta||_2 / sqrt(d)) whatever the resolution, so a budget means the same
 * visible strength at 32 px and at 224 px (where it is 7x the nominal number). L-inf budgets are
 * per value and apply as given.
 *
 * Attack batches: the backward pass keeps every layer's activations, so an attack batch is the
 * batched encoder's forward batch for the memory budget divided by (layers + 1).
 */
import { DEFAULT_MEMORY_BUDGET, batchSizes } from "../../eval/encode";
import type { ClipConfig } from "../../model/config";
import type { AttackNorm } from "./attacks";

/** Values of the reference input the L2 budgets are given for: 3 x 32 x 32. */
export const L2_REFERENCE_VALUES = 3 * 32 * 32;

/** sqrt(inputValues / 3072): the factor nominal L2 budgets are multiplied by. */
export function l2Scale(inputValues: number): number {
  if (!Number.isInteger(inputValues) || inputValues < 1) throw new RangeError(`l2Scale: inputValues must be a positive integer, got ${inputValues}`);
  return Math.sqrt(inputValues / L2_REFERENCE_VALUES);
}

/** The budget applied to an input of `inputValues` values: L-inf as given, L2 scaled. */
export function appliedEps(norm: AttackNorm, eps: number, inputValues: number): number {
  return norm === "l2" ? eps * l2Scale(inputValues) : eps;
}

/** Images per attack batch: `given`, else the encoder's forward batch for the budget / (layers + 1). */
export function attackBatchSize(config: ClipConfig, given?: number): number {
  if (given !== undefined) return given;
  const v = config.vision_cfg.layers;
  const layers = Array.isArray(v) ? v.reduce((a, b) => a + b, 0) : v;
  return batchSizes(config, DEFAULT_MEMORY_BUDGET / (layers + 1)).images;
}
