/**
 * Learning-rate schedule: linear warm-up, then cosine decay to zero, as open_clip's `cosine_lr`
 * (https://github.com/mlfoundations/open_clip/blob/main/src/open_clip_train/scheduler.py),
 * from SGDR (Loshchilov & Hutter 2016, https://arxiv.org/abs/1608.03983).
 */

export interface ScheduleConfig {
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
}

export function validateSchedule(cfg: ScheduleConfig): ScheduleConfig {
  const { baseLr, warmupSteps, totalSteps } = cfg;
  if (!(baseLr > 0) || !Number.isFinite(baseLr)) throw new Error(`schedule: baseLr must be a positive number, got ${baseLr}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new Error(`schedule: warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new Error(`schedule: totalSteps must be a positive integer, got ${totalSteps}`);
  return cfg;
}

/** The learning rate for 0-based `step`. Past `totalSteps` it stays at zero. */
export function cosineLr(step: number, cfg: ScheduleConfig): number {
  const { baseLr, warmupSteps, totalSteps } = cfg;
  if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
  const decaySteps = totalSteps - warmupSteps;
  if (decaySteps <= 0) return baseLr;
  const progress = Math.min(1, (step - warmupSteps) / decaySteps);
  return 0.5 * (1 + Math.cos(Math.PI * progress)) * baseLr;
}
