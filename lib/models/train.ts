/**
 * The training loop both models share: seeded shuffling, mini-batches, Adam with global-norm gradient
 * clipping, a validation loss each epoch, early stopping that restores the best weights, a progress callback
 * (epoch, step, loss, validation loss, items/s, ETA) and cancellation through an AbortSignal.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../errors';
import { mulberry32 } from '../backend/reference';
import { ParamSet, subSeed } from './params';
import { Adam } from './adam';

/** Options every training call accepts. */
export interface TrainOptions {
  /** maximum number of passes over the training items */
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** clip the global gradient norm to this (0 = off) */
  clipNorm?: number;
  /** fraction of items held out for the validation loss (0 = none: no early stopping) */
  validationSplit?: number;
  /**
   * stop after this many epochs without an improvement of at least minDelta in the validation loss (the
   * training loss when there is no validation split)
   */
  patience?: number;
  minDelta?: number;
  /** shuffling, initialisation and the validation split derive from it */
  seed?: number;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
}

/** What the progress callback receives: after every step, and once at the end of each epoch. */
export interface TrainProgress {
  /** which model: 'text' or 'detector' */
  model: string;
  /** what an item is ('messages' for the text model, 'windows' for the detector) */
  unit: string;
  epoch: number; // 1-based
  epochs: number;
  step: number; // 1-based within the epoch
  steps: number;
  /** mean training loss so far in this epoch */
  loss: number;
  /** validation loss of the finished epoch (null mid-epoch, or without validation) */
  valLoss: number | null;
  itemsPerSecond: number;
  /** seconds left if every remaining epoch runs (early stopping may end sooner) */
  etaSeconds: number;
  /** true on the end-of-epoch call */
  epochEnd: boolean;
}

/** Summary of a finished training run (saved in model.json). */
export interface TrainResult {
  epochs: number;
  bestEpoch: number;
  /** final training loss (last epoch mean) */
  loss: number;
  bestValLoss: number | null;
  stoppedEarly: boolean;
  seconds: number;
  itemsPerSecond: number;
  history: Array<{ epoch: number; loss: number; valLoss: number | null }>;
}

export interface LoopSpec {
  model: string;
  /** what an item is, for progress lines (default 'items') */
  unit?: string;
  params: ParamSet;
  /** item indices to train and validate on */
  train: number[];
  val: number[];
  /** weight of each item in a batch's loss: mean loss of the batch (the model normalises) */
  batchLoss: (items: number[]) => tf.Scalar;
  /** loss over a set of items without a tape (validation); mean per item like batchLoss */
  evalLoss: (items: number[]) => number;
}

export const DEFAULT_TRAIN: Required<Omit<TrainOptions, 'signal' | 'onProgress'>> = {
  epochs: 50,
  batchSize: 64,
  learningRate: 3e-3,
  clipNorm: 5,
  validationSplit: 0.1,
  patience: 5,
  minDelta: 1e-4,
  seed: 42,
};

