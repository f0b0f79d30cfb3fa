/**
 * The tfjs implementations: W1 and W2 written in tfjs-core ops (an LSTM as a loop over steps of matMul + sigmoid/tanh,
 * trained with tf.variableGrads and tf.train.adam), run on @tensorflow/tfjs-backend-cpu or
 * @tensorflow/tfjs-backend-wasm. They compute the same functions as bench/native.ts, from the same
 * parameters (bench/workloads.ts).
 *
 * The LSTM is written as a tfjs user would write it well: the input projection of all steps is one large
 * matMul (time-major, so a step's rows are one contiguous slice), each step one recurrent matMul and the
 * gate math on [B, 4H]. With `lstm: 'fused'` the same models use DeepSentry's fused ops instead
 * (lib/backend/ops.ts: fusedBiLstm, fusedLstm, denseSoftmaxCrossEntropy) on the `deepsentry` tfjs backend: the
 * "native via tfjs backend" row, i.e. what a tfjs user of our backend gets.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as path from 'path';
import type { LstmWeights } from '../../lib/backend/binding';
import type { LstmLayerWeights } from '../../lib/backend';
import { DeepSentryError } from '../../lib/errors';
import { denseSoftmaxCrossEntropy, fusedBiLstm, fusedLstm, useBackend } from '../../lib/backend';
import { registerAllGradients } from '../../lib/backend/register_all_gradients';
import { BENCH_ADAM } from '../adam';
import {
  decoderInputs,
  W1_PARAM_NAMES,
  W2_PARAM_NAMES,
  type NamedArrays,
  type W1Batch,
  type W1Params,
  type W1Shape,
  type W2Batch,
  type W2Params,
  type W2Shape,
} from '../workloads';
import type { W1Impl, W2Impl } from '../impl';

export type TfjsBackendName = 'cpu' | 'wasm' | 'deepsentry';

/** How the LSTM layers are computed: a loop of tfjs ops per step, or DeepSentry's fused LSTM ops. */
export type LstmMode = 'ops' | 'fused';

/** What the benchmark reports about a tfjs backend. */
export interface TfjsBackendInfo {
  name: TfjsBackendName;
  /** tfjs-core version */
  version: string;
  /** wasm only: whether the SIMD build runs, whether threads are supported (never in Node), threads used */
  simd?: boolean;
  multithread?: boolean;
  threads?: number;
}

let wasmListenerCleanup = false;
let tfjsGradients = false;

/** every kernel name tfjs-core exports (its string constants) */
function kernelNames(): string[] {
  return (Object.values(tf) as unknown[]).filter((v): v is string => typeof v === 'string');
}

/**
 * Runs `load` (something that registers gradients as a side effect: tfjs-core's full gradient set, or
 * @tensorflow/tfjs-layers, which registers that set when it is imported) and then puts back every gradient
 * registered before it, DeepSentry's own first (lib/backend: its fused ops and its fast Embedding gradient).
 * So loading the bench code in a test process changes nothing for the other test files: without it, the text
 * model in test/e2e/models-training.test.ts trained ten times slower (a 60 s time-out) whenever the bench test ran first.
 */
export function keepingGradients<T>(load: () => T): T {
  registerAllGradients();
  const before = kernelNames().map((n) => tf.getGradient(n)).filter((g): g is tf.GradConfig => g != null);
  const loaded = load();
  for (const g of before) tf.registerGradient(g);
  return loaded;
}

/**
 * Registers tfjs-core's own gradient set (tfjs-core registers none by itself; its register_all_gradients is
 * ESM that loads under tsx, which runs the bench and the tests). With `override: false` the gradients
 * registered before are kept (keepingGradients); the benchmark itself overrides, so the tfjs peers train with
 * tfjs' official gradients.
 */
export function registerTfjsGradients(opts: { override: boolean }): void {
  if (tfjsGradients) return;
  tfjsGradients = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = (): unknown => require('@tensorflow/tfjs-core/dist/register_all_gradients');
  if (opts.override) load();
  else keepingGradients(load);
}

/**
 * Makes `name` the active tfjs backend (initialising it on first use) and returns what it is. The wasm
 * binaries are located in node_modules explicitly, so the bench works from any working directory.
 */
