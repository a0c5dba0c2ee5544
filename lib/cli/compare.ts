// `mixt compare`: the papers' claims in small, on the same data and seed: a dense model and a
// Mixture-of-Transformers model of equal FLOPs per step (the same shape; MoT unties the weights by
// modality, so each token still uses one copy), and with `--blocks ...,mod` a Mixture-of-Depths
// model (MoT blocks, every other one routed) as deep as the MoT model's FLOPs per step allow.
// Per-modality loss curves as SVG and JSON, the step at which each model reaches the others' final
// loss, and each model's FLOPs per step and measured step time beside the MoT model's.
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { ModelConfig, PRESETS, PresetName, flopsPerToken, modSettings, presetConfig } from '../model/config';
import { SHAPES_VOCAB } from '../train/data/shapes';
import { StepReport } from '../train/trainer';
import { fmt, intOption } from './common';
import { Series, lineChartsSvg, smooth } from './plot';
import { RUN_DEFAULTS, parseBlocks, runTrain } from './train';

type CompareKind = 'dense' | 'mot' | 'mod';
const KINDS: Record<CompareKind, { label: string; color: string }> = {
  dense: { label: 'dense', color: '#d62728' },
  mot: { label: 'MoT', color: '#1f77b4' },
  mod: { label: 'MoD', color: '#2ca02c' },
};

interface CompareOptions {
  preset: PresetName;
  blocks: string;
  steps?: number;
  device?: string;
  out: string;
  seed: number;
}

// The model of a kind: its block pattern and depth, and its FLOPs per token of a training step.
interface ModelPlan {
  kind: CompareKind;
  pattern: string;
  layers: number;
  flops: number;
}

function configOf(preset: PresetName, pattern: string, layers: number): ModelConfig {
  const vocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };
  return presetConfig(preset, vocab, parseBlocks(pattern, layers), { layers });
}

// dense and MoT: the preset's shape. MoD: 'mot,mod' at the greatest depth whose FLOPs per step do not
// exceed the MoT model's (a routed layer costs its capacity's share of a block), the MoD paper's
// isoFLOP comparison.
export function comparePlans(preset: PresetName, kinds: CompareKind[], seqLen: number): ModelPlan[] {
  const base = PRESETS[preset].layers;
  const flops = (pattern: string, layers: number) => flopsPerToken(configOf(preset, pattern, layers), seqLen);
  const budget = flops('mot', base);
  return kinds.map((kind) => {
    if (kind !== 'mod') return { kind, pattern: kind, layers: base, flops: flops(kind, base) };
    let layers = base;
    while (flops('mot,mod', layers + 1) <= budget) layers++;
    return { kind, pattern: 'mot,mod', layers, flops: flops('mot,mod', layers) };
  });
}

function parseKinds(spec: string): CompareKind[] {
  const kinds = spec.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) if (!(k in KINDS)) throw new RangeError(`--blocks: compare trains ${Object.keys(KINDS).join(', ')}; received "${k}"`);
  if (!kinds.includes('mot')) kinds.unshift('mot'); // the reference of FLOPs and step time
  return [...new Set(kinds)] as CompareKind[];
}