export function checkTrainOptions(o: TrainOptions): void {
  const pos = (name: keyof TrainOptions, int: boolean) => {
    const v = o[name] as number | undefined;
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (int && !Number.isInteger(v))) {
      throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected ${int ? 'positive integer' : 'positive number'} for ${name} but received ${String(v)}`);
    }
  };
  pos('epochs', true);
  pos('batchSize', true);
  pos('learningRate', false);
  pos('patience', true);
  const frac = o.validationSplit;
  if (frac !== undefined && !(typeof frac === 'number' && frac >= 0 && frac < 1)) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a number in [0, 1) for validationSplit but received ${String(frac)}`);
  }
  if (o.clipNorm !== undefined && !(typeof o.clipNorm === 'number' && o.clipNorm >= 0)) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a non-negative number for clipNorm but received ${String(o.clipNorm)}`);
  }
}

/** Seeded Fisher–Yates shuffle (in place). */
export function shuffle<T>(a: T[], seed: number): T[] {
  const r = mulberry32(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** Splits 0…n-1 into train and validation indices (seeded). */
export function splitItems(n: number, fraction: number, seed: number): { train: number[]; val: number[] } {
  const all = shuffle(Array.from({ length: n }, (_, i) => i), subSeed(seed, 'split'));
  const nVal = fraction > 0 && n >= 2 ? Math.max(1, Math.round(n * fraction)) : 0;
  return { val: all.slice(0, nVal).sort((a, b) => a - b), train: all.slice(nVal).sort((a, b) => a - b) };
}

function cancelled(model: string): DeepSentryError {
  return new DeepSentryError('DS_CANCELLED', `training of the ${model} model was cancelled`);
}

/** Runs the loop; leaves the best weights (by validation loss, else the last) in spec.params. */
export async function runTraining(spec: LoopSpec, options: TrainOptions): Promise<TrainResult> {
  checkTrainOptions(options);
  const o = { ...DEFAULT_TRAIN, ...options };
  const { model, params } = spec;
  const unit = spec.unit ?? 'items';
  if (spec.train.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', `no training items for the ${model} model`);
  const optimizer = new Adam(o.learningRate);
  const vars = [...params.vars.values()];
  const steps = Math.ceil(spec.train.length / o.batchSize);
  const history: TrainResult['history'] = [];
  const t0 = Date.now();
  let seen = 0;
  let best = Infinity;
  let bestEpoch = 0;
  let bestWeights = params.snapshot();
  let stale = 0;
  let stoppedEarly = false;
  let lastLoss = NaN;
  {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const order = shuffle(spec.train.slice(), subSeed(o.seed, `epoch${epoch}`));
      let sum = 0;
      let count = 0;
      for (let s = 0; s < steps; s++) {
        if (o.signal?.aborted) throw cancelled(model);
        const items = order.slice(s * o.batchSize, (s + 1) * o.batchSize);
        const lossValue = tf.tidy(() => {
          const { value, grads } = tf.variableGrads(() => spec.batchLoss(items), vars);
          optimizer.apply(vars, grads, o.clipNorm);
          return value.dataSync()[0];
        });
        if (!Number.isFinite(lossValue)) {
          throw new DeepSentryError('DS_INVALID_ARGUMENT', `the ${model} model's loss became ${lossValue} at epoch ${epoch} step ${s + 1}; lower the learning rate`);
        }
        sum += lossValue * items.length;
        count += items.length;
        seen += items.length;
        const elapsed = (Date.now() - t0) / 1000;
        const rate = seen / Math.max(elapsed, 1e-9);
        const remaining = (o.epochs - epoch) * spec.train.length + (spec.train.length - count);
        o.onProgress?.({ model, unit, epoch, epochs: o.epochs, step: s + 1, steps, loss: sum / count, valLoss: null, itemsPerSecond: rate, etaSeconds: remaining / rate, epochEnd: false });
        // Let timers and signals run (cancellation from a SIGINT handler, progress rendering).
        await new Promise((r) => setImmediate(r));
      }
      lastLoss = sum / count;
      const valLoss = spec.val.length > 0 ? spec.evalLoss(spec.val) : null;
      history.push({ epoch, loss: lastLoss, valLoss });
      const elapsed = (Date.now() - t0) / 1000;
      const rate = seen / Math.max(elapsed, 1e-9);
      o.onProgress?.({ model, unit, epoch, epochs: o.epochs, step: steps, steps, loss: lastLoss, valLoss, itemsPerSecond: rate, etaSeconds: ((o.epochs - epoch) * spec.train.length) / rate, epochEnd: true });
      const monitored = valLoss ?? lastLoss;
      if (monitored < best - o.minDelta) {
        best = monitored;
        bestEpoch = epoch;
        bestWeights = params.snapshot();
        stale = 0;
      } else if (++stale >= o.patience) {
        stoppedEarly = true;
        break;
      }
    }
  }
  if (spec.val.length > 0) params.restore(bestWeights, `${model} best epoch`);
  const seconds = (Date.now() - t0) / 1000;
  return {
    epochs: history.length,
    bestEpoch,
    loss: lastLoss,
    bestValLoss: spec.val.length > 0 ? best : null,
    stoppedEarly,
    seconds,
    itemsPerSecond: seen / Math.max(seconds, 1e-9),
    history,
  };
}