export async function useTfjsBackend(name: TfjsBackendName, opts: { benchmark?: boolean } = {}): Promise<TfjsBackendInfo> {
  // The benchmark is production use: no per-op debug checks, no "install tfjs-node" banner, tfjs' official
  // gradients. Only then: these are process-global, and a test process has other test files in it.
  if (opts.benchmark) tf.enableProdMode();
  registerTfjsGradients({ override: !!opts.benchmark });
  if (name === 'wasm') {
    const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
    setWasmPaths(dist);
  }
  // The Emscripten module of the wasm backend installs process handlers that rethrow every uncaught
  // error and unhandled rejection, printing its whole minified source; take them out again.
  const before = {
    uncaughtException: process.listeners('uncaughtException'),
    unhandledRejection: process.listeners('unhandledRejection'),
  };
  // the deepsentry backend is registered (and activated) by its own selector, which fails if the addon is missing
  const ok = name === 'deepsentry' ? useBackend('native').tfjsBackend === name : await tf.setBackend(name);
  if (name === 'wasm' && !wasmListenerCleanup) {
    wasmListenerCleanup = true;
    for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
      const emitter = process as NodeJS.EventEmitter;
      for (const l of emitter.listeners(ev)) {
        if (!(before[ev] as unknown[]).includes(l)) emitter.removeListener(ev, l as (...args: unknown[]) => void);
      }
    }
  }
  if (!ok || tf.getBackend() !== name) {
    throw new DeepSentryError('DS_UNSUPPORTED', `tfjs backend '${name}' failed to initialise (active backend: ${tf.getBackend()})`);
  }
  const info: TfjsBackendInfo = { name, version: tf.version_core };
  if (name === 'wasm') {
    info.simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
    info.multithread = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
    info.threads = info.multithread ? getThreadsCount() : 1;
  }
  return info;
}

interface TfLstm {
  kernel: tf.Variable;
  recurrentKernel: tf.Variable;
  bias: tf.Variable;
}

function lstmVars(w: LstmWeights, input: number, hidden: number, trainable = true): TfLstm {
  return {
    kernel: tf.variable(tf.tensor2d(w.kernel, [input, 4 * hidden]), trainable),
    recurrentKernel: tf.variable(tf.tensor2d(w.recurrentKernel, [hidden, 4 * hidden]), trainable),
    bias: tf.variable(tf.tensor1d(w.bias), trainable),
  };
}

interface LstmRun {
  h: tf.Tensor2D;
  c: tf.Tensor2D;
  /** the hidden state of every step in time order (only when asked for) */
  ys: tf.Tensor2D[];
}

/**
 * One LSTM direction over time-major input xTM [T·B, I] (rows t·B … t·B+B−1 are step t). Gate order i, f,
 * c, o and the same arithmetic as native/src/lstm_math.h.
 */
function lstmRun(
  xTM: tf.Tensor2D,
  w: TfLstm,
  batch: number,
  steps: number,
  hidden: number,
  opts: { reverse?: boolean; h0?: tf.Tensor2D; c0?: tf.Tensor2D; keepAll?: boolean } = {},
): LstmRun {
  const xp = tf.add(tf.matMul(xTM, w.kernel), w.bias) as tf.Tensor2D;
  let h = opts.h0 ?? tf.zeros([batch, hidden]);
  let c = opts.c0 ?? tf.zeros([batch, hidden]);
  const ys: tf.Tensor2D[] = new Array(opts.keepAll ? steps : 0);
  for (let k = 0; k < steps; k++) {
    const t = opts.reverse ? steps - 1 - k : k;
    const z = tf.add(tf.slice(xp, [t * batch, 0], [batch, 4 * hidden]), tf.matMul(h, w.recurrentKernel));
    const [zi, zf, zg, zo] = tf.split(z, 4, 1);
    c = tf.add(tf.mul(tf.sigmoid(zf), c), tf.mul(tf.sigmoid(zi), tf.tanh(zg)));
    h = tf.mul(tf.sigmoid(zo), tf.tanh(c));
    if (opts.keepAll) ys[t] = h;
  }
  return { h, c, ys };
}

