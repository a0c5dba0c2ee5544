// The bench suites: each case builds its inputs (random normal, never zeros; several copies that
// rotate so the L2 cache is not what is measured), runs one unit of work per call, and says how
// many FLOPs or bytes that is and how PyTorch does the same work (bench/reference/torch_bench.py).
import { Device } from '../../core/device';
import { DType } from '../../core/dtype';
import { Generator } from '../../core/random';
import { Tensor } from '../../core/tensor';
import { BlockKind, PRESETS, presetConfig, PresetName, flopsPerToken } from '../../model/config';
import { Decoder } from '../../model/decode';
import { Model } from '../../model/model';
import { Batch } from '../../nn/batch';
import { MoTBlock } from '../../nn/mot_block';
import {
  AttentionMask, adamwStep, attention, attentionBackward, gatherRows, groupedMatmul, groupedMatmulDW, groupedMatmulDX, lmHeadCrossEntropy,
  lmHeadCrossEntropyBackward, matmul, randn, rmsNorm, rmsNormBackward, routerTopk, routingPlan, tensor, topkRows, zeros,
} from '../../ops';
import { shapesCorpus } from '../../train/data/dataset';
import { SHAPES_VOCAB } from '../../train/data/shapes';
import { TRAIN_DEFAULTS, Trainer } from '../../train/trainer';

export interface BenchContext {
  device: Device;
  dtype: DType; // bf16 on CUDA, f32 on the CPU
  quick: boolean;
  l2Bytes: number;
  seed: number;
}

export interface Instance {
  run(i: number): void | Promise<void>;
  // Tensors compared by --check against PyTorch's outputs for the same inputs (the first copy).
  inputs?: Record<string, Tensor>;
  outputs?(): Record<string, Tensor>;
  dispose(): void;
}

export interface TorchSpec {
  op: string;
  params: Record<string, unknown>;
}

export interface BenchCase {
  suite: string;
  name: string;
  shape: string;
  flops?: number; // work per run
  bytes?: number; // memory traffic per run, for memory-bound cases
  torch?: TorchSpec;
  make(ctx: BenchContext): Instance;
}

export const SUITES = ['gemm', 'grouped-gemm', 'attention', 'norm', 'routing', 'loss', 'adamw', 'block', 'step', 'generate'] as const;
export type SuiteName = (typeof SUITES)[number];

const fmtShape = (s: number[]) => s.join('x');

// Random inputs, `copies` of them so consecutive runs do not hit a warm L2.
function rotating(ctx: BenchContext, bytesPerCopy: number, makeCopy: (g: Generator) => Tensor[]): Tensor[][] {
  const copies = Math.max(1, Math.min(8, Math.ceil((2 * ctx.l2Bytes) / Math.max(1, bytesPerCopy))));
  const g = new Generator(ctx.seed);
  return Array.from({ length: ctx.quick ? Math.min(copies, 2) : copies }, () => makeCopy(g));
}
const rn = (g: Generator, shape: number[], ctx: BenchContext, std = 1) => randn(shape, { generator: g, device: ctx.device, dtype: ctx.dtype, std });
const ints = (a: ArrayLike<number>, ctx: BenchContext) => tensor(Int32Array.from(a), [a.length], { dtype: 'i32', device: ctx.device });
const disposeAll = (sets: Tensor[][]) => sets.flat().forEach((t) => t.dispose());
const bytesOf = (dtype: DType) => (dtype === 'bf16' ? 2 : 4);

function splitCounts(total: number, fractions: number[]): number[] {
  const c = fractions.map((f) => Math.floor(f * total));
  c[c.length - 1] += total - c.reduce((a, b) => a + b, 0);
  return c;
}
const offsetsOf = (counts: number[]) => counts.reduce((o, c) => [...o, o[o.length - 1] + c], [0]);

// Expert loads: uniform, or skewed (Zipf-like, s = 1.2), summing to tokens * k.
function expertCounts(tokens: number, experts: number, k: number, skewed: boolean): number[] {
  const w = Array.from({ length: experts }, (_, e) => (skewed ? 1 / Math.pow(e + 1, 1.2) : 1));
  const sum = w.reduce((a, b) => a + b, 0);
  return splitCounts(tokens * k, w.map((x) => x / sum));
}

