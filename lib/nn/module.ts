// Layers own their parameters and the activations their backward needs (llm.c style): forward()
// saves, backward() consumes and frees them and accumulates parameter gradients.
import { Tensor } from '../core/tensor';
import { Parameter } from './parameter';

export abstract class Module {
  abstract parameters(): Parameter[];

  // Frees saved activations (after backward, or when a forward is abandoned).
  abstract clearSaved(): void;

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  dispose(): void {
    this.clearSaved();
    for (const p of this.parameters()) p.dispose();
  }
}

// A handle that keeps x's storage alive for a later backward, whatever the caller does with x.
export function keep(x: Tensor): Tensor {
  return x.reshape([...x.shape]);
}

// Disposes every tensor in a saved-activations record and empties it.
export function release<T extends object>(saved: T | null): null {
  if (saved) {
    for (const v of Object.values(saved)) {
      if (v instanceof Tensor) v.dispose();
    }
  }
  return null;
}
