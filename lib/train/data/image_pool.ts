// Decodes images in parallel on worker_threads (decoding PNG/JPEG in JS is CPU-bound). Where the
// compiled worker script is not beside this file (running from TypeScript sources), or with
// threads = 0, it decodes on the calling thread.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { ImageInputError, loadImageFile } from './image_decode';

type Reply = { id: number; rgb?: Uint8Array; error?: string };
interface Pending { resolve: (v: Uint8Array) => void; reject: (e: Error) => void; file: string; worker: number }

export class ImagePool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #load: number[] = [];
  #next = 0;

  constructor(readonly size: number, threads = Math.max(1, Math.min(8, os.availableParallelism() - 1))) {
    const script = path.join(__dirname, 'image_worker.js');
    if (!fs.existsSync(script)) threads = 0;
    for (let i = 0; i < threads; i++) {
      const w = new Worker(script);
      w.on('message', (r: Reply) => this.#settle(r));
      w.on('error', (e) => this.#failWorker(i, e));
      this.#workers.push(w);
      this.#load.push(0);
    }
    this.#threads = this.#workers.length;
  }

  #threads = 0;
  get threads(): number {
    return this.#threads;
  }

  // RGB pixels [size * size * 3] of the file, or an ImageInputError naming it and why.
  decode(file: string): Promise<Uint8Array> {
    if (!this.#workers.length) {
      try {
        return Promise.resolve(loadImageFile(file, this.size).rgb);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const id = this.#next++;
    const wi = this.#load.indexOf(Math.min(...this.#load));
    if (!Number.isFinite(this.#load[wi])) return Promise.reject(new ImageInputError(file, 'every decoding thread has failed'));
    this.#load[wi]++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, file, worker: wi });
      this.#workers[wi].postMessage({ id, file, size: this.size });
    });
  }

  #settle(r: Reply): void {
    const p = this.#pending.get(r.id);
    if (!p) return;
    this.#pending.delete(r.id);
    this.#load[p.worker]--;
    if (r.error !== undefined) p.reject(new ImageInputError(p.file, r.error));
    else p.resolve(r.rgb!);
  }

  #failWorker(wi: number, e: Error): void {
    this.#load[wi] = Infinity; // a failed worker takes no more jobs
    for (const [id, p] of this.#pending) {
      if (p.worker !== wi) continue;
      this.#pending.delete(id);
      p.reject(new ImageInputError(p.file, `the decoding thread failed (${e.message})`));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
    this.#workers.length = 0;
  }
}
