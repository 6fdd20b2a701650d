/**
 * `stats` namespace of the public API (`cl.stats.wilsonInterval(k, n)`): bootstrap intervals,
 * permutation tests, binomial intervals and classification metrics (calibration included).
 */
export { bootstrapMean } from "../eval/bootstrap";
export type { BootstrapInterval } from "../eval/bootstrap";
export { bootstrapCi, permutationTest } from "../audit/fairness/bootstrap";
export type { Estimate, BootstrapOptions, PermutationOptions, PermutationResult } from "../audit/fairness/bootstrap";
export { wilsonInterval } from "../viz/bar_ci";
export type { Interval } from "../viz/bar_ci";
export { classificationMetrics, expectedCalibrationError, fitLogitScale, softmaxRows } from "../eval/classifier_metrics";
export type { ClassificationMetrics, ReliabilityBin, MetricsOptions } from "../eval/classifier_metrics";
