/**
/**
 * W1 and W2 on the native kernels, called directly through the addon (lib/backend/binding.ts): W1's forward
 * (BiLSTM, Dense, per-window MSE) as one BiLstmDense call; the other LSTM passes via
 * bilstmForward/lstmForward/lstmEncode and bilstmBackward/lstmBackward, W1's training Dense layer with its MSE
 * and all their gradients via denseMse, W2's output layer with its softmax cross-entropy and gradients via
 * denseSoftmaxXent, its embedding gradient via scatterAddRows, the Adam update via adamUpdateMany; in TypeScript
 * loops only what is O(elements) and small: the embedding gather. A complete training step on the native kernels,
 * the same function as the tfjs peers (bench/peers/tfjs.ts).
 */
import type { BiLstmDense, BiLstmWeightGradients, LstmWeightGradients, NativeBinding, TrainingInto } from '../lib/backend/binding';
import { Adam } from './adam';
import type { W1Impl, W2Impl } from './impl';
import {
  cloneArrays,
  decoderInputs,
  w1ParamList,
  w2ParamList,
  type NamedArrays,
  type W1Batch,
  type W1Params,
  type W1Shape,
  type W2Batch,
  type W2Params,
  type W2Shape,
} from './workloads';

export class NativeW1 implements W1Impl {
  private readonly p: W1Params;
  private readonly adam: Adam;
  private readonly summary: Float32Array;
  /** the gradient reaching each direction's final h [B, H], filled by every training step */
  private readonly dhFw: Float32Array;
  private readonly dhBw: Float32Array;
  /** the training workspace, y and the BiLSTM's weight gradients of the last step, overwritten by the next */
  private workspace?: Float32Array;
  private y?: Float32Array;
  private lstmGrads?: BiLstmWeightGradients;
  /**
   * the weights have not changed since construction: forward passes them as frozen (binding.ts LstmWeights), so
   * the bf16 tier keeps its rounded copies, as for a loaded model; the first training step (Adam updates the
   * arrays in place) ends that
   */
  private frozen = true;
  /** the weights as forward's BiLstmDense holds them, made by the first forward while they are frozen */
  private model?: BiLstmDense;
  /** forwardInto's outputs, [B, out] and [B] */
  private readonly out: { pred: Float32Array; scores: Float32Array };

  constructor(
    private readonly nb: NativeBinding,
    private readonly s: W1Shape,
    params: W1Params,
    private readonly batch: W1Batch,
  ) {
    this.p = cloneArrays(params);
    this.adam = new Adam(nb, w1ParamList(this.p));
    this.summary = new Float32Array(s.batch * 2 * s.hidden);
    this.dhFw = new Float32Array(s.batch * s.hidden);
    this.dhBw = new Float32Array(s.batch * s.hidden);
    this.out = { pred: new Float32Array(s.batch * s.out), scores: new Float32Array(s.batch) };
  }

  private dims(): { batch: number; steps: number; inputSize: number; hiddenSize: number } {
    return { batch: this.s.batch, steps: this.s.steps, inputSize: this.s.input, hiddenSize: this.s.hidden };
  }

  /** summary [B, 2H] = [h_fw_final, h_bw_final] */
  private fillSummary(hFw: Float32Array, hBw: Float32Array): void {
    const { batch: B, hidden: H } = this.s;
    for (let b = 0; b < B; b++) {
      this.summary.set(hFw.subarray(b * H, (b + 1) * H), b * 2 * H);
      this.summary.set(hBw.subarray(b * H, (b + 1) * H), b * 2 * H + H);
    }
  }

  /**
   * One BiLstmDense call (the BiLSTM's final states, the Dense layer and the per-window MSE in the addon, no
   * per-step output): over weights the object copied, kept while the weights are frozen; after a training
   * step each forward copies the current ones.
   */
  forward(): { pred: Float32Array; scores: Float32Array } {
    const r = this.current().forward({ batch: this.s.batch, steps: this.s.steps, x: this.batch.x, target: this.batch.target });
    return { pred: r.pred, scores: r.scores as Float32Array };
  }

  /** The same call with `pred` and `scores` given: the addon writes them instead of allocating new arrays. */
  forwardInto(): { pred: Float32Array; scores: Float32Array } {
    const { pred, scores } = this.out;
    this.current().forward({ batch: this.s.batch, steps: this.s.steps, x: this.batch.x, target: this.batch.target, pred, scores });
    return this.out;
  }