/** tfjs' AdamOptimizer types its argument narrower than the gradients variableGrads returns */
function asNamedTensors(grads: tf.NamedTensorMap): Parameters<tf.AdamOptimizer['applyGradients']>[0] {
  return Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
}

/**
 * What every tfjs peer model (W1 and W2, ops and layers peers) does alike around its own loss: which variables
 * it trains and under which W*_PARAM_NAMES, the bench's Adam, the loss value, the gradients read out for the
 * agreement checks, one training step. Written once so the peers cannot drift apart in how they are measured.
 */
export abstract class TfjsPeerModel {
  /** the variables trained, in the order of `trainedNames` */
  private trained: tf.Variable[] = [];
  private trainedNames: readonly string[] = [];
  private optimizer: tf.AdamOptimizer | null = null;

  /** The peer's loss (called inside tf.tidy or tf.variableGrads, which release its intermediates). */
  protected abstract loss(): tf.Scalar;

  /**
   * Sets the variables to train (`all`, named by `names` in the same order; those `frozen` names skipped)
   * and creates the optimizer: called once, at the end of the constructor.
   */
  protected setTrained(all: tf.Variable[], names: readonly string[], frozen: readonly string[] = []): void {
    if (all.length !== names.length) throw new Error(`${this.constructor.name} has ${all.length} variables, expected ${names.length} (${names.join(', ')})`);
    const keep = names.map((_, i) => i).filter((i) => !frozen.includes(names[i]));
    this.trained = keep.map((i) => all[i]);
    this.trainedNames = keep.map((i) => names[i]);
    const { learningRate, beta1, beta2, epsilon } = BENCH_ADAM;
    this.optimizer = tf.train.adam(learningRate, beta1, beta2, epsilon);
  }

  lossValue(): number {
    return tf.tidy(() => this.loss().dataSync()[0]);
  }

  /** The loss and its gradients w.r.t. the trained variables as named arrays (for the agreement checks); no update. */
  gradients(): { loss: number; grads: NamedArrays } {
    const { value, grads } = tf.variableGrads(() => this.loss(), this.trained);
    const out: NamedArrays = this.trained.map((v, i) => [this.trainedNames[i], grads[v.name].dataSync() as Float32Array]);
    const lossValue = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads)]);
    return { loss: lossValue, grads: out };
  }

  /** One training step: the gradients of the loss applied by Adam; returns the loss before the update. */
  trainStep(): number {
    if (this.optimizer === null) throw new Error(`${this.constructor.name} did not call setTrained`);
    const { value, grads } = tf.variableGrads(() => this.loss(), this.trained);
    this.optimizer.applyGradients(asNamedTensors(grads));
    const lossValue = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads)]);
    return lossValue;
  }

  /** Releases the optimizer's state (the subclass releases its own tensors). */
  protected disposeOptimizer(): void {
    this.optimizer?.dispose();
  }
}

/** [B, T, …] batch-major → [T·B, …] time-major rows. */
function timeMajor2d(x: tf.Tensor, batch: number, steps: number): tf.Tensor {
  const rows = batch * steps;
  if (x.rank === 3) return tf.reshape(tf.transpose(x, [1, 0, 2]), [rows, x.shape[2] as number]);
  return tf.reshape(tf.transpose(x, [1, 0]), [rows]);
}

/** W1 on a tfjs backend (the active one when constructed). */
export class TfjsW1 extends TfjsPeerModel implements W1Impl {
  private readonly fw: TfLstm;
  private readonly bw: TfLstm;
  private readonly denseK: tf.Variable;
  private readonly denseB: tf.Variable;
  private readonly x: tf.Tensor3D;
  private readonly target: tf.Tensor2D;
  private readonly vars: tf.Variable[];

