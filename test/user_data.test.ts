// Bring your own data: a generated folder of captioned PNGs plus a text file are packed with a
// tokenizer.json written here, a tiny model trains on them, and samples go both ways (caption ->
// picture judged by a pixel classifier; picture -> caption). Broken inputs get clear messages.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import { runTrain } from '../lib/cli/train';
import { captionForPicture, modelCodec, pictureForCaption, textContinuation } from '../lib/cli/prompt';
import { loadModel } from '../lib/cli/sample';
import { evaluate } from '../lib/train/evaluate';
import { packInputs } from '../lib/train/data/pack';
import { readTokenFile } from '../lib/train/data/tokenfile';
import { tokenizerFromArgument } from '../lib/train/data/tokenizer';
import { COLOURS, SHAPES, classifyColour, drawPicture, writeImageFolder } from './user_images';

const root = path.resolve(__dirname, '..');
const WORDS = ['a', 'red', 'green', 'blue', 'yellow', 'square', 'disc', 'the', 'sun', 'is', 'warm', 'and', 'sky', 'wide', '.'];

// A Hugging Face tokenizer.json: word level, lower-cased, split on whitespace and punctuation.
function writeTokenizerJson(file: string): void {
  const vocab: Record<string, number> = { '[UNK]': 0 };
  WORDS.forEach((w, i) => (vocab[w] = i + 1));
  fs.writeFileSync(file, JSON.stringify({
    version: '1.0', added_tokens: [], normalizer: { type: 'Lowercase' }, pre_tokenizer: { type: 'Whitespace' },
    post_processor: null, decoder: { type: 'WordPiece', prefix: '##', cleanup: true }, model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
  }));
}

