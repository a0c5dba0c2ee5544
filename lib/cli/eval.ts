// `mixt eval`: per-modality loss and accuracy of a checkpoint on held-out data.
import { Command } from 'commander';
import Table from 'cli-table3';
import { unigramEntropy } from '../train/data/dataset';
import { evaluate } from '../train/evaluate';
import { fmt, intOption } from './common';
import { loadModel } from './sample';
import { loadData } from './train';

export function evalCommand(): Command {
  return new Command('eval')
    .description('per-modality loss on held-out data (default: the embedded corpus\'s held-out shape/colour pairs)')
    .option('--checkpoint <dir>', 'checkpoint or run directory', 'runs/tiny')
    .option('--data <file>', 'a packed token file (.mixt)')
    .option('--batches <n>', 'batches to evaluate', intOption('--batches'), 8)
    .option('--batch <n>', 'sequences per batch', intOption('--batch'), 4)
    .option('--seq <n>', 'sequence length', intOption('--seq'), 256)
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N'")
    .option('--json', 'JSON output')
    .action(async (o: { checkpoint: string; data?: string; batches: number; batch: number; seq: number; device?: string; json?: boolean }) => {
      const model = loadModel(o.checkpoint, o.device, o.json);
      // A Transfusion model is judged on continuous pictures (its diffusion loss), not picture tokens.
      const data = loadData(o.data, model.cfg.transfusion ? 'transfusion' : 'ar', 'eval');
      const rep = await evaluate(model, data, { batch: o.batch, seqLen: Math.min(o.seq, model.cfg.maxSeqLen), batches: o.batches });
      const h = unigramEntropy(data);
      if (o.json) {
        console.log(JSON.stringify({ type: 'eval', modalities: rep.modalities.map((r, i) => ({ ...r, unigramEntropy: h[i] })), diffusionLoss: rep.diffusionLoss }));
        return;
      }
      const t = new Table({ head: ['modality', 'loss', 'accuracy', 'unigram entropy', 'targets'] });
      rep.modalities.forEach((r, i) =>
        t.push(r.targets ? [r.name, fmt(r.loss), `${(100 * r.accuracy).toFixed(1)}%`, fmt(h[i]), String(r.targets)] : [r.name, '-', '-', '-', rep.diffusionLoss !== undefined ? '0 (diffusion)' : '0']),
      );
      console.log(t.toString());
      if (rep.diffusionLoss !== undefined) console.log(`diffusion (MSE of the noise prediction on held-out pictures): ${fmt(rep.diffusionLoss)}`);
    });
}