  constructor(
    private readonly s: W1Shape,
    params: W1Params,
    batch: W1Batch,
    private readonly lstm: LstmMode = 'ops',
  ) {
    super();
    this.fw = lstmVars(params.forward, s.input, s.hidden);
    this.bw = lstmVars(params.backward, s.input, s.hidden);
    this.denseK = tf.variable(tf.tensor2d(params.dense.kernel, [2 * s.hidden, s.out]));
    this.denseB = tf.variable(tf.tensor1d(params.dense.bias));
    this.x = tf.tensor3d(batch.x, [s.batch, s.steps, s.input]);
    this.target = tf.tensor2d(batch.target, [s.batch, s.out]);
    // same order as W1_PARAM_NAMES
    this.vars = [this.fw.kernel, this.fw.recurrentKernel, this.fw.bias, this.bw.kernel, this.bw.recurrentKernel, this.bw.bias, this.denseK, this.denseB];
    this.setTrained(this.vars, W1_PARAM_NAMES);
  }

  /** predictions [B, out] and per-window scores (MSE) [B], as tensors (inside a tidy) */
  private predict(): { pred: tf.Tensor2D; scores: tf.Tensor1D } {
    const { batch: B, steps: T, hidden: H } = this.s;
    let summary: tf.Tensor2D;
    if (this.lstm === 'fused') {
      const r = fusedBiLstm(this.x, this.fw as LstmLayerWeights, this.bw as LstmLayerWeights);
      summary = tf.concat([r.hFw, r.hBw], 1);
    } else {
      const xTM = timeMajor2d(this.x, B, T) as tf.Tensor2D;
      const f = lstmRun(xTM, this.fw, B, T, H);
      const b = lstmRun(xTM, this.bw, B, T, H, { reverse: true });
      summary = tf.concat([f.h, b.h], 1);
    }
    const pred = tf.add(tf.matMul(summary, this.denseK), this.denseB) as tf.Tensor2D;
    const scores = tf.mean(tf.squaredDifference(pred, this.target), 1) as tf.Tensor1D;
    return { pred, scores };
  }

  forward(): { pred: Float32Array; scores: Float32Array } {
    return tf.tidy(() => {
      const { pred, scores } = this.predict();
      return { pred: pred.dataSync() as Float32Array, scores: scores.dataSync() as Float32Array };
    });
  }

  protected loss(): tf.Scalar {
    return tf.mean(this.predict().scores) as tf.Scalar;
  }

  dispose(): void {
    tf.dispose([...this.vars, this.x, this.target]);
    this.disposeOptimizer();
  }
}

/**
 * How the W2 peer looks the embedding up in training:
 *  - 'gather': tf.gather, the usual way; its gradient needs UnsortedSegmentSum;
 *  - 'onehot': oneHot(ids)·E, the same function and gradient as products. tfjs-cpu's UnsortedSegmentSum
 *    takes ~2 minutes for this batch (measured: 110–120 s for one [3072]→[2000,64] scatter; a step has two), so the cpu peer
 *    trains its embedding this way, which is ~20× faster there;
 *  - 'frozen': tf.gather of a non-trainable embedding — tfjs-wasm has no UnsortedSegmentSum at all.
 * Encoding (forward only) always uses tf.gather.
 */
export type EmbeddingMode = 'gather' | 'onehot' | 'frozen';

/** W2 on a tfjs backend. */
export class TfjsW2 extends TfjsPeerModel implements W2Impl {
  readonly frozenEmbedding: boolean;
  private readonly emb: tf.Variable;
  private readonly enc: TfLstm;
  private readonly dec: TfLstm;
  private readonly denseK: tf.Variable;
  private readonly denseB: tf.Variable;
  private readonly tokens: tf.Tensor2D;
  private readonly din: tf.Tensor2D;

  constructor(
    private readonly s: W2Shape,
    params: W2Params,
    batch: W2Batch,
    private readonly embeddingMode: EmbeddingMode,
    private readonly lstm: LstmMode = 'ops',
  ) {
    super();
    this.frozenEmbedding = embeddingMode === 'frozen';
    const frozenEmbedding = this.frozenEmbedding;
    this.emb = tf.variable(tf.tensor2d(params.embedding, [s.vocab, s.embedding]), !frozenEmbedding);
    this.enc = lstmVars(params.encoder, s.embedding, s.hidden);
    this.dec = lstmVars(params.decoder, s.embedding, s.hidden);
    this.denseK = tf.variable(tf.tensor2d(params.dense.kernel, [s.hidden, s.vocab]));
    this.denseB = tf.variable(tf.tensor1d(params.dense.bias));
    this.tokens = tf.tensor2d(batch.tokens, [s.batch, s.steps], 'int32');
    this.din = tf.tensor2d(decoderInputs(batch.tokens, s.batch, s.steps), [s.batch, s.steps], 'int32');
    const all = [this.emb, this.enc.kernel, this.enc.recurrentKernel, this.enc.bias, this.dec.kernel, this.dec.recurrentKernel, this.dec.bias, this.denseK, this.denseB];
    this.setTrained(all, W2_PARAM_NAMES, frozenEmbedding ? ['embedding'] : []);
  }

