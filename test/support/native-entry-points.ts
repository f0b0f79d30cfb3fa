/**
 * Every argument-taking entry point of the addon, as the boundary tests (test/unit/native-boundary.test.ts) see
 * them: a generator of valid argument objects and the fields a fuzzer may break, by kind. Shared with the
 * child process that detaches arrays while async jobs run (test/support/async-detach-child.ts).
 */
import type { NativeBinding } from '../../lib/backend/binding';
import { lstmProblem, randF32, randInt, randWeights, type Dims, type Rng } from './native-helpers';

export type Args = Record<string, unknown>;
export type Kind = 'dim' | 'optdim' | 'num' | 'optnum' | 'f32' | 'optf32' | 'i32' | 'bool' | 'weights' | 'optweights' | 'lengths' | 'tokens' | 'index' | 'bound';

/**
 * The dimension bounding each 'index' field (its entries must lie in [0, args[bound])). A 'bound' is such a
 * dimension that no array length depends on: any positive integer within limits is valid, n+1 included.
 */
export const INDEX_BOUND: Record<string, string> = { labels: 'classes', indices: 'numRows' };
export interface EntryPoint {
  name: keyof NativeBinding;
  /** a valid argument object (fresh arrays every time) */
  valid: (rng: Rng) => Args;
  /** the fields the fuzzer may break, by kind */
  fields: Record<string, Kind>;
}

/** The sizes of the valid calls: each dimension drawn in [lo, hi]. */
export interface EntrySizes {
  batch: [number, number];
  steps: [number, number];
  inputSize: [number, number];
  hiddenSize: [number, number];
  /** m, k and n of matMul */
  matMul: [number, number];
  /** adamUpdate's size */
  adam: [number, number];
}

/** Tiny calls: the fuzzer makes hundreds. */
export const SMALL_SIZES: EntrySizes = { batch: [1, 3], steps: [1, 4], inputSize: [1, 5], hiddenSize: [1, 4], matMul: [1, 4], adam: [1, 40] };

const DIMS = { batch: 'dim', steps: 'dim', inputSize: 'dim', hiddenSize: 'dim' } as const;