  private current(): BiLstmDense {
    return this.frozen ? (this.model ??= this.denseModel()) : this.denseModel();
  }

  private denseModel(): BiLstmDense {
    const { forward, backward, dense } = this.p;
    return new this.nb.BiLstmDense({ inputSize: this.s.input, hiddenSize: this.s.hidden, outputSize: this.s.out, forward, backward, dense });
  }

  /**
   * The loss and the gradients (W1_PARAM_NAMES order). The BiLSTM's workspace, y and weight gradients are written
   * into the arrays the previous call returned (`into`, lib/backend/binding.ts TrainingInto): the next call
   * overwrites them.
   */
  private lossAndGradients(): { loss: number; grads: Float32Array[] } {
    const { batch: B, hidden: H, out: N } = this.s;
    const x = this.batch.x;
    const fwd = this.nb.bilstmForward({
      ...this.dims(),
      x,
      forward: this.p.forward,
      backward: this.p.backward,
      training: true,
      into: { workspace: this.workspace, y: this.y },
    });
    this.workspace = fwd.workspace;
    this.y = fwd.y;
    this.fillSummary(fwd.hFw, fwd.hBw);
    // The Dense head, the MSE and their gradients in one call: dKernel [2H, N] = summaryᵀ·dpred, dBias,
    // dSummary [B, 2H] = dpred·kernelᵀ, with dpred = 2·(pred − target) / (B·N)
    const head = this.nb.denseMse({ rows: B, inSize: 2 * H, outSize: N, x: this.summary, ...this.p.dense, target: this.batch.target, gradient: true });
    let loss = 0;
    for (let b = 0; b < B; b++) loss += head.scores[b];
    loss /= B;
    const dSummary = head.dx as Float32Array;
    const { dhFw, dhBw } = this;
    for (let b = 0; b < B; b++) {
      dhFw.set(dSummary.subarray(b * 2 * H, b * 2 * H + H), b * H);
      dhBw.set(dSummary.subarray(b * 2 * H + H, (b + 1) * 2 * H), b * H);
    }
    const g = this.nb.bilstmBackward({
      ...this.dims(),
      x,
      forward: this.p.forward,
      backward: this.p.backward,
      y: fwd.y,
      workspace: fwd.workspace as Float32Array,
      dhFw,
      dhBw,
      inputGradients: false, // x is data: its gradient is not needed
      into: this.lstmGrads,
    });
    this.lstmGrads = g;
    const grads = [
      g.forward.dKernel,
      g.forward.dRecurrentKernel,
      g.forward.dBias,
      g.backward.dKernel,
      g.backward.dRecurrentKernel,
      g.backward.dBias,
      head.dKernel as Float32Array,
      head.dBias as Float32Array,
    ];
    return { loss, grads };
  }

  gradients(): { loss: number; grads: NamedArrays } {
    const { loss, grads } = this.lossAndGradients();
    const names = w1ParamList(this.p).map(([n]) => n);
    // copies: the next step overwrites the arrays
    return { loss, grads: grads.map((a, i) => [names[i], a.slice()]) };
  }

  trainStep(): number {
    const { loss, grads } = this.lossAndGradients();
    this.frozen = false;
    this.adam.apply(grads);
    return loss;
  }

  dispose(): void {
    // plain typed arrays: nothing to release
  }
}

export class NativeW2 implements W2Impl {
  readonly frozenEmbedding = false;
  private readonly p: W2Params;
  private readonly adam: Adam;
  /** as NativeW1's: the encoder weights are frozen until the first training step */
  private frozen = true;
  private readonly din: Int32Array;
  /** 1/(B·T) for every token: the loss is the mean over tokens */
  private readonly rowWeights: Float32Array;
  /** the last training step's workspaces, ys and LSTM weight gradients, which the next overwrites */
  private kept: { enc?: TrainingInto; dec?: TrainingInto; gEnc?: LstmWeightGradients; gDec?: LstmWeightGradients } = {};

  constructor(
    private readonly nb: NativeBinding,
    private readonly s: W2Shape,
    params: W2Params,
    private readonly batch: W2Batch,
  ) {
    this.p = cloneArrays(params);
    this.adam = new Adam(nb, w2ParamList(this.p));
    this.din = decoderInputs(batch.tokens, s.batch, s.steps);
    this.rowWeights = new Float32Array(s.batch * s.steps).fill(1 / (s.batch * s.steps));
  }

  private dims(): { batch: number; steps: number; inputSize: number; hiddenSize: number } {
    return { batch: this.s.batch, steps: this.s.steps, inputSize: this.s.embedding, hiddenSize: this.s.hidden };
  }

