/**
 * Helpers for the native addon tests (test/unit/native-*.test.ts, test/e2e/native-*.test.ts): getting the addon, seeded random problems whose
 * float32 inputs are shared by the native call and the float64 reference, and error measures.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { loadNative, nativeStatus, packageRoot } from '../../lib/backend/native';
import { DeepSentryError } from '../../lib/errors';
import type { LstmWeights, NativeBinding } from '../../lib/backend/binding';
import { mulberry32, type RefLstmInput } from '../../lib/backend/reference';
import { skipBecause, skipUnlessCI } from './skip';

/**
 * The addon, or null when it was turned off on purpose (DEEPSENTRY_NATIVE=none): then the suites skip.
 * A missing or broken build is a failure, not a skip — CI must not pass because the build silently failed.
 */
export function nativeOrSkip(ctx: Mocha.Context): NativeBinding {
  if (process.env.DEEPSENTRY_NATIVE === 'none') skipBecause(ctx, 'the native addon is turned off (DEEPSENTRY_NATIVE=none)');
  const b = loadNative();
  if (b === null) throw new Error('the native addon did not load: run `npm run build:native` (see `deepsentry info`)');
  return b;
}

/**
 * The absolute path of a build product that is not the shipped addon, given relative to the package root and
 * made by `npm run <script>` (build:verify: build/Release/deepsentry_verify.node, deepsentry_hostsim.node and
 * build/ds_kernel_selftest; build:gyp: build-gyp/). When it is missing the test (or, from a `before`
 * hook, the suite) is skipped with the reason in the output, except under CI=true (.ci/run builds them all),
 * where that is a failure: CI must not go green by not running the check.
 */
export function builtOrSkip(ctx: Mocha.Context, relative: string, script: string): string {
  const file = path.join(packageRoot(), relative);
  if (fs.existsSync(file)) return file;
  skipUnlessCI(ctx, `${relative} not built (run \`npm run ${script}\`)`);
}

/** A verification target (`npm run build:verify`): see builtOrSkip. */
export function verifyBuildOrSkip(ctx: Mocha.Context, relative: string): string {
  return builtOrSkip(ctx, relative, 'build:verify');
}

/** The verification addon (native/verify): its entry points, its errors DeepSentryErrors. */
export function verifyAddonOrSkip<T>(ctx: Mocha.Context): T {
  const file = verifyBuildOrSkip(ctx, path.join('build', 'Release', 'deepsentry_verify.node'));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const addon = require(file) as { setErrorClass(cls: typeof DeepSentryError): void };
  addon.setErrorClass(DeepSentryError);
  return addon as unknown as T;
}

export type Rng = () => number;
export const rngFor = (seed: number): Rng => mulberry32(seed);