function gemmCase(m: number, n: number, k: number): BenchCase {
  return {
    suite: 'gemm', name: 'matmul', shape: fmtShape([m, n, k]), flops: 2 * m * n * k,
    torch: { op: 'matmul', params: { m, n, k } },
    make(ctx) {
      const sets = rotating(ctx, (m * k + k * n) * bytesOf(ctx.dtype), (g) => [rn(g, [m, k], ctx), rn(g, [k, n], ctx)]);
      const out = zeros([m, n], { device: ctx.device, dtype: ctx.dtype });
      return {
        run: (i) => void matmul(sets[i % sets.length][0], sets[i % sets.length][1], { out }),
        inputs: { a: sets[0][0], b: sets[0][1] },
        outputs: () => ({ c: matmul(sets[0][0], sets[0][1]) }),
        dispose: () => { disposeAll(sets); out.dispose(); },
      };
    },
  };
}

type GroupedKind = 'fwd' | 'dx' | 'dw';
function groupedCase(label: string, counts: number[], K: number, O: number, kind: GroupedKind): BenchCase {
  const N = counts.reduce((a, b) => a + b, 0), G = counts.length;
  return {
    suite: 'grouped-gemm', name: `${label} ${kind}`, shape: `${N}x${K}->${O}, ${G} groups`, flops: 2 * N * K * O,
    torch: { op: 'grouped', params: { kind, counts, k: K, n: O } },
    make(ctx) {
      const off = ints(offsetsOf(counts), ctx);
      const sets = rotating(ctx, (N * K + G * O * K + N * O) * bytesOf(ctx.dtype), (g) => [rn(g, [N, K], ctx), rn(g, [G, O, K], ctx, 0.05), rn(g, [N, O], ctx)]);
      const f = (s: Tensor[]) => (kind === 'fwd' ? groupedMatmul(s[0], s[1], off) : kind === 'dx' ? groupedMatmulDX(s[2], s[1], off) : groupedMatmulDW(s[2], s[0], off));
      return {
        run: (i) => f(sets[i % sets.length]).dispose(),
        inputs: { x: sets[0][0], w: sets[0][1], dy: sets[0][2] },
        outputs: () => ({ out: f(sets[0]) }),
        dispose: () => { disposeAll(sets); off.dispose(); },
      };
    },
  };
}

export type MaskKind = 'causal' | 'spans' | 'docs' | 'full';

// Host-side mask description for a batch of `seqs` sequences of `seq` tokens.
export function attentionLayout(kind: MaskKind, seqs: number, seq: number): { doc: number[]; span: number[] | null; visiblePairs: number } {
  const T = seqs * seq;
  const doc = new Array(T).fill(0), span: number[] | null = kind === 'spans' ? new Array(T).fill(-1) : null;
  let pairs = 0;
  let docId = 0;
  for (let s = 0; s < seqs; s++) {
    // 'docs': each sequence packs documents of 1/8, 1/4, 1/8, 1/2 of its length
    const lens = kind === 'docs' ? [seq / 8, seq / 4, seq / 8, seq / 2].map(Math.floor) : [seq];
    lens[lens.length - 1] += seq - lens.reduce((a, b) => a + b, 0);
    let at = s * seq;
    for (const len of lens) {
      for (let i = 0; i < len; i++) doc[at + i] = docId;
      if (kind === 'full') pairs += len * len;
      else pairs += (len * (len + 1)) / 2;
      if (span) {
        // an image span in the middle half of each sequence: bidirectional inside
        const a = Math.floor(len / 4), b = Math.floor((3 * len) / 4);
        for (let i = a; i < b; i++) span[at + i] = docId;
        const n = b - a;
        pairs += (n * (n - 1)) / 2; // the later tokens of the span each earlier one also sees
      }
      docId++;
      at += len;
    }
  }
  return { doc, span, visiblePairs: pairs };
}

