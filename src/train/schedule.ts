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

/** The schedules open_clip's `--lr-scheduler` selects, after the same linear warm-up. */
export interface LrScheduleConfig extends ScheduleConfig {
  scheduler: "cosine" | "const" | "const-cooldown";
  /** const-cooldown: steps of cooldown at the end of `totalSteps`. */
  cooldownSteps?: number;
  /** const-cooldown: power of the decay (1: linear), open_clip's `--lr-cooldown-power`. */
  cooldownPower?: number;
  /** const-cooldown: the learning rate the cooldown ends at, open_clip's `--lr-cooldown-end`. */
  cooldownEnd?: number;
}

/**
 * The learning rate for 0-based `step`: `cosine` is `cosineLr`; `const` holds `baseLr` after the
 * warm-up; `const-cooldown` holds it until `totalSteps - cooldownSteps`, then decays as
 * `(1 - e / es) ^ power * (baseLr - end) + end` (open_clip's `const_lr_cooldown`), staying at `end` past the last step.
 */
export function learningRate(step: number, cfg: LrScheduleConfig): number {
  const { baseLr, warmupSteps, totalSteps } = cfg;
  if (cfg.scheduler === "cosine") return cosineLr(step, cfg);
  if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
  if (cfg.scheduler === "const") return baseLr;
  if (cfg.scheduler !== "const-cooldown") throw new Error(`schedule: scheduler must be one of cosine, const, const-cooldown, got ${JSON.stringify(cfg.scheduler)}`);
  const cooldown = cfg.cooldownSteps;
  if (!Number.isInteger(cooldown) || (cooldown as number) < 1) throw new Error(`schedule: const-cooldown needs cooldownSteps >= 1, got ${cooldown}`);
  const end = cfg.cooldownEnd ?? 0;
  const power = cfg.cooldownPower ?? 1;
  const start = totalSteps - (cooldown as number);
  if (step < start) return baseLr;
  const progress = Math.min(1, (step - start) / (totalSteps - start));
  return (1 - progress) ** power * (baseLr - end) + end;
}