  encode(): Float32Array {
    return this.nb.lstmEncode({
      ...this.dims(),
      tokens: this.batch.tokens,
      embedding: this.p.embedding,
      vocabSize: this.s.vocab,
      weights: { ...this.p.encoder, frozen: this.frozen },
    }).h;
  }

  /** x [B·T, E] = embedding rows of ids */
  private gather(ids: Int32Array): Float32Array {
    const E = this.s.embedding;
    const x = new Float32Array(ids.length * E);
    const emb = this.p.embedding;
    for (let r = 0; r < ids.length; r++) x.set(emb.subarray(ids[r] * E, ids[r] * E + E), r * E);
    return x;
  }

  /**
   * Forward of the autoencoder; with `grad`, also the whole backward pass. The output layer and its softmax
   * cross-entropy over the [B·T, V] logits (rows b·T + t, batch-major as the LSTM output), mean over the B·T
   * tokens, are one denseSoftmaxXent call: the logits never leave the addon.
   */
  private run(grad: boolean): { loss: number; grads?: NamedArrays } {
    const { batch: B, steps: T, vocab: V, embedding: E, hidden: H } = this.s;
    const rows = B * T;
    const tokens = this.batch.tokens;
    const xe = this.gather(tokens);
    const xd = this.gather(this.din);
    // training: the workspaces, ys and weight gradients of the last step are written over (`into`, as NativeW1's)
    const keep = this.kept;
    const enc = this.nb.lstmForward({ ...this.dims(), x: xe, weights: this.p.encoder, training: grad, into: grad ? keep.enc : undefined });
    const dec = this.nb.lstmForward({ ...this.dims(), x: xd, weights: this.p.decoder, h0: enc.h, c0: enc.c, training: grad, into: grad ? keep.dec : undefined });
    const out = this.nb.denseSoftmaxXent({
      rows,
      inSize: H,
      classes: V,
      x: dec.y,
      kernel: this.p.dense.kernel,
      bias: this.p.dense.bias,
      labels: tokens,
      weights: this.rowWeights,
      gradient: grad,
    });
    let loss = 0;
    for (let r = 0; r < rows; r++) loss += out.loss[r];
    if (!grad) return { loss };
    const gd = this.nb.lstmBackward({
      ...this.dims(),
      x: xd,
      weights: this.p.decoder,
      h0: enc.h,
      c0: enc.c,
      y: dec.y,
      workspace: dec.workspace as Float32Array,
      dy: out.dx as Float32Array,
      into: keep.gDec,
    });
    const ge = this.nb.lstmBackward({
      ...this.dims(),
      x: xe,
      weights: this.p.encoder,
      y: enc.y,
      workspace: enc.workspace as Float32Array,
      dh: gd.dh0,
      dc: gd.dc0,
      into: keep.gEnc,
    });
    this.kept = { enc: { workspace: enc.workspace, y: enc.y }, dec: { workspace: dec.workspace, y: dec.y }, gEnc: ge, gDec: gd };
    // the embedding's gradient: both lookups' input gradients scattered into [V, E]
    const dEmb = this.nb.scatterAddRows({ rows, cols: E, numRows: V, x: ge.dx, indices: tokens });
    const dDec = this.nb.scatterAddRows({ rows, cols: E, numRows: V, x: gd.dx, indices: this.din });
    for (let i = 0; i < dEmb.length; i++) dEmb[i] += dDec[i];
    const arrays = [dEmb, ge.dKernel, ge.dRecurrentKernel, ge.dBias, gd.dKernel, gd.dRecurrentKernel, gd.dBias, out.dKernel as Float32Array, out.dBias as Float32Array];
    const names = w2ParamList(this.p).map(([n]) => n);
    return { loss, grads: arrays.map((a, i) => [names[i], a]) };
  }

  lossValue(): number {
    return this.run(false).loss;
  }

  gradients(): { loss: number; grads: NamedArrays } {
    const r = this.run(true);
    // copies: the next step overwrites the LSTMs' weight gradients
    return { loss: r.loss, grads: (r.grads as NamedArrays).map(([n, a]) => [n, a.slice()]) };
  }

  trainStep(): number {
    const { loss, grads } = this.run(true);
    this.frozen = false;
    this.adam.apply((grads as NamedArrays).map(([, g]) => g));
    return loss;
  }

  dispose(): void {
    // plain typed arrays: nothing to release
  }
}
