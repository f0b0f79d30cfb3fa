/**
 * Named trainable parameters with seeded initialisers (no Math.random: same seed → bit-identical weights),
 * and conversion to and from plain arrays for model files and early-stopping snapshots.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../errors';
import { mulberry32 } from '../backend/reference';

/** A weight as stored in a model file (tfjs weights-manifest entry + its values). */
export interface NamedWeight {
  name: string;
  shape: number[];
  values: Float32Array;
}

export type Initializer =
  | { kind: 'glorotUniform' }
  | { kind: 'uniform'; limit: number }
  | { kind: 'zeros' }
  /** LSTM bias: zeros with the forget-gate block (second quarter) set to 1 (Keras unitForgetBias). */
  | { kind: 'lstmBias' };

/** Deterministic integer sub-seeds from one seed (so adding a parameter does not shift the others). */
export function subSeed(seed: number, name: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function initValues(shape: number[], init: Initializer, rand: () => number): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(size);
  switch (init.kind) {
    case 'zeros':
      return v;
    case 'lstmBias': {
      const H = size / 4;
      v.fill(1, H, 2 * H);
      return v;
    }
    case 'uniform':
    case 'glorotUniform': {
      const limit = init.kind === 'uniform' ? init.limit : Math.sqrt(6 / (shape[0] + (shape.length > 1 ? shape[shape.length - 1] : shape[0])));
      for (let i = 0; i < size; i++) v[i] = (rand() * 2 - 1) * limit;
      return v;
    }
  }
}

/** An ordered set of named tf.Variables. */
export class ParamSet {
  readonly vars = new Map<string, tf.Variable>();
  constructor(private readonly seed: number) {}

  add(name: string, shape: number[], init: Initializer): tf.Variable {
    if (this.vars.has(name)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `parameter ${name} defined twice`);
    const values = initValues(shape, init, mulberry32(subSeed(this.seed, name)));
    // Variable names are global in tfjs: make them unique per instance.
    const v = tf.variable(tf.tensor(values, shape, 'float32'), true, `${name}#${nextId++}`);
    this.vars.set(name, v);
    return v;
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new DeepSentryError('DS_MODEL', `missing parameter ${name}`);
    return v;
  }

  /** Copies of every weight (for saving and for early-stopping snapshots). */
  snapshot(): NamedWeight[] {
    return [...this.vars].map(([name, v]) => ({ name, shape: v.shape.slice(), values: (v.dataSync() as Float32Array).slice() }));
  }

  /** Assigns weights by name; every parameter must be present with its exact shape. */
  restore(weights: NamedWeight[], source = 'weights'): void {
    const byName = new Map(weights.map((w) => [w.name, w]));
    for (const [name, v] of this.vars) {
      const w = byName.get(name);
      if (!w) throw new DeepSentryError('DS_MODEL', `${source}: missing weight ${name}`);
      if (w.shape.length !== v.shape.length || w.shape.some((d, i) => d !== v.shape[i]) || w.values.length !== v.size) {
        throw new DeepSentryError('DS_MODEL', `${source}: weight ${name} has shape [${w.shape}] but the model expects [${v.shape}]`);
      }
      v.assign(tf.tensor(w.values, v.shape, 'float32'));
    }
  }

  /**
   * The identity of every variable's current data, in order. tf.Variable.assign (how weights are written:
   * restore, the optimizer) gives a variable a new data object, so two equal stamps (sameStamp) mean no weight
   * was written in between: the key of a copy of the weights kept outside tfjs. The stamp holds the data
   * objects, so an old one cannot be freed and its identity reused.
   */
  stamp(): readonly DataId[] {
    return [...this.vars.values()].map((v) => v.dataId);
  }

  /** Total number of scalars. */
  size(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
let nextId = 0;

/** Whether two ParamSet stamps are of the same data (no weight written between them). */
export function sameStamp(a: readonly DataId[], b: readonly DataId[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
