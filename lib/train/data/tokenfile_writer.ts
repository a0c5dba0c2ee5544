// Streaming output of a token file (the layout is in tokenfile.ts): each section goes to a temporary
// file as documents arrive, and finish() writes the header and concatenates the sections in place.
import * as fs from 'fs';
import { Header, bytesOf, pad8, prefix, u64s } from './tokenfile';
import { VocabSpec, checkVocab, modalityLookup } from './vocab';

// Appends typed arrays to a temporary file through a buffer (the packer's output streams to disk).
class Spool {
  readonly #fd: number;
  readonly #buf = Buffer.alloc(1 << 20);
  #used = 0;
  bytes = 0;
  constructor(readonly file: string) {
    this.#fd = fs.openSync(file, 'w');
  }
  write(b: Buffer): void {
    if (this.#used + b.length > this.#buf.length) this.flush();
    if (b.length > this.#buf.length) fs.writeSync(this.#fd, b);
    else {
      b.copy(this.#buf, this.#used);
      this.#used += b.length;
    }
    this.bytes += b.length;
  }
  flush(): void {
    if (this.#used) fs.writeSync(this.#fd, this.#buf, 0, this.#used);
    this.#used = 0;
  }
  close(): void {
    this.flush();
    fs.closeSync(this.#fd);
  }
}

type Section = 'tokens' | 'modality' | 'docs' | 'spans' | 'patches';

// Writes a token file document by document without holding it in memory: sections go to temporary
// files, and finish() writes the header and concatenates them into place atomically.
export class TokenFileWriter {
  readonly #tmp: string;
  readonly #spools: Record<Section, Spool>;
  readonly #modOf: (t: number) => number;
  tokens = 0;
  documents = 0;
  spans = 0;
  patchRows = 0;

  constructor(readonly path: string, readonly vocab: VocabSpec, readonly patchDim = 0) {
    checkVocab(vocab);
    this.#tmp = `${path}.tmp-${process.pid}`;
    const s = (k: string) => new Spool(`${this.#tmp}.${k}`);
    this.#spools = { tokens: s('tokens'), modality: s('modality'), docs: s('docs'), spans: s('spans'), patches: s('patches') };
    this.#spools.docs.write(u64s([0]));
    this.#modOf = modalityLookup(vocab);
  }

  // One document: token ids, image spans relative to its start, and (continuous) one patch row per
  // span token, in order.
  add(tokens: number[], spans: [number, number][] = [], patches?: Float32Array): void {
    const mods = new Uint8Array(tokens.length);
    tokens.forEach((t, i) => {
      const m = this.#modOf(t);
      if (m < 0) throw new RangeError(`TokenFileWriter.add: token ${t} lies in no modality of the vocabulary`);
      mods[i] = m;
    });
    const sp = this.#spools;
    sp.tokens.write(bytesOf(Int32Array.from(tokens)));
    sp.modality.write(Buffer.from(mods.buffer));
    for (const [a, b] of spans) sp.spans.write(u64s([this.tokens + a, this.tokens + b]));
    if (patches?.length) {
      sp.patches.write(bytesOf(patches));
      this.patchRows += patches.length / this.patchDim;
    }
    this.spans += spans.length;
    this.tokens += tokens.length;
    this.documents++;
    sp.docs.write(u64s([this.tokens]));
  }

  finish(): void {
    for (const s of Object.values(this.#spools)) s.close();
    const h: Header = {
      vocab: this.vocab, tokens: this.tokens, documents: this.documents,
      ...(this.spans ? { spans: this.spans } : {}), ...(this.patchRows ? { patchDim: this.patchDim, patchRows: this.patchRows } : {}),
    };
    const pre = prefix(h);
    const fd = fs.openSync(this.#tmp, 'w');
    try {
      fs.writeSync(fd, pre);
      this.#append(fd, 'tokens');
      this.#append(fd, 'modality');
      fs.writeSync(fd, Buffer.alloc(pad8(pre.length + 5 * this.tokens) - (pre.length + 5 * this.tokens)));
      this.#append(fd, 'docs');
      this.#append(fd, 'spans');
      this.#append(fd, 'patches');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(this.#tmp, this.path);
  }

  abort(): void {
    for (const s of Object.values(this.#spools)) {
      try {
        s.close();
      } catch { /* already closed */ }
      fs.rmSync(s.file, { force: true });
    }
    fs.rmSync(this.#tmp, { force: true });
  }

  #append(fd: number, key: Section): void {
    const file = `${this.#tmp}.${key}`;
    const src = fs.openSync(file, 'r');
    const chunk = Buffer.alloc(4 << 20);
    try {
      for (let n; (n = fs.readSync(src, chunk, 0, chunk.length, null)) > 0;) fs.writeSync(fd, chunk, 0, n);
    } finally {
      fs.closeSync(src);
      fs.rmSync(file, { force: true });
    }
  }
}