function attentionCase(kind: MaskKind, seq: number, tokens: number, D: number, dir: 'fwd' | 'bwd'): BenchCase {
  const seqs = Math.max(1, Math.floor(tokens / seq)), T = seqs * seq;
  const Hq = Math.max(1, Math.floor(2048 / D)), Hk = Hq;
  const layout = attentionLayout(kind, seqs, seq);
  const fwd = 4 * layout.visiblePairs * Hq * D;
  return {
    suite: 'attention', name: `${kind} ${dir}`, shape: `${seqs}x${seq} tokens, ${Hq} heads x ${D}`, flops: dir === 'fwd' ? fwd : 2.5 * fwd,
    torch: { op: 'attention', params: { kind, seqs, seq, heads: Hq, kvHeads: Hk, dim: D, dir, doc: kind === 'docs' ? layout.doc : null, span: layout.span } },
    make(ctx) {
      const mask: AttentionMask = {
        causal: kind !== 'full',
        docIds: ints(layout.doc, ctx),
        ...(layout.span ? { spanIds: ints(layout.span, ctx) } : {}),
      };
      const sets = rotating(ctx, 4 * T * Hq * D * bytesOf(ctx.dtype), (g) => [rn(g, [T, Hq, D], ctx), rn(g, [T, Hk, D], ctx), rn(g, [T, Hk, D], ctx), rn(g, [T, Hq, D], ctx)]);
      const fw = sets.map((s) => (dir === 'bwd' ? attention(s[0], s[1], s[2], mask) : null));
      const one = (i: number): Record<string, Tensor> => {
        const s = sets[i % sets.length];
        if (dir === 'fwd') {
          const r = attention(s[0], s[1], s[2], mask);
          return { out: r.out, lse: r.lse };
        }
        const f = fw[i % sets.length]!;
        const g = attentionBackward(s[0], s[1], s[2], f.out, s[3], f.lse, mask);
        return { dq: g.dq, dk: g.dk, dv: g.dv };
      };
      return {
        run: (i) => Object.values(one(i)).forEach((t) => t.dispose()),
        inputs: { q: sets[0][0], k: sets[0][1], v: sets[0][2], dout: sets[0][3] },
        outputs: () => one(0),
        dispose: () => {
          disposeAll(sets);
          fw.forEach((f) => { f?.out.dispose(); f?.lse.dispose(); });
          Object.values(mask).forEach((t) => t instanceof Tensor && t.dispose());
        },
      };
    },
  };
}

function normCase(rows: number, d: number): BenchCase {
  const counts = splitCounts(rows, [0.6, 0.3, 0.1]);
  return {
    suite: 'norm', name: 'rmsnorm fwd+bwd, 3 modalities', shape: `${rows}x${d}`, bytes: 5 * rows * d * 2,
    torch: { op: 'rmsnorm', params: { counts, d } },
    make(ctx) {
      const ids = ints(counts.flatMap((c, g) => new Array(c).fill(g)), ctx);
      const sets = rotating(ctx, 2 * rows * d * bytesOf(ctx.dtype), (g) => [rn(g, [rows, d], ctx), rn(g, [rows, d], ctx)]);
      const w = rn(new Generator(1), [3, d], ctx);
      const one = (i: number) => {
        const s = sets[i % sets.length];
        const f = rmsNorm(s[0], w, ids);
        const b = rmsNormBackward(s[1], s[0], w, ids, f.rstd);
        return { y: f.y, rstd: f.rstd, dx: b.dx, dweight: b.dweight };
      };
      return {
        run: (i) => Object.values(one(i)).forEach((t) => t.dispose()),
        inputs: { x: sets[0][0], dy: sets[0][1], w },
        outputs: () => { const o = one(0); o.rstd.dispose(); return { y: o.y, dx: o.dx, dweight: o.dweight }; },
        dispose: () => { disposeAll(sets); ids.dispose(); w.dispose(); },
      };
    },
  };
}

function routingCase(label: string, rows: number, groups: number, d: number): BenchCase {
  return {
    suite: 'routing', name: `plan + gather, ${label}`, shape: `${rows} rows, ${groups} groups, d ${d}`, bytes: rows * (16 + 2 * d * 2),
    torch: { op: 'routing', params: { rows, groups, d } },
    make(ctx) {
      const g = new Generator(ctx.seed);
      const idsHost = Int32Array.from({ length: rows }, (_, i) => Math.floor(((i * 2654435761) >>> 0) / 4294967296 * groups));
      const ids = ints(idsHost, ctx);
      const x = rn(g, [rows, d], ctx);
      return {
        run: () => {
          const plan = routingPlan(ids, groups);
          gatherRows(x, plan.perm).dispose();
          plan.dispose();
        },
        dispose: () => { ids.dispose(); x.dispose(); },
      };
    },
  };
}

