/**
 * The native kernels against the float64 TypeScript reference (lib/backend/reference.ts) and against finite
 * differences, at every SIMD level this CPU and build support, on small random shapes chosen to hit the edges:
 * B=1, T=1, sizes that are not multiples of the SIMD width (H=1,3,17,33; I=1,5,19), reverse direction, mixed
 * lengths including 0 and T, h0/c0 given and omitted. Also: bidirectional forward/backward, batched encoding
 * (x, tokens + embedding, bidirectional), matMul (transposes, batch broadcast), 1 vs 2 threads, and the
 * async variants giving bit-identical results to the sync ones.
 *
 * Error measure: maxRelErr (test/support/native-helpers.ts) = max |native − reference| / max |reference| per
 * array. Tolerances: forward 1e-5 (the bound); gradients 1e-4, since float32 gradients are sums over
 * B·T steps of products (their rounding error grows with the number of terms, not with the kernel's quality).
 */
import { expect } from 'chai';
import * as v8 from 'v8';
import * as vm from 'vm';
import { loadNative } from '../../lib/backend/native';
import type { LstmForwardResult, LstmWeightGradients, NativeBinding, SimdLevel } from '../../lib/backend/binding';
import { lstmBackwardRef, lstmForwardRef, lstmProbeLoss, type RefLstmInput } from '../../lib/backend/reference';
import {
  type Dims, type LstmProblem, f64, firstDifference, lstmProblem, maxRelErr, nativeOrSkip, randF32, randInt,
  randWeights, refInput, rngFor, sampleIndices, mixedLengths,
} from '../support/native-helpers';

const FWD_TOL = 1e-5;
const GRAD_TOL = 1e-4;

const SHAPES: Dims[] = [
  { batch: 1, steps: 1, inputSize: 1, hiddenSize: 1 },
  { batch: 1, steps: 7, inputSize: 5, hiddenSize: 3 },
  { batch: 3, steps: 4, inputSize: 19, hiddenSize: 17 },
  { batch: 2, steps: 3, inputSize: 5, hiddenSize: 33 },
  { batch: 4, steps: 5, inputSize: 16, hiddenSize: 16 },
  { batch: 5, steps: 2, inputSize: 1, hiddenSize: 8 },
  { batch: 3, steps: 6, inputSize: 40, hiddenSize: 20 },
];
const VARIANTS = [false, true].flatMap((reverse) =>
  [false, true].flatMap((lengths) => [false, true].map((state) => ({ reverse, lengths, state }))));
const label = (d: Dims, v: { reverse: boolean; lengths: boolean; state: boolean }) =>
  `B=${d.batch} T=${d.steps} I=${d.inputSize} H=${d.hiddenSize}${v.reverse ? ' reverse' : ''}` +
  `${v.lengths ? ' lengths' : ''}${v.state ? ' h0/c0' : ''}`;

function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number) {
  const e = maxRelErr(got, want);
  expect(e, `${what}: max relative error ${e.toExponential(2)} > ${tol}`).to.be.at.most(tol);
}

/** The weight gradients of a weights-only backward call equal the full call's bit for bit. */
function expectSame(what: string, got: LstmWeightGradients, want: LstmWeightGradients) {
  for (const k of ['dKernel', 'dRecurrentKernel', 'dBias'] as const) {
    expect(firstDifference(got[k], want[k]), `${what} ${k}`).to.equal(null);
  }
}

function forwardArgs(p: LstmProblem, training = false) {
  return { ...p, training };
}

/** Random upstream gradients for y, h, c (also the probe weights of the FD loss). */
function upstream(seed: number, d: Dims) {
  const rng = rngFor(seed);
  const { batch: B, steps: T, hiddenSize: H } = d;
  return { dy: randF32(rng, B * T * H), dh: randF32(rng, B * H), dc: randF32(rng, B * H) };
}

/** ∂L/∂(one entry) of the reference loss by central differences in float64. */
function refFd(inp: RefLstmInput, g: { dy: Float32Array; dh: Float32Array; dc: Float32Array }, perturb: (inp: RefLstmInput, delta: number) => RefLstmInput, eps = 1e-6): number {
  const plus = lstmProbeLoss(lstmForwardRef(perturb(inp, eps)), g.dy, g.dh, g.dc);
  const minus = lstmProbeLoss(lstmForwardRef(perturb(inp, -eps)), g.dy, g.dh, g.dc);
  return (plus - minus) / (2 * eps);
}

