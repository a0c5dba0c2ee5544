// The model: token embedding (shared), blocks, final norm (per modality or shared), LM head, and a fused,
// chunked LM-head cross-entropy whose loss and accuracy are reported per modality.
import { Device } from '../core/device';
import { DType } from '../core/dtype';
import { Generator } from '../core/random';
import { Tensor } from '../core/tensor';
import { Batch } from '../nn/batch';
import { InitContext, normalInit } from '../nn/init';
import { Block, MoTBlock } from '../nn/mot_block';
import { ModalityNorm } from '../nn/norm';
import { Parameter } from '../nn/parameter';
import {
  add, cast, gatherRows, groupSum, lmHeadCrossEntropy, lmHeadCrossEntropyBackward, matmul, randn, rowScale, scatterRows, sub, tensor,
} from '../ops';
import { ModelConfig, explicitConfig, finalNormGroups, modSettings, moeSettings, validateConfig } from './config';
import { assertModelFits, defaultComputeDtype } from './estimate';
import { MoDBlock } from '../nn/mod';
import { PatchDiffusion, alphaBar, timestepFeatures } from '../nn/diffusion';
import { MoEFeedForward, ModalityExpertFFN } from '../nn/moe';
import { ImagePosition, imageIndex } from '../nn/image_position';

export interface ModelOptions {
  device: Device;
  masterDtype?: DType; // f32 (f64 on the CPU for gradient checks)
  computeDtype?: DType; // bf16 on CUDA, the master dtype on the CPU
  seed?: number;
}

// What a training micro-batch needs on the device, in original token order.
export interface StepInputs {
  batch: Batch;
  tokens: Int32Array;
  targets: Int32Array; // -1: no target
  targetModality: Int32Array;
  lossWeights: Float32Array; // dLoss per token (0 where no target): weight / the weighted target count of the whole step
  // Transfusion: continuous image patches at `positions` (original order), noised on the device
  images?: {
    x0: Float32Array; // [P * patchDim] clean patches
    positions: Int32Array; // [P]
    timesteps: Int32Array; // [P] diffusion step of each patch's image
    weight: number; // multiplies lambda * MSE in the gradient (1 / accumulation steps)
    noise: Generator; // draws epsilon on the device
  };
}

export interface StepStats {
  lossSums: Tensor; // f32 [M] per-modality sums of token losses
  counts: Tensor; // f32 [M] targets per modality
  correct: Tensor; // f32 [M] correct argmax predictions per modality
  diffusion?: Tensor; // f32 [1] MSE of the noise prediction (Transfusion)
  dispose(): void;
}

interface Saved {
  ids: Tensor; // original-order token ids (the embedding's backward)
  targets: Tensor; // grouped targets
  dLoss: Tensor; // grouped loss weights
  hidden: Tensor; // final-normed hidden, grouped
  lse: Tensor;
  batch: Batch;
  diffusionWeight: number; // 0: no image path in this batch
}

export class Model {
  readonly cfg: ModelConfig;
  readonly device: Device;
  readonly masterDtype: DType;
  readonly computeDtype: DType;
  readonly embed: Parameter;
  readonly blocks: Block[];
  readonly finalNorm: ModalityNorm;
  readonly head: Parameter;
  readonly diffusion: PatchDiffusion | null;
  readonly imagePosition: ImagePosition | null;
  #saved: Saved | null = null;