function topkCase(rows: number, seq: number, capacity: number): BenchCase {
  const k = Math.max(1, Math.ceil(capacity * seq));
  return {
    suite: 'routing', name: `MoD top-k per sequence (${capacity * 100}%)`, shape: `${rows}x${seq}, k ${k}`, bytes: rows * seq * 4 + rows * k * 4,
    torch: { op: 'topk', params: { rows, seq, k } },
    make(ctx) {
      const s = randn([rows, seq], { generator: new Generator(ctx.seed), device: ctx.device });
      return { run: () => topkRows(s, k, { flat: true }).dispose(), dispose: () => s.dispose() };
    },
  };
}

function routerCase(tokens: number, experts: number, k: number): BenchCase {
  return {
    suite: 'routing', name: `MoE router top-${k} (softmax, renormalised)`, shape: `${tokens} tokens, ${experts} experts`, bytes: tokens * experts * 8,
    torch: { op: 'router', params: { tokens, experts, k } },
    make(ctx) {
      const l = randn([tokens, experts], { generator: new Generator(ctx.seed), device: ctx.device });
      return {
        run: () => { const c = routerTopk(l, k, { renormalize: true }); for (const t of [c.probs, c.lse, c.experts, c.gates]) t.dispose(); },
        dispose: () => l.dispose(),
      };
    },
  };
}

function lossCase(n: number, d: number, V: number): BenchCase {
  return {
    suite: 'loss', name: 'LM head + cross-entropy fwd+bwd (chunked)', shape: `${n}x${d} -> ${V}`, flops: 3 * 2 * n * d * V + 2 * n * d * V,
    torch: { op: 'ce', params: { n, d, v: V } },
    make(ctx) {
      const g = new Generator(ctx.seed);
      const h = rn(g, [n, d], ctx), w = rn(g, [V, d], ctx, 0.02);
      const t = ints(Array.from({ length: n }, (_, i) => (i * 7919) % V), ctx);
      const dl = tensor(new Float32Array(n).fill(1 / n), [n], { device: ctx.device });
      const one = () => {
        const f = lmHeadCrossEntropy(h, w, t);
        const b = lmHeadCrossEntropyBackward(h, w, t, f.lse, dl);
        f.correct.dispose();
        return { loss: f.loss, lse: f.lse, dh: b.dh, dw: b.dw };
      };
      return {
        run: () => Object.values(one()).forEach((x) => x.dispose()),
        inputs: { h, w, targets: t },
        outputs: () => { const o = one(); o.lse.dispose(); return { loss: o.loss, dh: o.dh, dw: o.dw }; },
        dispose: () => [h, w, t, dl].forEach((x) => x.dispose()),
      };
    },
  };
}

function adamwCase(numel: number): BenchCase {
  return {
    suite: 'adamw', name: 'fused AdamW step (+ bf16 copy on CUDA)', shape: `${numel} params`, bytes: numel * (4 * 4 + 4 + (2 + 2)),
    torch: { op: 'adamw', params: { numel } },
    make(ctx) {
      const g = new Generator(ctx.seed);
      const p = randn([numel], { generator: g, device: ctx.device }), m = zeros([numel], { device: ctx.device }), v = zeros([numel], { device: ctx.device });
      const gr = rn(g, [numel], ctx, 0.01);
      const copy = ctx.device.isCuda ? zeros([numel], { device: ctx.device, dtype: 'bf16' }) : undefined;
      let step = 0;
      return {
        run: () => adamwStep(p, gr, m, v, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: ++step, computeCopy: copy }),
        dispose: () => [p, m, v, gr, copy].forEach((x) => x?.dispose()),
      };
    },
  };
}

const benchVocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };

function blockCase(T: number, d: number, M: number): BenchCase {
  const heads = Math.max(1, d / 128), ffn = Math.round((8 * d) / 3 / 64) * 64;
  const counts = M === 1 ? [T] : splitCounts(T, [0.6, 0.3, 0.1]);
  const cfg = { T, d, heads, kvHeads: heads, headDim: d / heads, ffn, counts };
  const perTok = 2 * (4 * d * d + 3 * d * ffn) * 3; // fwd+bwd of the projections
  const attn = 3 * 2 * 2 * T * (T / 2) * d; // causal, one sequence, fwd+bwd
  return {
    suite: 'block', name: `MoT block fwd+bwd, ${M === 1 ? 'dense (M=1)' : `M=${M}`}`, shape: `T ${T}, d ${d}, ffn ${ffn}`, flops: perTok * T + attn,
    torch: { op: 'block', params: cfg },
    make(ctx) {
      const init = { generator: new Generator(ctx.seed), device: ctx.device, masterDtype: 'f32' as DType };
      const block = new MoTBlock('bench', { dModel: d, heads, kvHeads: heads, headDim: d / heads, ffnHidden: ffn, modalities: M, normKind: 'rms', placement: 'pre', qkNorm: false, ropeTheta: 10000, layers: 1 }, init, ctx.dtype);
      const modality = Int32Array.from(counts.flatMap((c, g) => new Array(c).fill(g)));
      // interleave: modality runs of 64 tokens, so grouping really permutes
      const inter = new Int32Array(T);
      for (let i = 0; i < T; i++) inter[i] = modality[((i % 64) * Math.floor(T / 64) + Math.floor(i / 64)) % T];
      const batch = new Batch({ modality: inter, docIds: new Int32Array(T), positions: Int32Array.from({ length: T }, (_, i) => i) }, M, ctx.device);
      const g = new Generator(ctx.seed + 1);
      const x = rn(g, [T, d], ctx), dy = rn(g, [T, d], ctx, 0.01);
      return {
        run: () => {
          block.forward(x, batch).dispose();
          block.zeroGrad();
          block.backward(dy).dispose();
        },
        dispose: () => { block.dispose(); batch.dispose(); x.dispose(); dy.dispose(); },
      };
    },
  };
}

function stepCase(preset: PresetName, batch: number, seq: number, blocks: 'mot' | 'dense' | 'mod' = 'mot'): BenchCase {
  const kinds: BlockKind[] = blocks === 'mod' ? ['mot', 'mod'] : [blocks];
  const cfg = presetConfig(preset, benchVocab, Array.from({ length: PRESETS[preset].layers }, (_, i) => kinds[i % kinds.length]), blocks === 'mod' ? { mod: { capacity: 0.125 } } : {});
  const label = blocks === 'mod' ? 'MoT + MoD 12.5% every other block' : blocks === 'dense' ? 'dense' : 'MoT';
  return {
    suite: 'step', name: `training step, ${preset} ${label}`, shape: `${batch}x${seq} tokens, d ${cfg.dModel}, ${cfg.layers} layers`,
    flops: flopsPerToken(cfg, seq) * batch * seq,
    torch: blocks === 'mod' ? undefined : { op: 'step', params: { d: cfg.dModel, layers: cfg.layers, heads: cfg.heads, kvHeads: cfg.kvHeads, ffn: cfg.ffnHidden, vocab: cfg.vocabSize, modalities: blocks === 'dense' ? 1 : 3, batch, seq } },
    make(ctx) {
      const model = new Model(cfg, { device: ctx.device, seed: 1 });
      const trainer = new Trainer(model, shapesCorpus({ docs: 2000 }), { ...TRAIN_DEFAULTS, steps: 1 << 30, batch, seqLen: seq, warmup: 1 });
      return {
        run: async () => { await trainer.trainStep(); },
        dispose: () => { trainer.dispose(); model.dispose(); },
      };
    },
  };
}

// One generated token after a prompt of `prompt` tokens, with the KV cache: each run decodes one
// token and rewinds, so the time is the per-token cost at that prompt length (flat in the prompt
// length but for attention over the cache, which is small beside the projections and FFN).
function decodeCase(preset: PresetName, prompt: number, blocks: 'mot' | 'mod' = 'mot'): BenchCase {
  const kinds: BlockKind[] = blocks === 'mod' ? ['mot', 'mod'] : ['mot'];
  const cfg = presetConfig(preset, benchVocab, Array.from({ length: PRESETS[preset].layers }, (_, i) => kinds[i % kinds.length]), { maxSeqLen: Math.max(PRESETS[preset].maxSeqLen, prompt + 1) });
  return {
    suite: 'generate', name: `next token with KV cache, ${preset} ${blocks === 'mod' ? 'MoT + MoD' : 'MoT'}`, shape: `prompt ${prompt}, d ${cfg.dModel}, ${cfg.layers} layers`,
    flops: flopsPerToken(cfg, prompt) / 3,
    make(ctx) {
      const model = new Model(cfg, { device: ctx.device, seed: 1 });
      const dec = new Decoder(model);
      const V = cfg.vocabSize;
      let mark: ReturnType<Decoder['mark']> | null = null;
      return {
        run: async (i) => {
          if (!mark) {
            await dec.prefill(Array.from({ length: prompt }, (_, t) => (t * 7919) % V));
            mark = dec.mark();
          }
          await dec.step((i * 31) % V);
          dec.rewind(mark);
        },
        dispose: () => { dec.dispose(); model.dispose(); },
      };
    },
  };
}