type Field = 'x' | 'kernel' | 'recurrentKernel' | 'bias' | 'h0' | 'c0';
function perturbed(field: Field, idx: number) {
  return (inp: RefLstmInput, delta: number): RefLstmInput => {
    const copy = { ...inp, weights: { ...inp.weights } };
    if (field === 'kernel' || field === 'recurrentKernel' || field === 'bias') {
      const a = f64(inp.weights[field]);
      a[idx] += delta;
      copy.weights[field] = a;
    } else {
      const a = f64(inp[field]!);
      a[idx] += delta;
      copy[field] = a;
    }
    return copy;
  };
}

/** A full garbage collection (frees the memory of dropped ArrayBuffers). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

/** Frees memory of each size full of 0xff bytes (NaN as floats) for the allocator to hand back to the next outputs. */
function recycleDirty(sizes: number[]): void {
  for (let i = 0; i < 8; i++) for (const n of sizes) Buffer.allocUnsafe(n).fill(0xff);
  collectGarbage();
}

const nativeForLevels = process.env.DEEPSENTRY_NATIVE === 'none' ? null : loadNative();

describe('native LSTM kernels', function () {
  let native: NativeBinding;
  before(function () {
    native = nativeOrSkip(this);
  });

  const caps = nativeForLevels?.capabilities();
  const levels: SimdLevel[] = caps ? caps.simdSupported : ['baseline'];
  after(() => {
    if (caps && nativeForLevels) {
      nativeForLevels.setSimdLevel(caps.simd);
      nativeForLevels.setThreads(caps.threads);
    }
  });

  for (const level of levels) {
    describe(`SIMD level ${level}`, function () {
      before(() => native.setSimdLevel(level));

      it('lstmForward matches the float64 reference (every shape × reverse × lengths × h0/c0)', () => {
        let seed = 100;
        for (const d of SHAPES) {
          for (const v of VARIANTS) {
            const p = lstmProblem(rngFor(seed++), d, v);
            const got = native.lstmForward(forwardArgs(p));
            const ref = lstmForwardRef(refInput(p));
            const what = `${level} ${label(d, v)}`;
            expectClose(`${what} y`, got.y, ref.y, FWD_TOL);
            expectClose(`${what} h`, got.h, ref.h, FWD_TOL);
            expectClose(`${what} c`, got.c, ref.c, FWD_TOL);
            expect(got.workspace, 'no workspace unless training').to.equal(undefined);
          }
        }
      });

      it('training forward gives the same outputs plus a workspace', () => {
        const p = lstmProblem(rngFor(7), SHAPES[2], { lengths: true, state: true });
        const a = native.lstmForward(forwardArgs(p));
        const b = native.lstmForward(forwardArgs(p, true));
        expect(firstDifference(a.y, b.y)).to.equal(null);
        expect(firstDifference(a.h, b.h)).to.equal(null);
        expect(b.workspace).to.be.instanceOf(Float32Array);
      });

      it('a batch gives each sequence bit for bit what it gives alone (the step tiles project x as the one-sequence GEMM does)', () => {
        let seed = 900;
        for (const d of SHAPES.filter((s) => s.batch > 1)) {
          for (const v of VARIANTS) {
            const p = lstmProblem(rngFor(seed++), d, v);
            const all = native.lstmForward(forwardArgs(p));
            const { steps: T, inputSize: I, hiddenSize: H } = d;
            for (let b = 0; b < d.batch; b++) {
              const one = native.lstmForward({
                batch: 1, steps: T, inputSize: I, hiddenSize: H, reverse: p.reverse, weights: p.weights,
                x: p.x.slice(b * T * I, (b + 1) * T * I),
                h0: p.h0?.slice(b * H, (b + 1) * H), c0: p.c0?.slice(b * H, (b + 1) * H),
                lengths: p.lengths?.slice(b, b + 1),
              });
              const what = `${level} ${label(d, v)} sequence ${b}`;
              expect(firstDifference(one.y, all.y.slice(b * T * H, (b + 1) * T * H)), `${what} y`).to.equal(null);
              expect(firstDifference(one.h, all.h.slice(b * H, (b + 1) * H)), `${what} h`).to.equal(null);
            }
          }
        }
      });

      it('the training workspace is zero past each length, whatever memory it was given (it is not zero-filled when allocated); y too', () => {
        const d = SHAPES[6];
        const p = lstmProblem(rngFor(31), d, { lengths: true, state: true });
        const { batch: B, steps: T, inputSize: I, hiddenSize: H } = d;
        const lengths = p.lengths as Int32Array;
        const bi = { ...d, x: p.x, forward: p.weights, backward: randWeights(rngFor(32), I, H), lengths };
        const first = native.bilstmForward({ ...bi, training: true });
        const want = first.workspace!;
        const wantOne = native.lstmForward({ ...p, training: true });
        for (let round = 0; round < 4; round++) {
          // freed memory of the outputs' sizes, full of 0xff bytes (NaN as floats), for the allocator to hand back
          recycleDirty([want.byteLength, first.y.byteLength, wantOne.y.byteLength]);
          const out = native.bilstmForward({ ...bi, training: true });
          const ws = out.workspace!;
          expect(firstDifference(ws, want), `round ${round}`).to.equal(null);
          expect(firstDifference(out.y, first.y), `round ${round} y`).to.equal(null);
          expect(firstDifference(native.lstmForward({ ...p, training: true }).y, wantOne.y), `round ${round} lstmForward y`).to.equal(null);
          for (let b = 0; b < B; b++)
            for (let t = lengths[b]; t < T; t++)
              expect([...out.y.subarray((b * T + t) * 2 * H, (b * T + t + 1) * 2 * H)].every((v) => Object.is(v, 0)), `y b=${b} t=${t}`).to.equal(true);
          const half = ws.length / 2;  // forward direction, then backward: gates [B·T, 4H], then cells [B·T, H]
          for (const base of [0, half])
            for (let b = 0; b < B; b++)
              for (let t = lengths[b]; t < T; t++) {
                const g = ws.subarray(base + (b * T + t) * 4 * H, base + (b * T + t + 1) * 4 * H);
                const c = ws.subarray(base + B * T * 4 * H + (b * T + t) * H, base + B * T * 4 * H + (b * T + t + 1) * H);
                expect([...g, ...c].every((v) => Object.is(v, 0)), `round ${round} b=${b} t=${t}`).to.equal(true);
              }
        }
      });

      it('the weight gradients are the same in any recycled memory, and all +0 when no step is valid (no row reaches them)', () => {
        const d = SHAPES[6];
        const { batch: B, inputSize: I, hiddenSize: H } = d;
        for (const noSteps of [false, true]) {
          const p = lstmProblem(rngFor(33), d, { lengths: true, state: !noSteps });
          const lengths = noSteps ? new Int32Array(B) : (p.lengths as Int32Array);
          const bi = { ...d, x: p.x, forward: p.weights, backward: randWeights(rngFor(34), I, H), lengths };
          const fwd = native.bilstmForward({ ...bi, training: true });
          const dy = randF32(rngFor(35), fwd.y.length);
          const grads = () => native.bilstmBackward({ ...bi, y: fwd.y, workspace: fwd.workspace!, dy, inputGradients: false });
          const want = grads();
          for (let round = 0; round < 3; round++) {
            recycleDirty([want.forward.dKernel.byteLength, want.forward.dRecurrentKernel.byteLength, want.forward.dBias.byteLength]);
            const got = grads();
            for (const dir of ['forward', 'backward'] as const)
              for (const k of ['dKernel', 'dRecurrentKernel', 'dBias'] as const) {
                expect(firstDifference(got[dir][k], want[dir][k]), `${noSteps ? 'no steps' : 'lengths'} round ${round} ${dir}.${k}`).to.equal(null);
                if (noSteps) expect(got[dir][k].every((v) => Object.is(v, 0)), `no steps ${dir}.${k} all +0`).to.equal(true);
              }
          }
        }
      });

      it('lstmBackward matches the float64 reference (every shape × reverse × lengths × h0/c0)', () => {
        let seed = 300;
        for (const d of SHAPES) {
          for (const v of VARIANTS) {
            const p = lstmProblem(rngFor(seed++), d, v);
            const f = native.lstmForward(forwardArgs(p, true));
            const g = upstream(seed * 7, d);
            const got = native.lstmBackward({ ...p, y: f.y, workspace: f.workspace!, ...g });
            const inp = refInput(p);
            const ref = lstmBackwardRef(inp, lstmForwardRef(inp), g);
            const what = `${level} ${label(d, v)}`;
            expectClose(`${what} dx`, got.dx, ref.dx, GRAD_TOL);
            expectClose(`${what} dh0`, got.dh0, ref.dh0, GRAD_TOL);
            expectClose(`${what} dc0`, got.dc0, ref.dc0, GRAD_TOL);
            expectClose(`${what} dKernel`, got.dKernel, ref.dKernel, GRAD_TOL);
            expectClose(`${what} dRecurrentKernel`, got.dRecurrentKernel, ref.dRecurrentKernel, GRAD_TOL);
            expectClose(`${what} dBias`, got.dBias, ref.dBias, GRAD_TOL);
            // weights only: the same weight gradients, bit for bit, and no input gradients
            const w = native.lstmBackward({ ...p, y: f.y, workspace: f.workspace!, ...g, inputGradients: false });
            expect(Object.keys(w).sort(), what).to.deep.equal(['dBias', 'dKernel', 'dRecurrentKernel']);
            expectSame(`${what} weights only`, w, got);
          }
        }
      });

      it('lstmBackward with only some upstream gradients (dy only, dh only, dc only)', () => {
        const d = SHAPES[2];
        const p = lstmProblem(rngFor(11), d, { lengths: true, state: true, reverse: true });
        const f = native.lstmForward(forwardArgs(p, true));
        const g = upstream(12, d);
        const inp = refInput(p);
        const rf = lstmForwardRef(inp);
        for (const only of ['dy', 'dh', 'dc'] as const) {
          const got = native.lstmBackward({ ...p, y: f.y, workspace: f.workspace!, [only]: g[only] });
          const ref = lstmBackwardRef(inp, rf, { [only]: g[only] });
          expectClose(`${level} ${only} only: dx`, got.dx, ref.dx, GRAD_TOL);
          expectClose(`${level} ${only} only: dKernel`, got.dKernel, ref.dKernel, GRAD_TOL);
          expectClose(`${level} ${only} only: dc0`, got.dc0, ref.dc0, GRAD_TOL);
        }
      });

      it('lstmBackward agrees with finite differences of the float64 reference', () => {
        const cases: [Dims, { reverse: boolean; lengths: boolean; state: boolean }][] = [
          [SHAPES[0], { reverse: false, lengths: false, state: true }],
          [{ batch: 2, steps: 3, inputSize: 5, hiddenSize: 3 }, { reverse: true, lengths: true, state: true }],
          [SHAPES[2], { reverse: false, lengths: true, state: true }],
        ];
        let seed = 500;
        for (const [d, v] of cases) {
          const rng = rngFor(seed++);
          const p = lstmProblem(rng, d, v);
          if (p.lengths) p.lengths[0] = d.steps; // keep at least one full-length sequence
          const f = native.lstmForward(forwardArgs(p, true));
          const g = upstream(seed * 13, d);
          const got = native.lstmBackward({ ...p, y: f.y, workspace: f.workspace!, ...g });
          const inp = refInput(p);
          const refGrad = lstmBackwardRef(inp, lstmForwardRef(inp), g);
          const fields: [Field, Float32Array, Float64Array][] = [
            ['x', got.dx, refGrad.dx], ['kernel', got.dKernel, refGrad.dKernel],
            ['recurrentKernel', got.dRecurrentKernel, refGrad.dRecurrentKernel], ['bias', got.dBias, refGrad.dBias],
            ['h0', got.dh0, refGrad.dh0], ['c0', got.dc0, refGrad.dc0],
          ];
          for (const [field, nat, refg] of fields) {
            let scale = 0;
            for (let i = 0; i < refg.length; i++) scale = Math.max(scale, Math.abs(refg[i]));
            for (const i of sampleIndices(rng, nat.length, 12)) {
              const fd = refFd(inp, g, perturbed(field, i));
              const what = `${level} ${label(d, v)} d${field}[${i}]`;
              // the reference's own backward agrees with its finite differences (validates the reference) …
              expect(Math.abs(refg[i] - fd) / Math.max(scale, 1e-6), `${what}: reference vs FD`).to.be.below(1e-6);
              // … and so does the native float32 gradient
              expect(Math.abs(nat[i] - fd) / Math.max(scale, 1e-6), `${what}: native ${nat[i]} vs FD ${fd}`).to.be.below(GRAD_TOL);
            }
          }
        }
      });

      it('lstmBackward agrees with float32 finite differences of the native forward (spot check, loose)', () => {
        const d = { batch: 2, steps: 4, inputSize: 5, hiddenSize: 3 };
        const rng = rngFor(900);
        const p = lstmProblem(rng, d, { state: true, lengths: true });
        p.lengths![0] = d.steps;
        const g = upstream(901, d);
        const f = native.lstmForward(forwardArgs(p, true));
        const got = native.lstmBackward({ ...p, y: f.y, workspace: f.workspace!, ...g });
        // the probe loss of lstmProbeLoss, summed in float64 over the float32 outputs
        const loss = (r: LstmForwardResult) => {
          let s = 0;
          for (let i = 0; i < r.y.length; i++) s += r.y[i] * g.dy[i];
          for (let i = 0; i < r.h.length; i++) s += r.h[i] * g.dh[i] + r.c[i] * g.dc[i];
          return s;
        };
        const eps = 1e-2;
        const scale = Math.max(...Array.from(got.dKernel, Math.abs));
        for (const i of sampleIndices(rng, p.weights.kernel.length, 6)) {
          const k = p.weights.kernel;
          const orig = k[i];
          k[i] = orig + eps;
          const lp = loss(native.lstmForward(forwardArgs(p)));
          k[i] = orig - eps;
          const lm = loss(native.lstmForward(forwardArgs(p)));
          k[i] = orig;
          const fd = (lp - lm) / (2 * eps);
          expect(Math.abs(got.dKernel[i] - fd) / scale, `dKernel[${i}] native ${got.dKernel[i]} vs float32 FD ${fd}`).to.be.below(2e-2);
        }
      });

      it('bilstmForward / bilstmBackward match the two reference directions', () => {
        let seed = 1100;
        for (const d of SHAPES) {
          for (const lengths of [false, true]) {
            const rng = rngFor(seed++);
            const p = lstmProblem(rng, d, { lengths, state: true });
            const bw = { weights: randWeights(rng, d.inputSize, d.hiddenSize), h0: randF32(rng, d.batch * d.hiddenSize, 0.5), c0: randF32(rng, d.batch * d.hiddenSize, 0.5) };
            const args = { ...d, x: p.x, forward: p.weights, backward: bw.weights, h0Fw: p.h0, c0Fw: p.c0, h0Bw: bw.h0, c0Bw: bw.c0, lengths: p.lengths };
            const got = native.bilstmForward({ ...args, training: true });
            const inF = refInput(p, false);
            const inB = refInput(p, true, bw.weights, bw.h0, bw.c0);
            const rf = lstmForwardRef(inF);
            const rb = lstmForwardRef(inB);
            const { batch: B, steps: T, hiddenSize: H } = d;
            const yf = new Float32Array(B * T * H), yb = new Float32Array(B * T * H);
            for (let r = 0; r < B * T; r++) {
              yf.set(got.y.subarray(r * 2 * H, r * 2 * H + H), r * H);
              yb.set(got.y.subarray(r * 2 * H + H, (r + 1) * 2 * H), r * H);
            }
            const what = `${level} bidirectional ${label(d, { reverse: false, lengths, state: true })}`;
            expectClose(`${what} y forward half`, yf, rf.y, FWD_TOL);
            expectClose(`${what} y backward half`, yb, rb.y, FWD_TOL);
            expectClose(`${what} hFw`, got.hFw, rf.h, FWD_TOL);
            expectClose(`${what} cFw`, got.cFw, rf.c, FWD_TOL);
            expectClose(`${what} hBw`, got.hBw, rb.h, FWD_TOL);
            expectClose(`${what} cBw`, got.cBw, rb.c, FWD_TOL);

            const g = upstream(seed * 3, { ...d, hiddenSize: 2 * H });
            const gF = upstream(seed * 5, d), gB = upstream(seed * 11, d);
            const grads = native.bilstmBackward({ ...args, y: got.y, workspace: got.workspace!, dy: g.dy, dhFw: gF.dh, dcFw: gF.dc, dhBw: gB.dh, dcBw: gB.dc });
            const dyF = new Float32Array(B * T * H), dyB = new Float32Array(B * T * H);
            for (let r = 0; r < B * T; r++) {
              dyF.set(g.dy.subarray(r * 2 * H, r * 2 * H + H), r * H);
              dyB.set(g.dy.subarray(r * 2 * H + H, (r + 1) * 2 * H), r * H);
            }
            const refF = lstmBackwardRef(inF, rf, { dy: dyF, dh: gF.dh, dc: gF.dc });
            const refB = lstmBackwardRef(inB, rb, { dy: dyB, dh: gB.dh, dc: gB.dc });
            const dx = refF.dx.map((v, i) => v + refB.dx[i]);
            expectClose(`${what} dx (sum of directions)`, grads.dx, dx, GRAD_TOL);
            expectClose(`${what} dh0Fw`, grads.dh0Fw, refF.dh0, GRAD_TOL);
            expectClose(`${what} dc0Fw`, grads.dc0Fw, refF.dc0, GRAD_TOL);
            expectClose(`${what} dh0Bw`, grads.dh0Bw, refB.dh0, GRAD_TOL);
            expectClose(`${what} dc0Bw`, grads.dc0Bw, refB.dc0, GRAD_TOL);
            expectClose(`${what} forward.dKernel`, grads.forward.dKernel, refF.dKernel, GRAD_TOL);
            expectClose(`${what} forward.dRecurrentKernel`, grads.forward.dRecurrentKernel, refF.dRecurrentKernel, GRAD_TOL);
            expectClose(`${what} forward.dBias`, grads.forward.dBias, refF.dBias, GRAD_TOL);
            expectClose(`${what} backward.dKernel`, grads.backward.dKernel, refB.dKernel, GRAD_TOL);
            expectClose(`${what} backward.dRecurrentKernel`, grads.backward.dRecurrentKernel, refB.dRecurrentKernel, GRAD_TOL);
            expectClose(`${what} backward.dBias`, grads.backward.dBias, refB.dBias, GRAD_TOL);
            const w = native.bilstmBackward({ ...args, y: got.y, workspace: got.workspace!, dy: g.dy, dhFw: gF.dh, dcFw: gF.dc, dhBw: gB.dh, dcBw: gB.dc, inputGradients: false });
            expect(Object.keys(w).sort(), what).to.deep.equal(['backward', 'forward']);
            expectSame(`${what} weights only, forward`, w.forward, grads.forward);
            expectSame(`${what} weights only, backward`, w.backward, grads.backward);
          }
        }
      });

      it('lstmEncode (x; tokens + embedding; reverse; bidirectional) matches the reference final states', () => {
        let seed = 1300;
        for (const d of SHAPES) {
          const rng = rngFor(seed++);
          const { batch: B, steps: T, inputSize: I, hiddenSize: H } = d;
          const vocab = randInt(rng, 1, 40);
          const embedding = randF32(rng, vocab * I);
          const tokens = new Int32Array(B * T).map(() => randInt(rng, 0, vocab - 1));
          const xTok = new Float32Array(B * T * I);
          for (let i = 0; i < B * T; i++) xTok.set(embedding.subarray(tokens[i] * I, (tokens[i] + 1) * I), i * I);
          const lengths = mixedLengths(rng, B, T);
          const wf = randWeights(rng, I, H), wb = randWeights(rng, I, H);
          const base = { batch: B, steps: T, inputSize: I, hiddenSize: H, lengths };
          const ref = (x: Float32Array, w: typeof wf, reverse: boolean) =>
            lstmForwardRef({ ...base, x, weights: w, reverse });
          const what = `${level} encode B=${B} T=${T} I=${I} H=${H}`;
          for (const reverse of [false, true]) {
            const r = ref(xTok, wf, reverse);
            const viaX = native.lstmEncode({ ...base, x: xTok, weights: wf, reverse });
            expectClose(`${what} x reverse=${reverse} h`, viaX.h, r.h, FWD_TOL);
            expectClose(`${what} x reverse=${reverse} c`, viaX.c, r.c, FWD_TOL);
            const viaTokens = native.lstmEncode({ ...base, tokens, embedding, vocabSize: vocab, weights: wf, reverse });
            expectClose(`${what} tokens reverse=${reverse} h`, viaTokens.h, r.h, FWD_TOL);
            expectClose(`${what} tokens reverse=${reverse} c`, viaTokens.c, r.c, FWD_TOL);
          }
          const rf = ref(xTok, wf, false), rb = ref(xTok, wb, true);
          const hWant = new Float64Array(B * 2 * H), cWant = new Float64Array(B * 2 * H);
          for (let b = 0; b < B; b++) {
            hWant.set(rf.h.subarray(b * H, (b + 1) * H), b * 2 * H);
            hWant.set(rb.h.subarray(b * H, (b + 1) * H), b * 2 * H + H);
            cWant.set(rf.c.subarray(b * H, (b + 1) * H), b * 2 * H);
            cWant.set(rb.c.subarray(b * H, (b + 1) * H), b * 2 * H + H);
          }
          for (const src of [{ x: xTok }, { tokens, embedding, vocabSize: vocab }]) {
            const bi = native.lstmEncode({ ...base, ...src, weights: wf, backwardWeights: wb });
            expectClose(`${what} bidirectional ${'x' in src ? 'x' : 'tokens'} h`, bi.h, hWant, FWD_TOL);
            expectClose(`${what} bidirectional ${'x' in src ? 'x' : 'tokens'} c`, bi.c, cWant, FWD_TOL);
          }
        }
      });

      it('matMul matches a float64 product (transposes, batch broadcast, odd sizes)', () => {
        const rng = rngFor(1500);
        const sizes = [[1, 1, 1], [3, 17, 5], [19, 33, 7], [16, 16, 16], [2, 5, 65], [33, 1, 9]];
        const batches = [[1, 1], [3, 3], [1, 3], [3, 1]];
        for (const [m, k, n] of sizes) {
          for (const [batchA, batchB] of batches) {
            for (const transposeA of [false, true]) {
              for (const transposeB of [false, true]) {
                const a = randF32(rng, batchA * m * k), b = randF32(rng, batchB * k * n);
                const got = native.matMul({ a, b, m, k, n, batchA, batchB, transposeA, transposeB });
                const batch = Math.max(batchA, batchB);
                const want = new Float64Array(batch * m * n);
                for (let p = 0; p < batch; p++) {
                  const ao = batchA === 1 ? 0 : p * m * k, bo = batchB === 1 ? 0 : p * k * n;
                  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
                    let s = 0;
                    for (let q = 0; q < k; q++) {
                      s += a[ao + (transposeA ? q * m + i : i * k + q)] * b[bo + (transposeB ? j * k + q : q * n + j)];
                    }
                    want[p * m * n + i * n + j] = s;
                  }
                }
                expectClose(`${level} matMul m=${m} k=${k} n=${n} batch ${batchA}/${batchB} tA=${transposeA} tB=${transposeB}`, got, want, FWD_TOL);
              }
            }
          }
        }
      });
    });
  }

  describe('threads and async', function () {
    // Big enough that a second thread gets work (several sequences, wide gates), still a few ms.
    const d: Dims = { batch: 16, steps: 6, inputSize: 40, hiddenSize: 48 };
    function everything(n: NativeBinding, seed: number) {
      const rng = rngFor(seed);
      const p = lstmProblem(rng, d, { lengths: true, state: true });
      const wb = randWeights(rng, d.inputSize, d.hiddenSize);
      const g = upstream(seed + 1, d);
      const g2 = upstream(seed + 2, { ...d, hiddenSize: 2 * d.hiddenSize });
      const fwd = n.lstmForward(forwardArgs(p, true));
      const bwd = n.lstmBackward({ ...p, y: fwd.y, workspace: fwd.workspace!, ...g });
      const bi = { ...d, x: p.x, forward: p.weights, backward: wb, lengths: p.lengths };
      const biF = n.bilstmForward({ ...bi, training: true });
      const biB = n.bilstmBackward({ ...bi, y: biF.y, workspace: biF.workspace!, dy: g2.dy });
      const biW = n.bilstmBackward({ ...bi, y: biF.y, workspace: biF.workspace!, dy: g2.dy, inputGradients: false });
      const enc = n.lstmEncode({ ...d, x: p.x, weights: p.weights, backwardWeights: wb, lengths: p.lengths });
      const mm = n.matMul({ a: p.x, b: p.weights.kernel, m: d.batch * d.steps, k: d.inputSize, n: 4 * d.hiddenSize });
      return { p, wb, g, g2, outputs: { 'fwd.y': fwd.y, 'fwd.h': fwd.h, 'bwd.dx': bwd.dx, 'bwd.dKernel': bwd.dKernel, 'bwd.dRecurrentKernel': bwd.dRecurrentKernel, 'bi.y': biF.y, 'biB.dx': biB.dx, 'biB.forward.dKernel': biB.forward.dKernel, 'biW.backward.dRecurrentKernel': biW.backward.dRecurrentKernel, 'enc.h': enc.h, matMul: mm } };
    }

    it('1 and 2 threads agree within float tolerance at every SIMD level', () => {
      const caps = native.capabilities();
      try {
        for (const level of caps.simdSupported) {
          native.setSimdLevel(level);
          native.setThreads(1);
          const one = everything(native, 2000).outputs;
          native.setThreads(2);
          expect(native.capabilities().threads).to.equal(2);
          const two = everything(native, 2000).outputs;
          for (const k of Object.keys(one) as (keyof typeof one)[]) {
            expectClose(`${level} ${k}: 2 threads vs 1`, two[k], one[k], 1e-6);
          }
        }
      } finally {
        native.setSimdLevel(caps.simd);
        native.setThreads(caps.threads);
      }
    });

    it('every *Async variant resolves with exactly the sync result', async () => {
      const { p, wb, g, g2, outputs } = everything(native, 3000);
      const fwd = await native.lstmForwardAsync(forwardArgs(p, true));
      expect(firstDifference(fwd.y, outputs['fwd.y'])).to.equal(null);
      expect(firstDifference(fwd.h, outputs['fwd.h'])).to.equal(null);
      const bwd = await native.lstmBackwardAsync({ ...p, y: fwd.y, workspace: fwd.workspace!, ...g });
      expect(firstDifference(bwd.dx, outputs['bwd.dx'])).to.equal(null);
      expect(firstDifference(bwd.dKernel, outputs['bwd.dKernel'])).to.equal(null);
      expect(firstDifference(bwd.dRecurrentKernel, outputs['bwd.dRecurrentKernel'])).to.equal(null);
      const bi = { ...d, x: p.x, forward: p.weights, backward: wb, lengths: p.lengths };
      const biF = await native.bilstmForwardAsync({ ...bi, training: true });
      expect(firstDifference(biF.y, outputs['bi.y'])).to.equal(null);
      const biB = await native.bilstmBackwardAsync({ ...bi, y: biF.y, workspace: biF.workspace!, dy: g2.dy });
      expect(firstDifference(biB.dx, outputs['biB.dx'])).to.equal(null);
      expect(firstDifference(biB.forward.dKernel, outputs['biB.forward.dKernel'])).to.equal(null);
      const enc = await native.lstmEncodeAsync({ ...d, x: p.x, weights: p.weights, backwardWeights: wb, lengths: p.lengths });
      expect(firstDifference(enc.h, outputs['enc.h'])).to.equal(null);
      const mm = await native.matMulAsync({ a: p.x, b: p.weights.kernel, m: d.batch * d.steps, k: d.inputSize, n: 4 * d.hiddenSize });
      expect(firstDifference(mm, outputs.matMul)).to.equal(null);
    });

    it('many async jobs in flight at once all resolve correctly', async () => {
      const { p, outputs } = everything(native, 3100);
      const jobs = Array.from({ length: 8 }, () => native.lstmForwardAsync(forwardArgs(p)));
      for (const r of await Promise.all(jobs)) expect(firstDifference(r.y, outputs['fwd.y'])).to.equal(null);
    });
  });
});
