/**
 * Regenerates attribute_thresholds.json: the per-class medians of the pixel measurements in
 * src/data/captions.ts over the Fashion-MNIST training split. Run once (the result is committed):
 *
 *   node --import tsx datasets/fashion-mnist/make_attribute_thresholds.ts [--data-dir DIR]
 */
import * as fs from "node:fs";
import { DEFAULT_ATTRIBUTE_THRESHOLDS_FILE, attributeThresholdsToJson, computeAttributeThresholds } from "../../src/data/captions";
import { loadFashionMnist } from "../../src/data/fashion_mnist";

const i = process.argv.indexOf("--data-dir");
const dataDir = i >= 0 ? process.argv[i + 1] : undefined;
const train = loadFashionMnist("train", { dataDir });
const thresholds = computeAttributeThresholds(train);
const source = `median per class over the Fashion-MNIST train split (${train.count} images); made by datasets/fashion-mnist/make_attribute_thresholds.ts`;
fs.writeFileSync(DEFAULT_ATTRIBUTE_THRESHOLDS_FILE, attributeThresholdsToJson(thresholds, source));
console.log(`wrote ${DEFAULT_ATTRIBUTE_THRESHOLDS_FILE}`);