  constructor(cfg: ModelConfig, opts: ModelOptions) {
    this.cfg = explicitConfig(validateConfig(cfg));
    this.device = opts.device;
    this.masterDtype = opts.masterDtype ?? 'f32';
    this.computeDtype = opts.computeDtype ?? defaultComputeDtype(this.device, this.masterDtype);
    assertModelFits(this.cfg, this.device, this.masterDtype, this.computeDtype);
    const init: InitContext = { generator: new Generator(opts.seed ?? 0), device: this.device, masterDtype: this.masterDtype };
    const M = cfg.modalities.length;
    this.embed = new Parameter('embed.weight', normalInit(init, [cfg.vocabSize, cfg.dModel], 0.02), 'embedding', this.computeDtype);
    this.blocks = cfg.blocks.map((kind, i) => this.makeBlock(kind, i, init));
    this.finalNorm = new ModalityNorm('final_norm', cfg.normKind, finalNormGroups(this.cfg), cfg.dModel, init, this.computeDtype);
    this.head = cfg.tieEmbeddings
      ? this.embed
      : new Parameter('lm_head.weight', normalInit(init, [cfg.vocabSize, cfg.dModel], 0.02), 'matrix', this.computeDtype);
    const tf = cfg.transfusion;
    this.diffusion = tf ? new PatchDiffusion('diffusion', cfg.dModel, tf.patchDim, tf.lambda, init, this.computeDtype) : null;
    const ip = cfg.imagePositions;
    this.imagePosition = ip ? new ImagePosition('image_pos', ip.size, cfg.dModel, init, this.computeDtype) : null;
  }

  private makeBlock(kind: ModelConfig['blocks'][number], i: number, init: InitContext): Block {
    const c = this.cfg;
    const M = c.modalities.length;
    const common = {
      dModel: c.dModel, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, ffnHidden: c.ffnHidden,
      normKind: c.normKind, placement: c.placement, qkNorm: c.qkNorm, ropeTheta: c.ropeTheta, layers: c.layers,
    };
    const name = `layers.${i}`;
    const moe = moeSettings(c);
    const block = (modalities: number, ffn?: ConstructorParameters<typeof MoTBlock>[1]['ffn']) =>
      new MoTBlock(name, { ...common, modalities, ffn }, init, this.computeDtype);
    const mod = (inner: Block) => new MoDBlock(name, inner, c.dModel, modSettings(c), init, this.computeDtype);
    switch (kind) {
      case 'mot': return block(M);
      case 'dense': return block(1);
      case 'mod': return mod(block(M));
      case 'moe': return block(1, { kind: 'moe', moe });
      case 'mode-staged': return mod(block(1, { kind: 'moe', moe }));
      case 'mode-integrated': return block(1, { kind: 'moe', moe: { ...moe, noop: true } });
      case 'mot+moe': {
        const m = Math.max(0, c.modalities.findIndex((x) => x.name === c.moeModality));
        return block(M, { kind: 'modality-moe', moe, modality: m });
      }
    }
  }

  get modalities(): number {
    return this.cfg.modalities.length;
  }

  parameters(): Parameter[] {
    const ps = [this.embed, ...this.blocks.flatMap((b) => b.parameters()), ...this.finalNorm.parameters()];
    if (this.head !== this.embed) ps.push(this.head);
    if (this.diffusion) ps.push(...this.diffusion.parameters());
    if (this.imagePosition) ps.push(...this.imagePosition.parameters());
    return ps;
  }

