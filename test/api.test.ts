// The public API: createModel / loadModel / save / to / dispose, train() as an async iterator with
// abort, checkpoints and resume, the data helpers. Everything through the package root.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as mixt from '../lib';

const cpuBytes = () => mixt.memory().cpu?.bytes ?? 0;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-api-'));
const tiny = { dModel: 32, layers: 2, heads: 4, kvHeads: 2, ffnHidden: 48 };
const corpus = mixt.data.embeddedCorpus({ docs: 300, seed: 5 });
const runOpts = { batch: 2, seqLen: 64, lr: 5e-3, warmup: 2 };

async function weightsOf(m: mixt.MixtModel): Promise<number[]> {
  const out: number[] = [];
  for (const p of m.engine.parameters()) out.push(...Array.from(await p.value.toArray()));
  return out;
}

describe('models', () => {
  test('createModel from a preset counts parameters; dispose() returns memory to the baseline', async () => {
    const before = cpuBytes();
    const m = mixt.createModel('tiny', { overrides: tiny, seed: 3 });
    const c = m.parameterCount();
    expect(c.stored).toBe(c.total);
    expect(c.activePerToken).toBeLessThan(c.total);
    expect(cpuBytes()).toBeGreaterThan(before);
    m.dispose();
    expect(cpuBytes()).toBe(before);
    expect(() => m.config).toThrow(/disposed/);
  });

  test('bad arguments are clear errors', () => {
    expect(() => mixt.createModel('huge' as never)).toThrow(/createModel: argument "configOrPreset"/);
    expect(() => mixt.createModel('tiny', { device: 'tpu' })).toThrow(/device/);
    expect(() => mixt.train({} as never, corpus, { steps: 1 })).toThrow(/train: argument "model"/);
  });

  test('MixtModel and TrainRun are types only; their constructors, reached anyway, refuse bad arguments by name', async () => {
    expect('MixtModel' in mixt).toBe(false);
    expect('TrainRun' in mixt).toBe(false);
    using m = mixt.createModel('tiny', { overrides: tiny, seed: 1 });
    const Model = m.constructor as unknown as new (...a: unknown[]) => unknown;
    for (const bad of [undefined, null, {}, 3, 'tiny', m]) expect(() => new Model(bad)).toThrow(/^MixtModel: argument "model" expected an engine Model/);
    expect(() => new Model(m.engine, -1)).toThrow(TypeError);
    expect(() => new Model(m.engine, 1.5)).toThrow(/MixtModel: argument "seed" expected a non-negative integer, received 1.5/);
    const run = mixt.train(m, corpus, { ...runOpts, steps: 1 });
    const Run = run.constructor as unknown as new (...a: unknown[]) => unknown;
    for (const bad of [undefined, null, {}, 'x']) expect(() => new Run(bad)).toThrow(/^TrainRun: argument "run" expected a function/);
    await run.summary;
  });

  test('save then loadModel gives the same weights; a trained model saves its optimiser too', async () => {
    const dir = tmp();
    const before = cpuBytes();
    {
      using m = mixt.createModel('tiny', { overrides: tiny, seed: 4 });
      const ck = await m.save(dir);
      using back = await mixt.loadModel(dir);
      expect(ck).toMatch(/step-000000$/);
      expect(await weightsOf(back)).toEqual(await weightsOf(m));
      expect(back.config).toEqual(m.config);
    }
    expect(cpuBytes()).toBe(before);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('to(device) keeps the weights', async () => {
    using m = mixt.createModel('tiny', { overrides: tiny, seed: 5 });
    const w = await weightsOf(m);
    await m.to('cpu');
    expect(await weightsOf(m)).toEqual(w);
  });
});

describe('train()', () => {
  test('reports every step, ends with a summary and a checkpoint; resume continues the same curve', async () => {
    const dir = tmp(), dir2 = tmp();
    using a = mixt.createModel('tiny', { overrides: tiny, seed: 6 });
    const seen: number[] = [];
    const events: mixt.CheckpointEvent[] = [];
    const run = mixt.train(a, corpus, { ...runOpts, steps: 6, out: dir, checkpointEvery: 3, onCheckpoint: (e) => events.push(e) });
    for await (const r of run) {
      seen.push(r.step);
      expect(r.modalities.map((m) => m.name)).toEqual(['text', 'image', 'tone']);
      expect(r.tokensPerSecond).toBeGreaterThan(0);
    }
    const s = await run.summary;
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(s.aborted).toBe(false);
    expect(events.map((e) => [e.step, e.reason])).toEqual([[3, 'interval'], [6, 'final']]);
    // resume from step 3 in a fresh model: the same losses for steps 4..6 (CPU: bit for bit)
    using b = mixt.createModel('tiny', { overrides: tiny, seed: 99 });
    const resumed = mixt.train(b, corpus, { ...runOpts, steps: 6, resume: path.join(dir, 'step-000003'), out: dir2 });
    const losses: number[] = [];
    for await (const r of resumed) losses.push(r.loss);
    expect(losses).toEqual(s.history.slice(3).map((r) => r.loss));
    for (const d of [dir, dir2]) fs.rmSync(d, { recursive: true, force: true });
  });

  test('an AbortSignal stops at a step boundary with a checkpoint', async () => {
    const dir = tmp();
    using m = mixt.createModel('tiny', { overrides: tiny, seed: 7 });
    const ac = new AbortController();
    const run = mixt.train(m, corpus, { ...runOpts, steps: 50, out: dir, signal: ac.signal });
    for await (const r of run) if (r.step === 2) ac.abort();
    const s = await run.summary;
    expect(s.aborted).toBe(true);
    expect(s.steps).toBe(2);
    expect(s.checkpoint).toMatch(/step-000002$/);
    using back = await mixt.loadModel(dir);
    expect(await weightsOf(back)).toEqual(await weightsOf(m));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('resume keeps the checkpoint\'s options and seed unless given, and lists what is overridden', async () => {
    const dir = tmp();
    using a = mixt.createModel('tiny', { overrides: tiny, seed: 6 });
    const first = mixt.train(a, corpus, { ...runOpts, batch: 3, seed: 11, lr: 4e-3, steps: 4, out: dir, checkpointEvery: 2 });
    expect((await first.plan).options).toMatchObject({ batch: 3, seed: 11, lr: 4e-3, minLr: 4e-4, steps: 4 });
    const done = await first.summary;
    // no options at all: the checkpoint's run continues to its own 4 steps, with its seed and batch
    using b = mixt.createModel('tiny', { overrides: tiny, seed: 1 });
    const again = mixt.train(b, corpus, { resume: path.join(dir, 'step-000002') });
    const plan = await again.plan;
    expect(plan).toMatchObject({ startStep: 2, overridden: [], options: { batch: 3, seed: 11, lr: 4e-3, steps: 4, seqLen: 64 } });
    expect(plan.resumedFrom).toMatch(/step-000002$/);
    const s = await again.summary;
    expect(s.history.map((r) => r.loss)).toEqual(done.history.map((r) => r.loss)); // bit for bit on the CPU
    expect([s.startStep, s.run.steps]).toEqual([2, 2]);
    // a given option that differs replaces the saved one and is listed; an equal one is not
    using c = mixt.createModel('tiny', { overrides: tiny, seed: 1 });
    const over = mixt.train(c, corpus, { resume: dir, steps: 6, seed: 12, batch: 3 });
    expect((await over.plan).overridden).toEqual([{ name: 'steps', value: 6, saved: 4 }, { name: 'seed', value: 12, saved: 11 }]);
    await over.summary;
    // nothing left to train is refused before any step, naming the option as the caller names it
    using d = mixt.createModel('tiny', { overrides: tiny, seed: 1 });
    const none = mixt.train(d, corpus, { resume: dir, steps: 3, optionNames: { steps: '--steps' } });
    await expect(none.plan).rejects.toThrow(/--steps 3 is not beyond the checkpoint's step \(4\)/);
    await expect(none.summary).rejects.toThrow(/not beyond/);
    expect(() => mixt.train(d, corpus, {})).toThrow(/train: argument "options.steps" expected an integer >= 1 \(or options.resume\)/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a step that cannot fit is refused before the first step, with the numbers', async () => {
    using m = mixt.createModel('tiny', { overrides: tiny, seed: 1 });
    const run = mixt.train(m, corpus, { steps: 2, batch: 2 ** 22, seqLen: 64 });
    await expect(run.plan).rejects.toMatchObject({ code: 'ERR_OOM', message: expect.stringMatching(/needs about [\d.]+ (GiB|TiB)/) });
    await expect(run.summary).rejects.toMatchObject({ code: 'ERR_OOM' });
  });

  test('gradient accumulation: accum 2 of batch 1 is batch 2 of the same rows', async () => {
    const one = mixt.createModel('tiny', { overrides: tiny, seed: 8 });
    const two = mixt.createModel('tiny', { overrides: tiny, seed: 8 });
    const r1 = await mixt.train(one, corpus, { ...runOpts, batch: 1, accum: 2, steps: 2 }).summary;
    const r2 = await mixt.train(two, corpus, { ...runOpts, batch: 2, accum: 1, steps: 2 }).summary;
    expect(r1.history[0].tokens).toBe(r2.history[0].tokens);
    expect(r1.history.every((r) => Number.isFinite(r.loss))).toBe(true);
    one.dispose();
    two.dispose();
  });
});

describe('data', () => {
  test('JSONL and in-memory documents, token files, splits', () => {
    const ds = mixt.data.fromTokens([[1, 2, 3], [4, 5], [6, 7, 8, 9]]);
    expect(ds.tokens.length).toBe(9);
    const { train, eval: held } = mixt.data.splitDocuments(ds, 0.34);
    expect(mixt.data.documentCount(train) + mixt.data.documentCount(held)).toBe(3);
    const j = mixt.data.fromJsonl('{"tokens":[1,2,3]}\n{"tokens":[4,5]}\n');
    expect(Array.from(j.tokens)).toEqual([1, 2, 3, 4, 5]);
    const dir = tmp(), f = path.join(dir, 'x.mixt');
    mixt.data.writeTokenFile(f, ds);
    expect(Array.from(mixt.data.openTokenFile(f).tokens)).toEqual(Array.from(ds.tokens));
    expect(() => mixt.data.fromTokens([[1, 1e9]])).toThrow(/fromTokens: argument "documents\[0\]"/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('inference', () => {
  test('generate streams tokens; concurrent requests give what they give alone; score reports per modality', async () => {
    using m = mixt.createModel('tiny', { overrides: tiny, blocks: ['mot', 'mod'], seed: 12 });
    const prompt = [1, 20, 21, 22];
    const alone: number[][] = [];
    for (const seed of [1, 2]) {
      const got: number[] = [];
      for await (const t of m.generate(prompt, { maxTokens: 12, seed, topP: 0.9 })) got.push(t);
      alone.push(got);
    }
    expect(alone[0]).toHaveLength(12);
    const both = await Promise.all([1, 2].map(async (seed) => {
      const got: number[] = [];
      for await (const t of mixt.generate(m, prompt, { maxTokens: 12, seed, topP: 0.9 })) got.push(t);
      return got;
    }));
    expect(both).toEqual(alone);
    const ac = new AbortController();
    const cut: number[] = [];
    for await (const t of m.generate(prompt, { maxTokens: 50, seed: 3, signal: ac.signal })) {
      cut.push(t);
      if (cut.length === 4) ac.abort();
    }
    expect(cut).toHaveLength(4);
    const s = await m.score([[1, 20, 21, 22, 40, 41], [1, 30, 31]]);
    expect(s.sequences[0].logProbs).toHaveLength(5);
    expect(s.modalities.reduce((a, x) => a + x.tokens, 0)).toBe(7);
    for (const lp of s.sequences.flatMap((q) => Array.from(q.logProbs))) expect(lp).toBeLessThan(0);
    await expect(m.generate([999]).next()).rejects.toThrow(/generate: argument "prompt"/);
  });
});
