// The options of a resumed run: the checkpoint's own (seed, batch, sequence length, schedule, ...)
// unless the caller overrides one explicitly; the overrides are listed so a front end can say so.
// A resumed run must have steps left: asking for no more steps than the checkpoint's is an error.
import { TRAIN_DEFAULTS, TrainOptions } from './trainer';

export interface ResumedOptions {
  options: TrainOptions;
  overridden: { name: keyof TrainOptions; value: unknown; saved: unknown }[];
}

export function resumedOptions(
  saved: Record<string, unknown>,
  fromStep: number,
  explicit: Partial<TrainOptions>,
  names: Partial<Record<keyof TrainOptions, string>> = {},
): ResumedOptions {
  const base = { ...TRAIN_DEFAULTS, ...saved } as TrainOptions;
  const options: TrainOptions = { ...base };
  const overridden: ResumedOptions['overridden'] = [];
  for (const [k, v] of Object.entries(explicit) as [keyof TrainOptions, unknown][]) {
    if (v === undefined) continue;
    (options as unknown as Record<string, unknown>)[k] = v;
    if (JSON.stringify(base[k]) !== JSON.stringify(v)) overridden.push({ name: k, value: v, saved: base[k] });
  }
  // a new peak learning rate keeps the saved schedule's floor ratio
  if (explicit.lr !== undefined && explicit.minLr === undefined && base.lr > 0) options.minLr = (base.minLr / base.lr) * explicit.lr;
  const steps = names.steps ?? 'steps';
  if (!(options.steps > fromStep)) {
    throw new RangeError(
      explicit.steps !== undefined
        ? `${steps} ${options.steps} is not beyond the checkpoint's step (${fromStep}): there is nothing to train; ask for more (e.g. ${steps} ${fromStep * 2})`
        : `the checkpoint's run is complete (step ${fromStep} of ${options.steps}); give ${steps} beyond ${fromStep} to continue it`,
    );
  }
  return { options, overridden };
}