// First step where the smoothed curve is at or below `target`.
function reachStep(curve: [number, number][], target: number): number | null {
  for (const [x, y] of curve) if (y <= target) return x;
  return null;
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

export async function runCompare(o: CompareOptions): Promise<Record<string, unknown>> {
  const kinds = parseKinds(o.blocks);
  const seqLen = Math.min(RUN_DEFAULTS[o.preset]?.seq ?? 256, PRESETS[o.preset]?.maxSeqLen ?? 256);
  const plans = comparePlans(o.preset, kinds, seqLen);
  const runs = {} as Record<CompareKind, StepReport[]>;
  const seconds: Record<string, number> = {};
  fs.mkdirSync(o.out, { recursive: true });
  for (const plan of plans) {
    process.stderr.write(`mixt compare: training the ${KINDS[plan.kind].label} model (${plan.layers} layers, ${plan.pattern})\n`);
    const dir = path.join(o.out, plan.kind);
    fs.mkdirSync(dir, { recursive: true });
    const config = path.join(dir, 'model.json');
    fs.writeFileSync(config, JSON.stringify({ layers: plan.layers }));
    const t0 = performance.now();
    // compare's own output directory: each comparison replaces the last one's checkpoints
    const r = await runTrain({
      preset: o.preset, blocks: plan.pattern, config, steps: o.steps, device: o.device, out: dir, seed: o.seed, quiet: true,
      progress: true, label: plan.kind, force: true,
    });
    seconds[plan.kind] = (performance.now() - t0) / 1000;
    runs[plan.kind] = r.summary.history;
    r.model.dispose(); // its weights and optimiser state
  }
  const names = runs.mot[0].modalities.map((m) => m.name);
  const curve = (h: StepReport[], m: number) => smooth(h.map((r) => [r.step, r.modalities[m].loss] as [number, number]), 0.1);
  const last = (c: [number, number][]) => c[c.length - 1][1];
  // each later model against each earlier one: the step at which it reaches that one's final loss
  const pairs = kinds.flatMap((k, i) => kinds.slice(0, i).map((ref) => [k, ref] as const));
  const summary = names.map((name, m) => {
    const curves = Object.fromEntries(kinds.map((k) => [k, curve(runs[k], m)])) as Record<CompareKind, [number, number][]>;
    const final = Object.fromEntries(kinds.map((k) => [k, last(curves[k])]));
    const reaches = pairs.map(([k, ref]) => ({ model: k, reference: ref, atStep: reachStep(curves[k], last(curves[ref])), steps: curves[ref].length }));
    const motVsDense = reaches.find((r) => r.model === 'mot' && r.reference === 'dense');
    return {
      modality: name, final, reaches,
      ...(final.dense !== undefined ? { denseFinal: final.dense, motFinal: final.mot, motReachesDenseFinalAtStep: motVsDense?.atStep ?? null } : {}),
    };
  });
  // cost beside the MoT model: FLOPs per step (counted) and step time (measured, median)
  const stepMs = (k: CompareKind) => median(runs[k].slice(3).map((r) => r.ms));
  const motPlan = plans.find((p) => p.kind === 'mot')!;
  const cost = plans.map((p) => ({
    model: p.kind, layers: p.layers, blocks: p.pattern, flopsPerToken: p.flops,
    flopsVsMoT: p.flops / motPlan.flops, medianStepMs: stepMs(p.kind), stepTimeVsMoT: stepMs(p.kind) / stepMs('mot'),
    ...(p.kind === 'mod' ? { capacity: modSettings(configOf(o.preset, p.pattern, p.layers)).capacity } : {}),
  }));
  const panels = names.map((name, m) => ({
    title: `${name} loss`,
    series: kinds.map((k) => ({ label: KINDS[k].label, color: KINDS[k].color, points: curve(runs[k], m) })) as Series[],
  }));
  const svg = path.join(o.out, 'compare.svg');
  const title = `${kinds.map((k) => KINDS[k].label).join(' vs ')} (${o.preset}; FLOPs per step at most the MoT model's)`;
  fs.writeFileSync(svg, lineChartsSvg(panels, { xLabel: 'step', title }));
  const result = { preset: o.preset, steps: runs.mot.length, seconds, summary, cost, svg };
  fs.writeFileSync(path.join(o.out, 'compare.json'), JSON.stringify({ ...result, curves: runs }, null, 1));
  const label = (k: CompareKind) => KINDS[k].label;
  for (const s of summary) {
    const reach = s.reaches.map((r) =>
      r.atStep === null ? `${label(r.model)} did not reach ${label(r.reference)}'s final` : `${label(r.model)} reaches ${label(r.reference)}'s final at step ${r.atStep} (${fmt((100 * r.atStep) / r.steps, 0)}%)`);
    console.log(`${s.modality}: final ${kinds.map((k) => `${label(k)} ${fmt(s.final[k])}`).join(', ')}; ${reach.join('; ')}`);
  }
  for (const c of cost) {
    const what = c.model === 'mod' ? ` (${c.layers} layers ${c.blocks}, capacity ${fmt(100 * c.capacity!, 1)}%)` : ` (${c.layers} layers)`;
    console.log(
      `${label(c.model)}${what}: ${fmt(c.flopsVsMoT, 2)}x the MoT FLOPs per step, step time ${fmt(c.medianStepMs, 0)} ms ` +
        `(${fmt(c.stepTimeVsMoT, 2)}x MoT's${c.model === 'mod' ? `: ${fmt(100 * (1 - c.stepTimeVsMoT), 0)}% of the step time saved` : ''})`,
    );
  }
  console.log(`wall clock: ${kinds.map((k) => `${label(k)} ${fmt(seconds[k], 1)} s`).join(', ')}; curves in ${svg}`);
  return result;
}

export function compareCommand(): Command {
  return new Command('compare')
    .description('train dense, MoT (and MoD) models at equal FLOPs per step on the same data; plot per-modality losses')
    .option('--preset <name>', 'tiny | small | medium', 'tiny')
    .option('--blocks <kinds>', "models to compare: dense, mot, mod (MoT blocks, Mixture-of-Depths every other layer, as deep as the MoT model's FLOPs per step allow)", 'dense,mot')
    .option('--steps <n>', `steps for each model (default: the preset's; ${Object.entries(RUN_DEFAULTS).map(([k, v]) => `${k} ${v.steps}`).join(', ')})`, intOption('--steps'))
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N' (default: auto, or MIXT_DEVICE)")
    .option('--out <dir>', 'output directory', 'runs/compare')
    .option('--seed <n>', 'seed', intOption('--seed', 0), 1)
    .action(async (o: CompareOptions) => {
      await runCompare(o);
    });
}