  // The routed layers, by layer index: Mixture-of-Depths routers and expert FFNs.
  routedLayers(): { layer: number; mod: MoDBlock | null; moe: MoEFeedForward | null }[] {
    return this.blocks.flatMap((b, layer) => {
      const mod = b instanceof MoDBlock ? b : null;
      const inner = mod ? mod.inner : b;
      const ffn = inner instanceof MoTBlock ? inner.ffn : null;
      const moe = ffn instanceof MoEFeedForward ? ffn : ffn instanceof ModalityExpertFFN ? ffn.moe : null;
      return mod || moe ? [{ layer, mod, moe }] : [];
    });
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  // Grouped-order hidden states after the final norm, from the inputs x (grouped order; consumed).
  private trunk(batch: Batch, input: Tensor): Tensor {
    let x = input;
    for (const b of this.blocks) {
      const y = b.forward(x, batch);
      x.dispose();
      x = y;
    }
    const h = this.finalNorm.forward(x, batch.rowIds(this.modalities));
    x.dispose();
    return h;
  }

  // Forward with the loss; saves what backward() needs. Statistics stay on the device.
  forward(inp: StepInputs): StepStats {
    this.clearSaved();
    const { batch } = inp;
    const dev = { device: this.device };
    const up = (a: Int32Array) => tensor(a, [a.length], { dtype: 'i32', ...dev });
    const grouped = (t: Tensor) => {
      const g = batch.toGrouped(t);
      t.dispose();
      return g;
    };
    const targets = grouped(up(inp.targets));
    const tmod = grouped(up(inp.targetModality));
    const lossDtype = this.computeDtype === 'f64' ? 'f64' : 'f32';
    const dLoss = grouped(tensor(Float64Array.from(inp.lossWeights), [inp.lossWeights.length], { dtype: lossDtype, ...dev }));
    const img = inp.images && this.diffusion && inp.images.positions.length ? inp.images : null;
    // the inputs in original order: token embeddings, picture positions, (Transfusion) noisy patches
    const ids = up(inp.tokens);
    const xo = this.embedTokens(ids, inp.tokens);
    const eps = img ? this.noisyInputs(xo, img) : null;
    const hidden = this.trunk(batch, grouped(xo));
    let mse: Tensor | undefined;
    if (eps) {
      const ho = batch.toOriginal(hidden);
      const epsHat = this.diffusion!.predict(ho);
      mse = this.diffusion!.mse(epsHat, eps);
      for (const t of [ho, epsHat, eps]) t.dispose();
    }
    const { loss, lse, correct } = lmHeadCrossEntropy(hidden, this.head.compute, targets);
    const valid = up(Int32Array.from(inp.targets, (t) => (t >= 0 ? 1 : 0)));
    const validG = grouped(valid);
    const M = this.modalities;
    const l = groupSum(loss, tmod, M, { mask: validG });
    const correctF = cast(correct, 'f32');
    const c = groupSum(correctF, tmod, M, { mask: validG });
    for (const t of [loss, correct, correctF, validG, tmod, c.counts]) t.dispose();
    this.#saved = { ids, targets, dLoss, hidden, lse, batch, diffusionWeight: img ? img.weight : 0 };
    return {
      lossSums: l.sums,
      counts: l.counts,
      correct: c.sums,
      ...(mse ? { diffusion: mse } : {}),
      dispose() {
        l.sums.dispose();
        l.counts.dispose();
        c.sums.dispose();
        mse?.dispose();
      },
    };
  }

  // Token embeddings [T, d] in original order (ids on the device, the same ids on the host), plus the
  // embedding of each image token's place in its picture.
  // Token embeddings (original order) plus, for image tokens, their place in the picture; `carry`
  // continues the picture count of a sequence fed in pieces (see imageIndex).
  embedTokens(ids: Tensor, tokens: Int32Array, carry?: { run: number }): Tensor {
    const x = gatherRows(this.embed.compute, ids);
    const ip = this.cfg.imagePositions;
    if (ip && this.imagePosition) {
      const range = this.cfg.modalities.find((m) => m.name === ip.modality)!.range;
      this.imagePosition.add(x, imageIndex(tokens, range, ip.size, carry));
    }
    return x;
  }

  // x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, eps drawn on the device; the projected patches and
  // timestep features are added to xo (original order). Returns the regression target: eps, v =
  // sqrt(abar) eps - sqrt(1 - abar) x0, or x0. In units of the clean picture's error, eps's loss
  // weighs it by abar / (1 - abar) (~0 at high noise, where only the caption says what to draw) and
  // v's by 1 / (1 - abar) (from 1 at high noise to ~100 at low noise, where v ~ eps must be matched
  // to the last digit and the picture is all but given): both spend the model on denoising. x0's
  // weighs every level alike (the tiny model's samples: the asked shape 25% of the time under v, 66%
  // under x0, 98% with timestepPower 2 and more caption -> picture documents besides; README).
  private noisyInputs(xo: Tensor, img: NonNullable<StepInputs['images']>): Tensor {
    const tf = this.cfg.transfusion!;
    const P = img.positions.length, pd = tf.patchDim, dev = { device: this.device };
    const cdt = this.computeDtype, sdt = cdt === 'f64' ? 'f64' : 'f32';
    const x0 = tensor(Float64Array.from(img.x0), [P, pd], { dtype: cdt, ...dev });
    const eps = randn([P, pd], { generator: img.noise, dtype: cdt, ...dev });
    const ab = Float64Array.from(img.timesteps, (t) => alphaBar(t, tf.timesteps));
    const a = tensor(ab.map(Math.sqrt), [P], { dtype: sdt, ...dev }), b = tensor(ab.map((v) => Math.sqrt(1 - v)), [P], { dtype: sdt, ...dev });
    const xa = rowScale(x0, a), eb = rowScale(eps, b);
    const noisy = add(xa, eb, xa);
    const tfeat = tensor(Float64Array.from(timestepFeatures(img.timesteps, tf.timesteps)), [P, 32], { dtype: cdt, ...dev });
    const pos = tensor(img.positions, [P], { dtype: 'i32', ...dev });
    this.diffusion!.embed(xo, noisy, tfeat, pos);
    let target = eps;
    if (tf.prediction === 'x0') {
      target = x0;
      eps.dispose();
    } else if (tf.prediction === 'v') {
      const ea = rowScale(eps, a), xb = rowScale(x0, b);
      target = sub(ea, xb, ea);
      for (const t of [eps, xb]) t.dispose();
    }
    for (const t of [a, b, eb, noisy, tfeat, pos]) t.dispose();
    if (target !== x0) x0.dispose();
    return target;
  }

  // Backward from the weighted loss sum(lossWeights * loss); accumulates parameter gradients.
  // `gradsFinal` hears of each block's (and the final norm's) parameters once their gradients are
  // complete, while the rest of the backward is still queued (data parallelism reduces them then).
  backward(gradsFinal?: (params: Parameter[]) => void): void {
    const s = this.#saved;
    if (!s) throw new Error('Model.backward: no forward to go back through');
    const headGrad = this.head.grad ?? undefined;
    const { dh, dw } = lmHeadCrossEntropyBackward(s.hidden, this.head.compute, s.targets, s.lse, s.dLoss, headGrad ? { dw: headGrad } : {});
    if (!headGrad) this.head.grad = dw;
    if (s.diffusionWeight && this.diffusion) {
      const dd = this.diffusion.backwardHead(s.batch.T, s.diffusionWeight); // original order
      const ddg = s.batch.toGrouped(dd);
      add(dh, ddg, dh);
      dd.dispose();
      ddg.dispose();
    }
    let dx = this.finalNorm.backward(dh);
    dh.dispose();
    gradsFinal?.(this.finalNorm.parameters());
    for (let i = this.blocks.length - 1; i >= 0; i--) {
      const d = this.blocks[i].backward(dx);
      dx.dispose();
      dx = d;
      gradsFinal?.(this.blocks[i].parameters());
    }
    const dxo = s.batch.toOriginal(dx);
    dx.dispose();
    if (s.diffusionWeight && this.diffusion) this.diffusion.backwardEmbed(dxo);
    this.imagePosition?.backward(dxo);
    const e = this.embed;
    if (e.grad) scatterRows(dxo, s.ids, this.cfg.vocabSize, { accumulate: true, out: e.grad });
    else e.grad = scatterRows(dxo, s.ids, this.cfg.vocabSize, { accumulate: true });
    dxo.dispose();
    this.clearSaved();
  }

  // The trunk for generation: Mixture-of-Depths blocks choose their tokens causally (each token by
  // its own router decision), not by top-k over the whole sequence, which would see the future.
  private async causalTrunk(batch: Batch, input: Tensor): Promise<Tensor> {
    let x = input;
    for (const b of this.blocks) {
      const y = b instanceof MoDBlock ? await b.forwardCausal(x, batch) : b.forward(x, batch);
      x.dispose();
      x = y;
    }
    const h = this.finalNorm.forward(x, batch.rowIds(this.modalities));
    x.dispose();
    return h;
  }

  // Next-token logits [V] (f32) of the last token of a single sequence; no gradients kept.
  async lastLogits(batch: Batch, tokens: Int32Array): Promise<Float32Array> {
    const ids = tensor(tokens, [tokens.length], { dtype: 'i32', device: this.device });
    const xo = this.embedTokens(ids, tokens);
    ids.dispose();
    this.imagePosition?.clearSaved();
    const xg = batch.toGrouped(xo);
    xo.dispose();
    const hidden = await this.causalTrunk(batch, xg);
    for (const b of this.blocks) b.clearSaved();
    this.finalNorm.clearSaved();
    const orig = batch.toOriginal(hidden);
    hidden.dispose();
    const last = orig.slice(tokens.length - 1, tokens.length);
    const logits = matmul(last, this.head.compute, { transB: true });
    const f = logits.dtype === 'f32' ? logits : cast(logits, 'f32');
    const out = (await f.toArray()) as Float32Array;
    for (const t of new Set([orig, last, logits, f])) t.dispose();
    return Float32Array.from(out);
  }

  // Transfusion: the network's prediction [P * patchDim] (the noise, v or x0: cfg.transfusion.prediction)
  // at the patch positions of one sequence whose patches hold the noisy latents x_t at step t.
  // No gradients kept.
  async predictNoise(batch: Batch, tokens: Int32Array, noisy: Float32Array, positions: Int32Array, t: number): Promise<Float32Array> {
    const tf = this.cfg.transfusion;
    if (!tf || !this.diffusion) throw new RangeError('predictNoise: this model has no Transfusion image path');
    const P = positions.length, dev = { device: this.device }, cdt = this.computeDtype;
    const ids = tensor(tokens, [tokens.length], { dtype: 'i32', ...dev });
    const xo = this.embedTokens(ids, tokens);
    ids.dispose();
    this.imagePosition?.clearSaved();
    const x = tensor(Float64Array.from(noisy), [P, tf.patchDim], { dtype: cdt, ...dev });
    const tfeat = tensor(Float64Array.from(timestepFeatures(new Int32Array(P).fill(t), tf.timesteps)), [P, 32], { dtype: cdt, ...dev });
    const pos = tensor(positions, [P], { dtype: 'i32', ...dev });
    this.diffusion.embed(xo, x, tfeat, pos);
    const xg = batch.toGrouped(xo);
    const hidden = await this.causalTrunk(batch, xg);
    for (const b of this.blocks) b.clearSaved();
    this.finalNorm.clearSaved();
    const ho = batch.toOriginal(hidden);
    const eps = this.diffusion.predict(ho);
    const f = eps.dtype === 'bf16' ? cast(eps, 'f32') : eps;
    const out = Float32Array.from(await f.toArray());
    for (const t2 of new Set([xo, x, tfeat, pos, xg, hidden, ho, eps, f])) t2.dispose();
    this.diffusion.clearSaved();
    return out;
  }

  clearSaved(): void {
    const s = this.#saved;
    if (s) for (const t of [s.ids, s.targets, s.dLoss, s.hidden, s.lse]) t.dispose();
    this.#saved = null;
    this.diffusion?.clearSaved();
    this.imagePosition?.clearSaved();
    for (const b of this.blocks) b.clearSaved();
    this.finalNorm.clearSaved();
  }

  dispose(): void {
    this.clearSaved();
    for (const p of this.parameters()) p.dispose();
  }
}
