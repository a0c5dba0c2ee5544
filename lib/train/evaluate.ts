// Held-out evaluation: mean cross-entropy and accuracy per modality over a number of packed batches,
// and for a Transfusion model the diffusion loss (MSE of the network's prediction) on held-out pictures.
import { Generator } from '../core/random';
import { Model } from '../model/model';
import { TokenDataset } from './data/dataset';
import { PackedLoader } from './data/loader';
import { ModalityReport, deviceBatch, stepInputs } from './trainer';

export interface EvalReport {
  modalities: ModalityReport[];
  diffusionLoss?: number; // Transfusion: mean over the batches, noise and timesteps drawn from a fixed seed
}

export async function evaluate(model: Model, data: TokenDataset, opts: { batch: number; seqLen: number; batches: number; seed?: number }): Promise<EvalReport> {
  const M = model.modalities;
  const loader = new PackedLoader(data, opts.seqLen, opts.batch, opts.seed ?? 12345, 0, model.cfg.transfusion);
  const noise = new Generator((opts.seed ?? 12345) * 2 + 1); // the same draws for every checkpoint: comparable numbers
  const sums = new Float64Array(M), counts = new Float64Array(M), correct = new Float64Array(M);
  let diffusion = 0, diffusionParts = 0;
  for (let b = 0; b < opts.batches; b++) {
    const hb = loader.next();
    const batch = deviceBatch(hb, M, model.device);
    const st = model.forward(stepInputs(hb, batch, new Float32Array(hb.tokens.length), { weight: 0, noise }));
    model.clearSaved();
    const [l, c, k] = await Promise.all([st.lossSums.toArray(), st.counts.toArray(), st.correct.toArray()]);
    if (st.diffusion) {
      diffusion += await st.diffusion.item();
      diffusionParts++;
    }
    st.dispose();
    batch.dispose();
    for (let m = 0; m < M; m++) {
      sums[m] += l[m];
      counts[m] += c[m];
      correct[m] += k[m];
    }
  }
  const modalities = model.cfg.modalities.map((mod, m) => ({
    name: mod.name,
    loss: counts[m] ? sums[m] / counts[m] : NaN,
    accuracy: counts[m] ? correct[m] / counts[m] : NaN,
    targets: counts[m],
  }));
  return { modalities, ...(diffusionParts ? { diffusionLoss: diffusion / diffusionParts } : {}) };
}
