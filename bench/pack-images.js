#!/usr/bin/env node
// Packing throughput: writes N small captioned PNGs (an ImageFolder of 8 classes) into a temporary
// folder, then times `mixt data pack` on them (images/s, decoding on worker threads) and prints one
// JSON line. Usage: node bench/pack-images.js [N=10000] [threads]
// (needs the compiled package: npm run build:ts)
const fs = require('fs');
const os = require('os');
const path = require('path');
const { PNG } = require('pngjs');
const { packInputs } = require('../dist/train/data/pack');

const N = Number(process.argv[2] ?? 10000);
const threads = process.argv[3] !== undefined ? Number(process.argv[3]) : undefined;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-pack-bench-'));
const colours = [[220, 30, 30], [30, 200, 50], [40, 70, 230], [235, 220, 40]];
for (let i = 0; i < N; i++) {
  const cls = i % 8, sub = path.join(dir, 'images', `class_${cls}`);
  if (i < 8) fs.mkdirSync(sub, { recursive: true });
  const png = new PNG({ width: 32, height: 32 });
  for (let p = 0; p < 32 * 32; p++) {
    const on = ((p % 32) + Math.floor(p / 32) + i) % (cls + 2) === 0;
    const c = on ? colours[cls % 4] : [i % 40, i % 40, i % 40];
    png.data.set([...c, 255], p * 4);
  }
  fs.writeFileSync(path.join(sub, `${i}.png`), PNG.sync.write(png));
}
(async () => {
  const t0 = performance.now();
  let documentsFrom = 0; // when the second pass (tokenizing, writing) starts: decoding and the codebook are done
  const r = await packInputs({
    inputs: [path.join(dir, 'images')], out: path.join(dir, 'out.mixt'), threads,
    onProgress: (p) => { if (p.phase === 'documents' && !documentsFrom) documentsFrom = p.seconds; },
  });
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    bench: 'pack-images', images: r.images.decoded, broken: r.images.broken, threads: r.images.threads, cpus: os.availableParallelism(),
    decodeSeconds: +r.images.seconds.toFixed(2), imagesPerSecondDecode: Math.round(r.images.decoded / r.images.seconds),
    codebookSeconds: +(documentsFrom - r.images.seconds).toFixed(2), totalSeconds: +s.toFixed(2), imagesPerSecond: Math.round(r.images.decoded / s), tokens: r.train.tokens, date: new Date().toISOString().slice(0, 10),
  }));
  fs.rmSync(dir, { recursive: true, force: true });
})();