  /** encoder final state h [B, H] of the batch (batched encoding) */
  encode(): Float32Array {
    return tf.tidy(() => {
      const { batch: B, steps: T, hidden: H, embedding: E } = this.s;
      if (this.lstm === 'fused') {
        const xe = tf.reshape(tf.gather(this.emb, tf.reshape(this.tokens, [B * T])), [B, T, E]) as tf.Tensor3D;
        return fusedLstm(xe, this.enc as LstmLayerWeights).h.dataSync() as Float32Array;
      }
      const xe = tf.gather(this.emb, timeMajor2d(this.tokens, B, T)) as tf.Tensor2D;
      return lstmRun(xe, this.enc, B, T, H).h.dataSync() as Float32Array;
    });
  }

  protected loss(): tf.Scalar {
    if (this.lstm === 'fused') return this.fusedLoss();
    const { batch: B, steps: T, hidden: H, vocab: V } = this.s;
    const tokTM = timeMajor2d(this.tokens, B, T) as tf.Tensor1D;
    const dinTM = timeMajor2d(this.din, B, T) as tf.Tensor1D;
    const lookup = (ids: tf.Tensor1D): tf.Tensor2D =>
      this.embeddingMode === 'onehot' ? tf.matMul(tf.oneHot(ids, V), this.emb) : (tf.gather(this.emb, ids) as tf.Tensor2D);
    const xe = lookup(tokTM);
    const xd = lookup(dinTM);
    const e = lstmRun(xe, this.enc, B, T, H);
    const d = lstmRun(xd, this.dec, B, T, H, { h0: e.h, c0: e.c, keepAll: true });
    const y = tf.concat(d.ys, 0); // [T·B, H], time-major like tokTM
    const logits = tf.add(tf.matMul(y, this.denseK), this.denseB);
    // one-hot × log-softmax rather than a gather of the label's log-probability: a gather's gradient
    // needs UnsortedSegmentSum, which tfjs-wasm does not have
    const labels = tf.oneHot(tokTM, V);
    return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  }

  /** the same loss with the fused ops: batch-major throughout, as the fused LSTM takes [B, T, E] */
  private fusedLoss(): tf.Scalar {
    const { batch: B, steps: T, hidden: H, vocab: V, embedding: E } = this.s;
    const tok = tf.reshape(this.tokens, [B * T]) as tf.Tensor1D;
    const lookup = (ids: tf.Tensor1D): tf.Tensor3D =>
      tf.reshape(this.embeddingMode === 'onehot' ? tf.matMul(tf.oneHot(ids, V), this.emb) : tf.gather(this.emb, ids), [B, T, E]) as tf.Tensor3D;
    const e = fusedLstm(lookup(tok), this.enc as LstmLayerWeights);
    const d = fusedLstm(lookup(tf.reshape(this.din, [B * T]) as tf.Tensor1D), this.dec as LstmLayerWeights, { h0: e.h, c0: e.c });
    return tf.mean(denseSoftmaxCrossEntropy(tf.reshape(d.y, [B * T, H]) as tf.Tensor2D, this.denseK as tf.Tensor2D, this.denseB as tf.Tensor1D, tok)) as tf.Scalar;
  }

  dispose(): void {
    tf.dispose([this.emb, this.enc.kernel, this.enc.recurrentKernel, this.enc.bias, this.dec.kernel, this.dec.recurrentKernel, this.dec.bias, this.denseK, this.denseB, this.tokens, this.din]);
    this.disposeOptimizer();
  }
}
