/**
 * Learning-rate schedules as transformers defines them: a multiplier λ(step) of the peak rate, used by LambdaLR
 * (the rate of optimizer step i, counting from 0, is lr·λ(i); the Trainer steps the scheduler after the optimizer).
 * see: transformers optimization.py (get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup,
 *      get_constant_schedule_with_warmup), TrainingArguments.get_warmup_steps
 */

/** The schedule names of transformers' `--lr_scheduler_type` that we implement. */
export type ScheduleType = "linear" | "cosine" | "constant" | "constant_with_warmup";
export const SCHEDULE_TYPES: readonly ScheduleType[] = ["linear", "cosine", "constant", "constant_with_warmup"];

/** TrainingArguments.get_warmup_steps: warmup_steps when > 0, else ceil(max_steps · warmup_ratio). */
export function warmupSteps(maxSteps: number, warmupRatio = 0, steps = 0): number {
  if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
    throw new RangeError(`Cannot schedule: warmup ratio ${warmupRatio} must be in [0, 1]`);
  }
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`Cannot schedule: warmup steps ${steps} invalid`);
  return steps > 0 ? steps : Math.ceil(maxSteps * warmupRatio);
}

/** λ(step) for `type` with `warmup` warmup steps out of `total` training steps (numCycles 0.5 for cosine). */
export function lrLambda(type: ScheduleType, step: number, warmup: number, total: number): number {
  if (type === "constant") return 1;
  if (step < warmup) return step / Math.max(1, warmup);
  switch (type) {
    case "constant_with_warmup":
      return 1;
    case "linear":
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case "cosine": {
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
    }
    default:
      throw new RangeError(`Cannot schedule: unknown scheduler type "${type}", expected one of ${SCHEDULE_TYPES}`);
  }
}
