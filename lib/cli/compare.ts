// `mixt compare`: the papers' claims in small, on the same data and seed: a dense model and a
// Mixture-of-Transformers model of equal FLOPs per step (the same shape; MoT unties the weights by
// modality, so each token still uses one copy), and with `--blocks ...,mod` a Mixture-of-Depths
// model of at most the MoT model's FLOPs per step (a routed block between each two MoT blocks, the
// FFN narrowed to pay for them). Per-modality loss curves as SVG and JSON, the step at which each
// model reaches the others' final loss, and each model's FLOPs per step, step time and CPU time
// per step beside the MoT model's.
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
  ffnHidden: number;
  flops: number;
}

function configOf(preset: PresetName, pattern: string, layers: number, ffnHidden = PRESETS[preset].ffnHidden): ModelConfig {
  const vocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };
  return presetConfig(preset, vocab, parseBlocks(pattern, layers), { layers, ffnHidden });
}

// dense and MoT: the preset's shape. MoD: the MoT model's L blocks with a routed block between each
// two ('mot,mod', 2L - 1 layers: the MoD paper's every-other-block placement) and every FFN as wide
// as FLOPs per step of at most the MoT model's allow (steps of 8): the paper's isoFLOP comparison,
// where the better MoD models are deeper than the baseline. (Routed blocks added to the MoT model
// at its full width cost more; at its depth, 'mot,mod' spends only ~3/4 of the budget and its text
// loss stays behind: bench/RESULTS.md.)
export function comparePlans(preset: PresetName, kinds: CompareKind[], seqLen: number): ModelPlan[] {
  const { layers: base, ffnHidden } = PRESETS[preset];
  const flops = (pattern: string, layers: number, ffn = ffnHidden) => flopsPerToken(configOf(preset, pattern, layers, ffn), seqLen);
  const budget = flops('mot', base);
  return kinds.map((kind) => {
    if (kind !== 'mod') return { kind, pattern: kind, layers: base, ffnHidden, flops: flops(kind, base) };
    const layers = 2 * base - 1;
    let ffn = ffnHidden;
    while (ffn > 8 && flops('mot,mod', layers, ffn) > budget) ffn -= 8;
    return { kind, pattern: 'mot,mod', layers, ffnHidden: ffn, flops: flops('mot,mod', layers, ffn) };
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

const meanFinite = (a: number[]) => {
  const v = a.filter(Number.isFinite);
  return v.length ? v.reduce((x, y) => x + y, 0) / v.length : NaN;
};
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
  const cpuSeconds: Record<string, number> = {}; // CPU time of the process (every thread): steady on a shared machine
  fs.mkdirSync(o.out, { recursive: true });
  for (const plan of plans) {
    process.stderr.write(`mixt compare: training the ${KINDS[plan.kind].label} model (${plan.layers} layers, ${plan.pattern}, FFN ${plan.ffnHidden})\n`);
    const dir = path.join(o.out, plan.kind);
    fs.mkdirSync(dir, { recursive: true });
    const config = path.join(dir, 'model.json');
    fs.writeFileSync(config, JSON.stringify({ layers: plan.layers, ffnHidden: plan.ffnHidden }));
    const t0 = performance.now(), c0 = process.cpuUsage();
    // compare's own output directory: each comparison replaces the last one's checkpoints
    const r = await runTrain({
      preset: o.preset, blocks: plan.pattern, config, steps: o.steps, device: o.device, out: dir, seed: o.seed, quiet: true,
      progress: true, label: plan.kind, force: true,
    });
    seconds[plan.kind] = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    cpuSeconds[plan.kind] = (c.user + c.system) / 1e6;
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
  const cpuStepMs = (k: CompareKind) => median(runs[k].slice(3).map((r) => r.cpuMs));
  const motPlan = plans.find((p) => p.kind === 'mot')!;
  const routedShare = (k: CompareKind) => names.map((_, m) => meanFinite(runs[k].slice(-50).flatMap((r) => (r.routing ?? []).map((x) => x.chosenShare?.[m] ?? NaN))));
  const cost = plans.map((p) => ({
    model: p.kind, layers: p.layers, blocks: p.pattern, ffnHidden: p.ffnHidden, flopsPerToken: p.flops,
    flopsVsMoT: p.flops / motPlan.flops, medianStepMs: stepMs(p.kind), stepTimeVsMoT: stepMs(p.kind) / stepMs('mot'),
    cpuMsPerStep: cpuStepMs(p.kind), cpuTimeVsMoT: cpuStepMs(p.kind) / cpuStepMs('mot'),
    ...(p.kind === 'mod' ? { capacity: modSettings(configOf(o.preset, p.pattern, p.layers, p.ffnHidden)).capacity, chosenShare: routedShare(p.kind) } : {}),
  }));
  const panels = names.map((name, m) => ({
    title: `${name} loss`,
    series: kinds.map((k) => ({ label: KINDS[k].label, color: KINDS[k].color, points: curve(runs[k], m) })) as Series[],
  }));
  const svg = path.join(o.out, 'compare.svg');
  const title = `${kinds.map((k) => KINDS[k].label).join(' vs ')} (${o.preset}; FLOPs per step at most the MoT model's)`;
  fs.writeFileSync(svg, lineChartsSvg(panels, { xLabel: 'step', title }));
  const result = { preset: o.preset, steps: runs.mot.length, seconds, cpuSeconds, summary, cost, svg };
  fs.writeFileSync(path.join(o.out, 'compare.json'), JSON.stringify({ ...result, curves: runs }, null, 1));
  const label = (k: CompareKind) => KINDS[k].label;
  for (const s of summary) {
    const reach = s.reaches.map((r) =>
      r.atStep === null ? `${label(r.model)} did not reach ${label(r.reference)}'s final` : `${label(r.model)} reaches ${label(r.reference)}'s final at step ${r.atStep} (${fmt((100 * r.atStep) / r.steps, 0)}%)`);
    console.log(`${s.modality}: final ${kinds.map((k) => `${label(k)} ${fmt(s.final[k])}`).join(', ')}; ${reach.join('; ')}`);
  }
  for (const c of cost) {
    const what = c.model === 'mod' ? ` (${c.layers} layers ${c.blocks}, FFN ${c.ffnHidden}, capacity ${fmt(100 * c.capacity!, 1)}%)` : ` (${c.layers} layers, FFN ${c.ffnHidden})`;
    const saved = (r: number) => (c.model === 'mod' ? `: ${fmt(100 * (1 - r), 0)}% saved` : '');
    console.log(
      `${label(c.model)}${what}: ${fmt(c.flopsVsMoT, 2)}x the MoT FLOPs per step, step time ${fmt(c.medianStepMs, 0)} ms ` +
        `(${fmt(c.stepTimeVsMoT, 2)}x MoT's${saved(c.stepTimeVsMoT)}), CPU time per step ${fmt(c.cpuMsPerStep, 0)} ms (${fmt(c.cpuTimeVsMoT, 2)}x MoT's${saved(c.cpuTimeVsMoT)})`,
    );
    if (c.chosenShare) console.log(`  tokens through its routed blocks (last 50 steps): ${names.map((n, m) => `${n} ${fmt(100 * c.chosenShare![m], 1)}%`).join(', ')}`);
  }
  console.log(`wall clock: ${kinds.map((k) => `${label(k)} ${fmt(seconds[k], 1)} s`).join(', ')}; CPU time: ${kinds.map((k) => `${label(k)} ${fmt(cpuSeconds[k], 1)} s`).join(', ')}; curves in ${svg}`);
  return result;
}

export function compareCommand(): Command {
  return new Command('compare')
    .description('train dense, MoT (and MoD) models at equal FLOPs per step on the same data; plot per-modality losses')
    .option('--preset <name>', 'tiny | small | medium', 'tiny')
    .option('--blocks <kinds>', "models to compare: dense, mot, mod (mod: the MoT model with a routed block between each two of its blocks, every FFN narrowed to the MoT model's FLOPs per step)", 'dense,mot')
    .option('--steps <n>', `steps for each model (default: the preset's; ${Object.entries(RUN_DEFAULTS).map(([k, v]) => `${k} ${v.steps}`).join(', ')})`, intOption('--steps'))
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N' (default: auto, or MIXT_DEVICE)")
    .option('--out <dir>', 'output directory', 'runs/compare')
    .option('--seed <n>', 'seed', intOption('--seed', 0), 1)
    .action(async (o: CompareOptions) => {
      await runCompare(o);
    });
}

