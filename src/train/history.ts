/**
 * The training history of a run directory: the step records of metrics.arrow and the evaluations
 * of eval.arrow (src/train/run_state.ts), as `trainingCurves` (src/viz/training_curves.ts) plots
 * them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { EvalRecord, StepRecord } from "./run_state";
import { EVAL_FILE, METRICS_FILE, readStepRecords } from "./run_state";
import { readArrowFile } from "../io/arrow";

export interface TrainingHistory {
  steps: StepRecord[];
  evals: EvalRecord[];
}

const EVAL_COLUMNS: (keyof EvalRecord)[] = [
  "epoch", "step", "zeroShotTop1", "zeroShotTop5", "recallAt1ImageToText", "recallAt1TextToImage", "recallAt5ImageToText", "recallAt5TextToImage", "trainSeconds",
];

/** The step and evaluation records of a run directory ([] for a file that is not there). */
export function readTrainingHistory(runDir: string): TrainingHistory {
  if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) throw new Error(`readTrainingHistory: ${runDir} is not a directory`);
  const steps = readStepRecords(runDir);
  const file = path.join(runDir, EVAL_FILE);
  const evals: EvalRecord[] = [];
  if (fs.existsSync(file)) {
    const t = readArrowFile(file);
    const cols = EVAL_COLUMNS.map((name) => {
      const col = t.getChild(name);
      if (!col) throw new Error(`readTrainingHistory: ${file} has no column ${name}`);
      return Array.from(col.toArray() as ArrayLike<number>, Number);
    });
    for (let i = 0; i < t.numRows; i++) {
      const r = {} as Record<keyof EvalRecord, number>;
      EVAL_COLUMNS.forEach((k, j) => (r[k] = cols[j][i]));
      evals.push(r as EvalRecord);
    }
  }
  return { steps, evals };
}

/** Whether a run directory holds training records (metrics.arrow). */
export function hasTrainingHistory(runDir: string): boolean {
  return fs.existsSync(path.join(runDir, METRICS_FILE));
}
