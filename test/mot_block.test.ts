import * as mixt from '../lib';
import { Batch } from '../lib/nn/batch';
import { MoTBlock, NormPlacement } from '../lib/nn/mot_block';
import { GroupedSwiGLU } from '../lib/nn/ffn';
import { Device } from '../lib/core/device';
import { TOL, expectClose, randn, values } from './helpers';
import { checkGradient, checkParameterGradients, dot, f64 } from './gradcheck';

const T = 29, d = 12;
// three modalities, interleaved, in three documents; an image span in the second document
const modality = Int32Array.from({ length: T }, (_, i) => (i < 6 ? 0 : i < 15 ? 1 : i < 18 ? 0 : i < 23 ? 2 : 0));
const docIds = Int32Array.from({ length: T }, (_, i) => (i < 10 ? 0 : i < 24 ? 1 : 2));
const positions = Int32Array.from({ length: T }, (_, i) => i - (i < 10 ? 0 : i < 24 ? 10 : 24));
const spanIds = Int32Array.from({ length: T }, (_, i) => (i >= 6 && i < 10 ? 0 : i >= 12 && i < 15 ? 1 : -1));

function makeBlock(M: number, placement: NormPlacement, normKind: 'rms' | 'layer' = 'rms', qkNorm = true, seed = 1) {
  const init = { generator: new mixt.Generator(seed), device: Device.cpu, masterDtype: 'f64' as const };
  return new MoTBlock('layers.0', { dModel: d, heads: 4, kvHeads: 2, headDim: 4, ffnHidden: 10, modalities: M, normKind, placement, qkNorm, ropeTheta: 10000, layers: 2 }, init, 'f64');
}

function batch(M: number) {
  return new Batch({ modality: M === 1 ? new Int32Array(T) : modality, docIds, positions, spanIds }, M, Device.cpu);
}

// the block maps original-order rows: grouped in, grouped out
async function runBlock(block: MoTBlock, b: Batch, x: Float64Array): Promise<{ y: Float64Array; yT: mixt.Tensor }> {
  const xg = b.toGrouped(f64(x, [T, d]));
  const yg = block.forward(xg, b);
  const y = b.toOriginal(yg);
  return { y: await values(y), yT: yg };
}

describe('MoTBlock', () => {
  for (const placement of ['pre', 'post'] as NormPlacement[]) {
    for (const normKind of ['rms', 'layer'] as const) {
      test(`gradients of input and parameters pass finite differences (${placement}-norm, ${normKind}, M=3, GQA, QK-norm, spans)`, async () => {
        const block = makeBlock(3, placement, normKind);
        const b = batch(3);
        const x = randn(T * d, 2), r = randn(T * d, 3);
        const rg = await values(b.toGrouped(f64(r, [T, d])));
        const loss = async (xx: Float64Array) => {
          const xg = b.toGrouped(f64(xx, [T, d]));
          const v = await dot(block.forward(xg, b), rg);
          block.clearSaved();
          return v;
        };
        const xg = b.toGrouped(f64(x, [T, d]));
        block.forward(xg, b);
        block.zeroGrad();
        const dxg = block.backward(f64(rg, [T, d]));
        const dx = await values(b.toOriginal(dxg));
        expect(await checkGradient(x, dx, loss, { probes: 16 })).toBeLessThan(1e-5);
        await checkParameterGradients(block.parameters(), () => loss(x), { probes: 4, eps: 1e-5, floor: 1e-4 });
      });
    }
  }

  test('a 3-modality block whose weights are copies of one set equals the dense block (M = 1)', async () => {
    for (const placement of ['pre', 'post'] as NormPlacement[]) {
      const dense = makeBlock(1, placement, 'rms', true, 5), mot = makeBlock(3, placement, 'rms', true, 6);
      const dp = dense.parameters(), mp = mot.parameters();
      for (let i = 0; i < dp.length; i++) {
        const w = await values(dp[i].value);
        const rep = new Float64Array(w.length * 3);
        for (let g = 0; g < 3; g++) rep.set(w, g * w.length);
        mp[i].load(f64(rep, [...mp[i].shape]));
      }
      const x = randn(T * d, 9);
      const yd = (await runBlock(dense, batch(1), x)).y;
      const ym = (await runBlock(mot, batch(3), x)).y;
      expectClose(ym, yd, TOL.f64, `${placement} MoT == dense`);
    }
  });

  test('untied weights: changing one modality\'s weights changes only that modality\'s rows in the first sub-layer', async () => {
    const block = makeBlock(3, 'pre');
    const b = batch(3);
    const x = randn(T * d, 10);
    const before = (await runBlock(block, b, x)).y;
    block.clearSaved();
    const ffn = (block.ffn as GroupedSwiGLU).wDown.weight;
    const w = await values(ffn.value);
    const per = w.length / 3;
    for (let i = 2 * per; i < 3 * per; i++) w[i] += 0.5; // modality 2's FFN output projection
    ffn.load(f64(w, [...ffn.shape]));
    const after = (await runBlock(block, b, x)).y;
    for (let i = 0; i < T; i++) {
      const row = (a: Float64Array) => Array.from(a.subarray(i * d, (i + 1) * d));
      if (modality[i] === 2) expect(row(after)).not.toEqual(row(before));
      else expect(row(after)).toEqual(row(before));
    }
  });
});
