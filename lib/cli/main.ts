// The `mixt` command line.
import { Command } from 'commander';
import { benchCommand } from './bench';
import { compareCommand } from './compare';
import { dataCommand } from './data';
import { evalCommand } from './eval';
import { printInspect } from './inspect';
import { sampleCommand } from './sample';
import { trainCommand } from './train';

export function program(): Command {
  const p = new Command();
  p.name('mixt').description('Train sparse multimodal transformers (MoT, MoD, MoE) from Node.js').version(require('../../package.json').version);
  p.command('inspect')
    .description('build flags, CUDA archs, devices, driver and runtime versions, and why CUDA is unusable if so')
    .option('--json', 'one JSON document')
    .action((o: { json?: boolean }) => printInspect(!!o.json));
  p.addCommand(trainCommand());
  p.addCommand(sampleCommand());
  p.addCommand(evalCommand());
  p.addCommand(compareCommand());
  p.addCommand(dataCommand());
  p.addCommand(benchCommand());
  return p;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    const err = e as Error & { code?: string };
    console.error(`mixt: ${err.message}${err.code ? ` [${err.code}]` : ''}`);
    process.exitCode = 1;
  }
}