function mixt(args: string[]): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [path.join(root, 'bin', 'mixt.js'), ...args], { encoding: 'utf8', stdio: 'pipe' });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { status: err.status, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('bring your own data', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-byod-'));
  const images = path.join(dir, 'images');
  const tok = path.join(dir, 'tokenizer.json');
  const text = path.join(dir, 'notes.txt');
  writeImageFolder(images, 20);
  // a truncated PNG among the pictures: reported, the run goes on
  const good = drawPicture('red', 'square', 999);
  fs.mkdirSync(path.join(images, 'red_square'), { recursive: true });
  fs.writeFileSync(path.join(images, 'red_square', 'truncated.png'), good.subarray(0, good.length >> 1));
  writeTokenizerJson(tok);
  fs.writeFileSync(text, 'the sun is warm .\n\nthe sky is wide .\n\nthe sun is warm and the sky is wide .\n');
  const docs = path.join(dir, 'docs.jsonl');
  fs.writeFileSync(docs, [
    JSON.stringify({ segments: [{ text: 'a blue disc' }, { image: 'images/blue_disc/0.png' }] }),
    JSON.stringify({ segments: [{ text: 'a red disc' }, { image: 'missing.png' }] }),
    JSON.stringify({ segments: [null] }),
    '{not json',
  ].join('\n'));

  test('pack -> train -> caption to picture and picture to caption, above chance', async () => {
    const out = path.join(dir, 'train.mixt'), held = path.join(dir, 'held.mixt');
    const r = await packInputs({ inputs: [images, text, docs], out, evalOut: held, heldOut: 0.1, tokenizer: tok, seed: 3, threads: 0 });
    // every broken input is reported with its path and reason
    const reasons = r.skipped.map((s) => `${s.source}: ${s.reason}`).join('\n');
    expect(reasons).toMatch(/truncated\.png: .*cannot decode/);
    expect(reasons).toMatch(/missing\.png: file not found/);
    expect(reasons).toMatch(/docs\.jsonl:3: segments\[0\] must be an object/);
    expect(reasons).toMatch(/docs\.jsonl:4: not JSON/);
    expect(r.skipped.length).toBe(4);
    expect(r.images.broken).toBe(2);
    const ds = readTokenFile(out);
    expect(ds.vocab.modalities.map((m) => m.name)).toEqual(['text', 'image']);
    expect(ds.spans!.length / 2).toBeGreaterThan(100); // every picture is an image span
    expect(r.eval!.documents).toBeGreaterThan(5);
    // deterministic: the same inputs and seed give the same bytes
    const again = path.join(dir, 'again.mixt');
    await packInputs({ inputs: [images, text, docs], out: again, evalOut: path.join(dir, 'again-held.mixt'), heldOut: 0.1, tokenizer: tok, seed: 3, threads: 0 });
    expect(fs.readFileSync(again).equals(fs.readFileSync(out))).toBe(true);

    const run = path.join(dir, 'run');
    const cfg = path.join(dir, 'model.json');
    fs.writeFileSync(cfg, JSON.stringify({ dModel: 64, layers: 2, heads: 4, kvHeads: 2, ffnHidden: 128, maxSeqLen: 160 }));
    await runTrain({ preset: 'tiny', data: out, config: cfg, steps: 200, batch: 8, seq: 160, lr: 6e-3, out: run, seed: 1, device: 'cpu', quiet: true });
    const model = await loadModel(run, 'cpu', true);
    const codec = modelCodec(model)!;
    expect(codec.tokenizer.spec.kind).toBe('hf');

    // caption -> picture: the classifier sees the asked colour above chance (1 in 4; 8 of 16 or more
    // happens by chance with probability 0.027)
    let hits = 0, n = 0;
    for (const colour of Object.keys(COLOURS)) {
      for (let s = 0; s < 4; s++) {
        const rgb = await pictureForCaption(model, codec, `a ${colour} ${SHAPES[s % 2]}`, { temperature: 0.3, seed: 10 + s });
        if (classifyColour(rgb) === colour) hits++;
        n++;
      }
    }
    expect(hits / n).toBeGreaterThanOrEqual(0.5);
    // picture -> caption: the caption names the picture's colour above chance
    let named = 0;
    const colours = Object.keys(COLOURS);
    for (let k = 0; k < 8; k++) {
      const f = path.join(dir, `probe-${k}.png`);
      fs.writeFileSync(f, drawPicture(colours[k % 4], SHAPES[k % 2], 5000 + k));
      const caption = await captionForPicture(model, codec, f, { temperature: 0, seed: 1 });
      if (caption.split(/\s+/).includes(colours[k % 4])) named++;
    }
    expect(named / 8).toBeGreaterThan(0.5);
    // held-out loss on the user's data
    const rep = await evaluate(model, readTokenFile(held), { batch: 4, seqLen: 160, batches: 2 });
    expect(rep.modalities[1].loss).toBeLessThan(Math.log(64));
    model.dispose?.();
  }, 120000);

  test('tokenizers: tokenizer.json, tiktoken encodings, bytes; an unknown tokenizer file is a clear error', () => {
    const hf = tokenizerFromArgument(tok);
    expect(hf.decode(hf.encode('The sun is warm.'))).toBe('the sun is warm.');
    const cl = tokenizerFromArgument('tiktoken:cl100k_base');
    expect(cl.size).toBe(100277);
    expect(cl.decode(cl.encode('héllo <|endoftext|> wörld'))).toBe('héllo <|endoftext|> wörld');
    const b = tokenizerFromArgument('bytes');
    expect(b.decode(b.encode('ünïcode'))).toBe('ünïcode');
    expect(() => tokenizerFromArgument(path.join(dir, 'nope.json'))).toThrow(/nope\.json: cannot read the file \(ENOENT\)/);
    const notTok = path.join(dir, 'not-a-tokenizer.json');
    fs.writeFileSync(notTok, '{"hello": 1}');
    expect(() => tokenizerFromArgument(notTok)).toThrow(/not-a-tokenizer\.json: not a Hugging Face tokenizer\.json/);
    expect(() => tokenizerFromArgument('tiktoken:nope')).toThrow(/unknown tiktoken encoding "nope"/);
  });

  test('CLI: an unknown tokenizer file stops the run with its name; a token-file header claiming a huge vocabulary fails at once', () => {
    const r = mixt(['data', 'pack', text, '--out', path.join(dir, 'x.mixt'), '--tokenizer', path.join(dir, 'nope.json')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--tokenizer .*nope\.json: cannot read the file/);
    expect(fs.existsSync(path.join(dir, 'x.mixt'))).toBe(false);
    const ok = mixt(['data', 'pack', text, path.join(dir, 'bytes.mixt')]);
    expect(ok.stdout).toMatch(/packed 3 documents/);
    // a header that claims vocab.size 3e9 and a billion tokens: refused at once, naming the field
    const f = path.join(dir, 'huge.mixt');
    const h = Buffer.from(JSON.stringify({ vocab: { size: 3e9, modalities: [{ name: 'text', range: [0, 3e9] }] }, tokens: 1e9, documents: 1 }));
    const buf = Buffer.alloc(64 + h.length);
    buf.write('MIXTTOK\0', 'latin1');
    buf.writeUInt32LE(1, 8);
    buf.writeUInt32LE(h.length, 12);
    h.copy(buf, 16);
    fs.writeFileSync(f, buf);
    const t0 = Date.now();
    const info = mixt(['data', 'info', f]);
    expect(info.status).toBe(1);
    expect(info.stderr).toMatch(/huge\.mixt.*"size" must be an integer in \[2, 2147483647\], received 3000000000/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('bring your own data: other paths', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-byod2-'));
  const cfg = path.join(dir, 'model.json');
  fs.writeFileSync(cfg, JSON.stringify({ dModel: 32, layers: 1, heads: 2, kvHeads: 1, ffnHidden: 64, maxSeqLen: 96 }));

  test('JPEG and a captions.csv; continuous pictures (Transfusion): pack, train, draw a picture for a caption', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const jpeg = require('jpeg-js');
    const imgs = path.join(dir, 'jpegs');
    fs.mkdirSync(imgs);
    const rows = ['file,caption'];
    for (let i = 0; i < 8; i++) {
      const png = PNG.sync.read(drawPicture(i % 2 ? 'blue' : 'red', 'square', i, 24));
      fs.writeFileSync(path.join(imgs, `${i}.jpg`), jpeg.encode({ data: png.data, width: 24, height: 24 }, 90).data);
      rows.push(`${i}.jpg,"a ${i % 2 ? 'blue' : 'red'}, square"`);
    }
    fs.writeFileSync(path.join(imgs, 'captions.csv'), rows.join('\n'));
    const out = path.join(dir, 'tf.mixt');
    const r = await packInputs({ inputs: [imgs], out, objective: 'transfusion', imageSize: 8, patch: 2, threads: 0 });
    expect(r.skipped).toEqual([]);
    expect(r.images.decoded).toBe(8);
    const ds = readTokenFile(out);
    expect(ds.patchDim).toBe(12);
    expect(ds.patches!.length).toBe(16 * 12 * 16); // 8 pictures x 2 directions x 16 patches
    expect(Math.max(...ds.patches!)).toBeLessThanOrEqual(1);
    const run = path.join(dir, 'tf-run');
    await runTrain({ preset: 'tiny', objective: 'transfusion', data: out, config: cfg, steps: 4, batch: 2, seq: 96, out: run, seed: 1, device: 'cpu', quiet: true });
    const model = await loadModel(run, 'cpu', true);
    const codec = modelCodec(model)!;
    const rgb = await pictureForCaption(model, codec, 'a red, square', { temperature: 1, seed: 1, steps: 3 });
    expect(rgb.length).toBe(8 * 8 * 3);
    await expect(captionForPicture(model, codec, path.join(imgs, '0.jpg'), { temperature: 0, seed: 1 })).rejects.toThrow(/Transfusion model/);
  }, 60000);

  test('a text model continues text through its tokenizer (tiktoken)', async () => {
    const txt = path.join(dir, 'story.txt');
    fs.writeFileSync(txt, Array.from({ length: 30 }, (_, i) => `line ${i} of the story.\n${i % 3 === 0 ? '\n' : ''}`).join(''));
    const out = path.join(dir, 'text.mixt');
    const r = await packInputs({ inputs: [txt], out, tokenizer: 'tiktoken:gpt2' });
    expect(r.vocab.modalities.map((m) => m.name)).toEqual(['text']);
    expect(r.vocab.size).toBe(50257 + 4);
    const ds = readTokenFile(out);
    expect(ds.docOffsets.length - 1).toBe(11); // paragraphs: [0], [1-3], ..., [25-27], [28-29]
    const run = path.join(dir, 'text-run');
    await runTrain({ preset: 'tiny', data: out, config: cfg, steps: 2, batch: 2, seq: 64, out: run, seed: 1, device: 'cpu', quiet: true });
    const model = await loadModel(run, 'cpu', true);
    const codec = modelCodec(model)!;
    expect(codec.image).toBeNull();
    const text = await textContinuation(model, codec, 'line 3 of', { temperature: 1, seed: 2, maxTokens: 4 });
    expect(typeof text).toBe('string');
    await expect(pictureForCaption(model, codec, 'x', { temperature: 1, seed: 1 })).rejects.toThrow(/no image modality/);
  }, 60000);
});
