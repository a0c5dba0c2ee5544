// `mixt eval`: per-modality loss and accuracy of a checkpoint on held-out data, each beside the
// unigram baseline (the loss of a model that ignores context), with what the split holds out.
import { Command } from 'commander';
import { unigramEntropy } from '../train/data/dataset';
import { HELD_OUT_PAIRS } from '../train/data/shapes';
import { evaluate } from '../train/evaluate';
import { fmt, intOption, predictionName, table } from './common';
import { loadModel } from './sample';
import { loadData } from './train';

interface EvalCliOptions {
  checkpoint: string;
  data?: string;
  batches: number;
  batch: number;
  seq: number;
  device?: string;
  json?: boolean;
}

// What the evaluated data holds, in words, and what its unigram baseline is measured against.
export function splitDescription(dataFile?: string): { split: string; baseline: string } {
  if (dataFile) {
    return { split: `the token file ${dataFile}`, baseline: 'unigram baseline: the entropy of the file\'s own token frequencies (a model ignoring context reaches it)' };
  }
  return {
    split:
      `held-out split of the embedded corpus: documents about the pictures of the (shape, colour) pairs ${HELD_OUT_PAIRS}, ` +
      'never seen in training (every shape and every colour was, with other partners), in all four document kinds ' +
      '(caption -> picture, picture -> caption, caption -> melody, melody -> caption)',
    baseline: 'unigram baseline: the loss of predicting each token from its frequency in the training split, ignoring context; ' +
      'below it, the model has learned to compose the parts of pictures it never saw',
  };
}

export async function runEval(o: EvalCliOptions): Promise<void> {
  const model = await loadModel(o.checkpoint, o.device, o.json);
  // A Transfusion model is judged on continuous pictures (its diffusion loss), not picture tokens.
  const objective = model.cfg.transfusion ? 'transfusion' : 'ar';
  const data = loadData(o.data, objective, 'eval');
  const rep = await evaluate(model, data, { batch: o.batch, seqLen: Math.min(o.seq, model.cfg.maxSeqLen), batches: o.batches });
  const baseline = unigramEntropy(data, o.data ? data : loadData(undefined, objective, 'train'));
  const about = splitDescription(o.data);
  if (o.json) {
    const modalities = rep.modalities.map((r, i) => ({ ...r, unigramBaseline: baseline[i] }));
    console.log(JSON.stringify({ type: 'eval', split: about.split, modalities, diffusionLoss: rep.diffusionLoss }));
    return;
  }
  const t = table(['modality', 'loss', 'unigram baseline', 'accuracy', 'targets']);
  rep.modalities.forEach((r, i) =>
    t.push(r.targets ? [r.name, fmt(r.loss), fmt(baseline[i]), `${(100 * r.accuracy).toFixed(1)}%`, String(r.targets)] : [r.name, '-', '-', '-', rep.diffusionLoss !== undefined ? '0 (diffusion)' : '0']),
  );
  console.log(`${about.split}\n${t.toString()}\n${about.baseline}`);
  if (rep.diffusionLoss !== undefined) {
    console.log(`diffusion (MSE of the ${predictionName(model.cfg)} prediction on held-out pictures): ${fmt(rep.diffusionLoss)}`);
  }
}

export function evalCommand(): Command {
  return new Command('eval')
    .description("per-modality loss on held-out data beside the unigram baseline (default: the embedded corpus's held-out shape/colour pairs)")
    .option('--checkpoint <dir>', 'checkpoint or run directory', 'runs/tiny')
    .option('--data <file>', 'a packed token file (.mixt)')
    .option('--batches <n>', 'batches to evaluate', intOption('--batches'), 8)
    .option('--batch <n>', 'sequences per batch', intOption('--batch'), 4)
    .option('--seq <n>', 'sequence length', intOption('--seq'), 256)
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N'")
    .option('--json', 'JSON output')
    .action(runEval);
}