/** Uniform in [-scale, scale), as float32. */
export function randF32(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng() * 2 - 1) * scale;
  return a;
}
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/**
 * Error of `a` against the reference `b`, normalised by the largest magnitude in `b`:
 *   max_i |a_i − b_i| / max(max_i |b_i|, 1e-6).
 * Element-wise relative error (|a−b|/|b|) is meaningless for entries near 0 (a hidden unit that happens to be
 * ~0 carries only float32 rounding noise); normalising by the array's scale measures the error the way it
 * matters, and stays strict for all-small arrays thanks to the tiny floor.
 */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs reference ${b.length}`);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : Math.max(err, d);
  }
  return err / Math.max(scale, 1e-6);
}

export interface Dims {
  batch: number;
  steps: number;
  inputSize: number;
  hiddenSize: number;
}

/** Weights of the Keras layout, scaled so that gates are neither saturated nor linear. */
export function randWeights(rng: Rng, I: number, H: number): LstmWeights {
  const s = 1 / Math.sqrt(I + H);
  return { kernel: randF32(rng, I * 4 * H, 2 * s), recurrentKernel: randF32(rng, H * 4 * H, 2 * s), bias: randF32(rng, 4 * H, 0.5) };
}

/** Lengths with the extremes forced in when there are enough sequences: one 0 and one full T. */
export function mixedLengths(rng: Rng, B: number, T: number): Int32Array {
  const l = new Int32Array(B);
  for (let b = 0; b < B; b++) l[b] = randInt(rng, 0, T);
  if (B >= 2) {
    l[0] = T;
    l[B - 1] = 0;
  }
  return l;
}

export interface LstmProblem extends Dims {
  x: Float32Array;
  weights: LstmWeights;
  h0?: Float32Array;
  c0?: Float32Array;
  lengths?: Int32Array;
  reverse: boolean;
}

export function lstmProblem(
  rng: Rng,
  d: Dims,
  opts: { state?: boolean; lengths?: boolean; reverse?: boolean } = {},
): LstmProblem {
  const { batch: B, steps: T, inputSize: I, hiddenSize: H } = d;
  return {
    ...d,
    x: randF32(rng, B * T * I),
    weights: randWeights(rng, I, H),
    h0: opts.state ? randF32(rng, B * H, 0.5) : undefined,
    c0: opts.state ? randF32(rng, B * H, 0.5) : undefined,
    lengths: opts.lengths ? mixedLengths(rng, B, T) : undefined,
    reverse: !!opts.reverse,
  };
}

/** The same problem for the float64 reference (it reads the very float32 values the addon reads). */
export function refInput(p: LstmProblem, reverse = p.reverse, weights: LstmWeights = p.weights, h0 = p.h0, c0 = p.c0): RefLstmInput {
  return { batch: p.batch, steps: p.steps, inputSize: p.inputSize, hiddenSize: p.hiddenSize, x: p.x, weights, h0, c0, lengths: p.lengths, reverse };
}

/** Copy of an array with a Float32Array's values as float64 (for perturbing one entry in FD checks). */
export function f64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}

/** The given entries, or every index when the array is small, else `count` seeded random ones. */
export function sampleIndices(rng: Rng, n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const s = new Set<number>();
  while (s.size < count) s.add(Math.floor(rng() * n));
  return [...s];
}

/**
 * Whether the loaded addon is the hostsim build (native/cuda/hostsim/README.md): its CUDA kernel bodies are then
 * compiled by the host compiler with the CPU kernels' flags, so the device suites can expect the CPU's results
 * where the arithmetic is the same (the bf16 tier); on a GPU nvcc compiles them.
 */
export function cudaKernelsHostCompiled(): boolean {
  return path.basename(nativeStatus().path ?? '') === 'deepsentry_hostsim.node';
}

/**
 * The bf16 tier's contract on LSTM outputs (they lie in (−1, 1)): every output of `bf` within 1e-2 of
 * max(|fp|, 1) of the fp32 result `fp`, and not all equal to it (the tier really ran). Returns the worst error.
 */
export function expectBf16Contract(what: string, bf: Float32Array, fp: Float32Array): number {
  expect(bf.length).to.equal(fp.length);
  let worst = 0;
  for (let i = 0; i < fp.length; i++) {
    const rel = Math.abs(bf[i] - fp[i]) / Math.max(Math.abs(fp[i]), 1);
    if (!(rel <= worst)) worst = Number.isNaN(rel) ? Infinity : rel;
  }
  expect(worst, `${what}: worst |bf16 − fp32| / max(|fp32|, 1)`).to.be.at.most(1e-2);
  expect(bf, `${what}: bf16 gave exactly the fp32 result (did the tier run?)`).to.not.deep.equal(fp);
  return worst;
}

/** Exact (bitwise) equality of two float32 results, with the first difference in the message. */
export function firstDifference(a: Float32Array, b: Float32Array): string | null {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) return `index ${i}: ${a[i]} vs ${b[i]}`;
  }
  return null;
}

/**
 * Central differences (±eps) of `loss` at the first, middle and last element of each Float32Array field named in
 * `grads`, against the gradient the kernel gave for it: |numeric − kernel| < 2e-3·max(1, |numeric|).
 */
export function expectCentralDifferences<A extends object>(args: A, loss: (a: A) => number, grads: [keyof A & string, Float32Array | undefined][], eps = 1e-2): void {
  for (const [field, grad] of grads) {
    const base = args[field] as unknown as Float32Array;
    for (const i of [0, Math.floor(base.length / 2), base.length - 1]) {
      const plus = base.slice();
      plus[i] += eps;
      const minus = base.slice();
      minus[i] -= eps;
      const num = (loss({ ...args, [field]: plus }) - loss({ ...args, [field]: minus })) / (2 * eps);
      expect(Math.abs(num - grad![i]), `${field}[${i}]: numeric ${num}, kernel ${grad![i]}`).to.be.below(2e-3 * Math.max(1, Math.abs(num)));
    }
  }
}