// Every case of the selected suites, sized for the device (full on CUDA, small on the CPU / --quick).
export function benchCases(ctx: { device: Device; quick: boolean }): BenchCase[] {
  const big = ctx.device.isCuda && !ctx.quick;
  const cases: BenchCase[] = [];
  // gemm
  if (big) for (const [m, n, k] of [[8192, 8192, 8192], [4096, 4096, 4096], [16384, 6144, 2048], [16384, 2048, 6144]]) cases.push(gemmCase(m, n, k));
  else cases.push(gemmCase(256, 256, 256), gemmCase(512, 384, 256));
  // grouped GEMM: MoT shapes (16k tokens, 60/30/10) and MoE (64 experts, top-2 / top-8, uniform / skewed)
  const T = big ? 16384 : 1024;
  const [d, f] = big ? [2048, 6144] : [128, 384];
  for (const kind of ['fwd', 'dx', 'dw'] as GroupedKind[]) {
    cases.push(groupedCase('MoT 60/30/10 up', splitCounts(T, [0.6, 0.3, 0.1]), d, f, kind));
    cases.push(groupedCase('MoT 60/30/10 down', splitCounts(T, [0.6, 0.3, 0.1]), f, d, kind));
  }
  const E = big ? 64 : 8, ef = big ? 1408 : 128, moeT = big ? 16384 : 256;
  for (const k of [2, 8]) for (const skewed of [false, true]) cases.push(groupedCase(`MoE ${E}x top-${k} ${skewed ? 'skewed' : 'uniform'}`, expertCounts(moeT, E, k, skewed), d, ef, 'fwd'));
  // attention
  const seqs = big ? [512, 1024, 2048, 4096, 8192, 16384] : [256];
  for (const D of big ? [64, 128] : [64])
    for (const seq of seqs)
      for (const dir of ['fwd', 'bwd'] as const) cases.push(attentionCase('causal', seq, big ? Math.max(16384, seq) : 512, D, dir));
  for (const kind of ['spans', 'docs'] as MaskKind[]) for (const dir of ['fwd', 'bwd'] as const) cases.push(attentionCase(kind, big ? 4096 : 256, big ? 16384 : 512, big ? 128 : 64, dir));
  // norm, routing, loss, adamw
  cases.push(normCase(big ? 16384 : 2048, big ? 2048 : 256));
  cases.push(routingCase('MoT', big ? 16384 : 2048, 3, big ? 2048 : 128), routingCase('MoE top-8', big ? 16384 * 8 : 2048, big ? 64 : 8, big ? 2048 : 128));
  cases.push(topkCase(big ? 16 : 4, big ? 1024 : 256, 0.125), routerCase(big ? 16384 : 1024, big ? 64 : 8, big ? 8 : 2));
  cases.push(lossCase(big ? 16384 : 512, big ? 2048 : 128, big ? 65536 : 1000));
  cases.push(adamwCase(big ? 100_000_000 : 1_000_000));
  // block: dense vs M = 3
  for (const M of [1, 3]) cases.push(blockCase(big ? 8192 : 512, big ? 2048 : 128, M));
  // step
  if (big) {
    for (const b of ['dense', 'mot', 'mod'] as const) cases.push(stepCase('small', 16, 1024, b));
    cases.push(stepCase('medium', 8, 2048));
  } else for (const b of ['dense', 'mot', 'mod'] as const) cases.push(stepCase('tiny', 4, 256, b));
  // generate: per-token cost against the prompt length
  for (const p of big ? [64, 512, 1536] : [16, 128, 512]) cases.push(decodeCase(big ? 'small' : 'tiny', p));
  cases.push(decodeCase(big ? 'small' : 'tiny', big ? 512 : 128, 'mod'));
  return cases;
}
