// One model, one computation at a time: training steps, generation steps and scoring share the
// layers' saved activations, so work from several callers is queued and never interleaves inside
// a step. Two lanes: inference steps ('high') go ahead of waiting training steps ('low'), so a
// request waits for at most the step in progress, not for a training run.
type Job = () => Promise<void>;

export class SerialQueue {
  #lanes: { high: Job[]; low: Job[] } = { high: [], low: [] };
  #busy = false;

  run<T>(fn: () => Promise<T> | T, lane: 'high' | 'low' = 'high'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#lanes[lane].push(async () => {
        try {
          resolve(await fn());
        } catch (e) {
          reject(e);
        }
      });
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (let job = this.#next(); job; job = this.#next()) await job();
    } finally {
      this.#busy = false;
    }
  }

  #next(): Job | undefined {
    return this.#lanes.high.shift() ?? this.#lanes.low.shift();
  }
}
