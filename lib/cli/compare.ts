// `mixt compare`: the paper's claim in small: a dense model and a Mixture-of-Transformers model of
// equal FLOPs per step (the same shape; MoT unties the weights by modality, so each token still
// uses one copy) trained on the same data and seed; per-modality loss curves as SVG and JSON, and
// the step at which MoT reaches the dense model's final loss, per modality.
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { PresetName } from '../model/config';
import { StepReport } from '../train/trainer';
import { fmt, intOption } from './common';
import { Series, lineChartsSvg, smooth } from './plot';
import { runTrain } from './train';

interface CompareOptions {
  preset: PresetName;
  steps?: number;
  device?: string;
  out: string;
  seed: number;
}

// First step where the smoothed curve is at or below `target`.
function reachStep(curve: [number, number][], target: number): number | null {
  for (const [x, y] of curve) if (y <= target) return x;
  return null;
}

export async function runCompare(o: CompareOptions): Promise<Record<string, unknown>> {
  const runs: Record<'dense' | 'mot', StepReport[]> = { dense: [], mot: [] };
  const times: Record<string, number> = {};
  for (const kind of ['dense', 'mot'] as const) {
    process.stderr.write(`mixt compare: training the ${kind} model\n`);
    const t0 = performance.now();
    const r = await runTrain({ preset: o.preset, blocks: kind, steps: o.steps, device: o.device, out: path.join(o.out, kind), seed: o.seed, quiet: true });
    times[kind] = (performance.now() - t0) / 1000;
    runs[kind] = r.history;
    r.model.dispose();
  }
  const names = runs.mot[0].modalities.map((m) => m.name);
  const curve = (h: StepReport[], m: number) => smooth(h.map((r) => [r.step, r.modalities[m].loss] as [number, number]), 0.1);
  const summary = names.map((name, m) => {
    const dense = curve(runs.dense, m), mot = curve(runs.mot, m);
    const denseFinal = dense[dense.length - 1][1], motFinal = mot[mot.length - 1][1];
    const at = reachStep(mot, denseFinal);
    return { modality: name, denseFinal, motFinal, motReachesDenseFinalAtStep: at, fractionOfSteps: at === null ? null : at / dense.length };
  });
  const panels = names.map((name, m) => ({
    title: `${name} loss`,
    series: [
      { label: 'dense', color: '#d62728', points: curve(runs.dense, m) },
      { label: 'MoT', color: '#1f77b4', points: curve(runs.mot, m) },
    ] as Series[],
  }));
  fs.mkdirSync(o.out, { recursive: true });
  const svg = path.join(o.out, 'compare.svg');
  fs.writeFileSync(svg, lineChartsSvg(panels, { xLabel: 'step', title: `dense vs Mixture-of-Transformers (${o.preset}, equal FLOPs per step)` }));
  const result = { preset: o.preset, steps: runs.mot.length, seconds: times, summary, svg };
  fs.writeFileSync(path.join(o.out, 'compare.json'), JSON.stringify({ ...result, curves: runs }, null, 1));
  for (const s of summary) {
    console.log(
      `${s.modality}: dense final ${fmt(s.denseFinal)}, MoT final ${fmt(s.motFinal)}; ` +
        (s.motReachesDenseFinalAtStep === null ? 'MoT did not reach the dense final loss' : `MoT reaches it at step ${s.motReachesDenseFinalAtStep} (${fmt(100 * s.fractionOfSteps!, 0)}% of the steps)`),
    );
  }
  console.log(`wall clock: dense ${fmt(times.dense, 1)} s, MoT ${fmt(times.mot, 1)} s; curves in ${svg}`);
  return result;
}

export function compareCommand(): Command {
  return new Command('compare')
    .description('train a dense and a MoT model of equal FLOPs per step on the same data; plot per-modality losses')
    .option('--preset <name>', 'tiny | small | medium', 'tiny')
    .option('--steps <n>', 'steps for each model', intOption('--steps'))
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N'")
    .option('--out <dir>', 'output directory', 'runs/compare')
    .option('--seed <n>', 'seed', intOption('--seed', 0), 1)
    .action(async (o: CompareOptions) => {
      await runCompare(o);
    });
}