/** Valid arguments of every entry point, built through the real forward calls where backward needs them. */
export function entryPoints(native: NativeBinding, sizes: EntrySizes = SMALL_SIZES): EntryPoint[] {
  const draw = (rng: Rng, [lo, hi]: [number, number]) => randInt(rng, lo, hi);
  const dims = (rng: Rng): Dims => ({ batch: draw(rng, sizes.batch), steps: draw(rng, sizes.steps), inputSize: draw(rng, sizes.inputSize), hiddenSize: draw(rng, sizes.hiddenSize) });
  const lstmFwd = (rng: Rng): Args => {
    const p = lstmProblem(rng, dims(rng), { state: true, lengths: true });
    return { ...p };
  };
  const lstmBwd = (rng: Rng): Args => {
    const p = lstmProblem(rng, dims(rng), { state: true, lengths: true });
    const f = native.lstmForward({ ...p, training: true });
    const { batch: B, steps: T, hiddenSize: H } = p;
    return { ...p, y: f.y, workspace: f.workspace, dy: randF32(rng, B * T * H), dh: randF32(rng, B * H), dc: randF32(rng, B * H) };
  };
  const biFwd = (rng: Rng): Args => {
    const d = dims(rng);
    const p = lstmProblem(rng, d, { state: true, lengths: true });
    return { ...d, x: p.x, forward: p.weights, backward: randWeights(rng, d.inputSize, d.hiddenSize), h0Fw: p.h0, c0Fw: p.c0, h0Bw: p.h0, c0Bw: p.c0, lengths: p.lengths };
  };
  const biBwd = (rng: Rng): Args => {
    const a = biFwd(rng);
    const f = native.bilstmForward({ ...a, training: true } as never);
    const B = a.batch as number, T = a.steps as number, H = a.hiddenSize as number;
    return { ...a, y: f.y, workspace: f.workspace, dy: randF32(rng, B * T * 2 * H), dhFw: randF32(rng, B * H), dcFw: randF32(rng, B * H), dhBw: randF32(rng, B * H), dcBw: randF32(rng, B * H) };
  };
  const encX = (rng: Rng): Args => {
    const d = dims(rng);
    const p = lstmProblem(rng, d, { lengths: true });
    return { ...d, x: p.x, weights: p.weights, backwardWeights: randWeights(rng, d.inputSize, d.hiddenSize), lengths: p.lengths };
  };
  const encTokens = (rng: Rng): Args => {
    const d = dims(rng);
    const vocab = randInt(rng, 1, 9);
    const tokens = new Int32Array(d.batch * d.steps).map(() => randInt(rng, 0, vocab - 1));
    return { ...d, tokens, vocabSize: vocab, embedding: randF32(rng, vocab * d.inputSize), weights: randWeights(rng, d.inputSize, d.hiddenSize), reverse: true };
  };
  const mm = (rng: Rng): Args => {
    const m = draw(rng, sizes.matMul), k = draw(rng, sizes.matMul), n = draw(rng, sizes.matMul);
    const batchA = randInt(rng, 1, 2), batchB = batchA === 2 && rng() < 0.5 ? 1 : batchA;
    return { m, k, n, batchA, batchB, a: randF32(rng, batchA * m * k), b: randF32(rng, batchB * k * n), transposeA: rng() < 0.5, transposeB: rng() < 0.5 };
  };
  const adam = (rng: Rng): Args => {
    const size = draw(rng, sizes.adam);
    return { size, weights: randF32(rng, size), gradients: randF32(rng, size), m: randF32(rng, size), v: randF32(rng, size).map(Math.abs), alpha: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, vScale: 1.2, gradScale: 0.5 };
  };
  const xent = (gradient: boolean) => (rng: Rng): Args => {
    const rows = draw(rng, sizes.matMul), inSize = draw(rng, sizes.matMul), classes = draw(rng, sizes.matMul);
    return {
      rows, inSize, classes, x: randF32(rng, rows * inSize), kernel: randF32(rng, inSize * classes), bias: randF32(rng, classes),
      labels: new Int32Array(rows).map(() => randInt(rng, 0, classes - 1)), weights: randF32(rng, rows), gradient,
      ...(gradient ? { dLoss: randF32(rng, rows) } : {}),
    };
  };
  const mse = (gradient: boolean) => (rng: Rng): Args => {
    const rows = draw(rng, sizes.matMul), inSize = draw(rng, sizes.matMul), outSize = draw(rng, sizes.matMul);
    return { rows, inSize, outSize, x: randF32(rng, rows * inSize), kernel: randF32(rng, inSize * outSize), bias: randF32(rng, outSize), target: randF32(rng, rows * outSize), gradient };
  };
  const scatter = (rng: Rng): Args => {
    const rows = draw(rng, sizes.matMul), cols = draw(rng, sizes.matMul), numRows = draw(rng, sizes.matMul);
    return { rows, cols, numRows, x: randF32(rng, rows * cols), indices: new Int32Array(rows).map(() => randInt(rng, 0, numRows - 1)) };
  };
  const xentFields = { rows: 'dim', inSize: 'dim', classes: 'dim', x: 'f32', kernel: 'f32', bias: 'f32', labels: 'index', weights: 'optf32' } as const;
  const state = { h0: 'optf32', c0: 'optf32' } as const;
  const biState = { h0Fw: 'optf32', c0Fw: 'optf32', h0Bw: 'optf32', c0Bw: 'optf32' } as const;
  return [
    { name: 'lstmForward', valid: lstmFwd, fields: { ...DIMS, x: 'f32', weights: 'weights', ...state, lengths: 'lengths', reverse: 'bool', training: 'bool' } },
    { name: 'lstmBackward', valid: lstmBwd, fields: { ...DIMS, x: 'f32', weights: 'weights', ...state, lengths: 'lengths', reverse: 'bool', y: 'f32', workspace: 'f32', dy: 'optf32', dh: 'optf32', dc: 'optf32', inputGradients: 'bool' } },
    { name: 'bilstmForward', valid: biFwd, fields: { ...DIMS, x: 'f32', forward: 'weights', backward: 'weights', ...biState, lengths: 'lengths', training: 'bool' } },
    { name: 'bilstmBackward', valid: biBwd, fields: { ...DIMS, x: 'f32', forward: 'weights', backward: 'weights', ...biState, lengths: 'lengths', y: 'f32', workspace: 'f32', dy: 'optf32', dhFw: 'optf32', dcFw: 'optf32', dhBw: 'optf32', dcBw: 'optf32', inputGradients: 'bool' } },
    { name: 'lstmEncode', valid: encX, fields: { ...DIMS, x: 'f32', weights: 'weights', backwardWeights: 'optweights', lengths: 'lengths' } },
    { name: 'lstmEncode', valid: encTokens, fields: { ...DIMS, tokens: 'tokens', vocabSize: 'dim', embedding: 'f32', weights: 'weights', reverse: 'bool', lengths: 'lengths' } },
    { name: 'matMul', valid: mm, fields: { m: 'dim', k: 'dim', n: 'dim', batchA: 'optdim', batchB: 'optdim', a: 'f32', b: 'f32', transposeA: 'bool', transposeB: 'bool' } },
    { name: 'adamUpdate', valid: adam, fields: { size: 'dim', weights: 'f32', gradients: 'f32', m: 'f32', v: 'f32', alpha: 'num', beta1: 'num', beta2: 'num', epsilon: 'num', vScale: 'optnum', gradScale: 'optnum' } },
    { name: 'denseSoftmaxXent', valid: xent(false), fields: { ...xentFields, gradient: 'bool' } },
    { name: 'denseSoftmaxXent', valid: xent(true), fields: { ...xentFields, gradient: 'bool', dLoss: 'optf32' } },
    { name: 'denseMse', valid: mse(false), fields: { rows: 'dim', inSize: 'dim', outSize: 'dim', x: 'f32', kernel: 'f32', bias: 'f32', target: 'f32', gradient: 'bool' } },
    { name: 'denseMse', valid: mse(true), fields: { rows: 'dim', inSize: 'dim', outSize: 'dim', x: 'f32', kernel: 'f32', bias: 'f32', target: 'f32', gradient: 'bool' } },
    { name: 'scatterAddRows', valid: scatter, fields: { rows: 'dim', cols: 'dim', numRows: 'bound', x: 'f32', indices: 'index' } },
  ];
}

/** The fields adamUpdate updates in place (adamUpdateMany: those of each element of its params). */
export const IN_PLACE: Partial<Record<keyof NativeBinding, readonly string[]>> = { adamUpdate: ['weights', 'm', 'v'], adamUpdateMany: ['weights', 'm', 'v'] };

/** Whether the array at `path` is one `fn` updates in place (a dotted path; IN_PLACE names the field: its last key). */
export function updatedInPlace(fn: string, path: string): boolean {
  const last = path.split('.').pop() as string;
  return (IN_PLACE[fn.replace(/Async$/, '') as keyof NativeBinding] ?? []).includes(last);
}
