// One model, one computation at a time: training steps, generation steps and scoring share the
// layers' saved activations, so requests from several callers are queued in arrival order and
// never interleave inside a step.
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.#tail.then(fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}
