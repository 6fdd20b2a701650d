/**
 * `stats` namespace of the public API (`cl.stats.wilsonInterval(k, n)`): bootstrap intervals,
 * permutation tests, binomial intervals and classification metrics (calibration included).
 */
export { bootstrapMean, bootstrapCi } from "../eval/bootstrap";
export type { BootstrapOptions } from "../eval/bootstrap";
export { permutationTest } from "../audit/fairness/permutation";
export type { PermutationOptions, PermutationResult } from "../audit/fairness/permutation";
export { wilsonInterval } from "../eval/intervals";
export type { Estimate, Interval } from "../eval/intervals";
export { classificationMetrics, expectedCalibrationError, fitLogitScale, softmaxRows } from "../eval/classifier_metrics";
export type { ClassificationMetrics, ReliabilityBin, MetricsOptions } from "../eval/classifier_metrics";
