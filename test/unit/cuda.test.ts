/**
 * The CUDA part of the addon (native/cuda), in three suites:
 *
 * 1. "CUDA build": the addon was compiled with the CUDA sources when nvcc is present, still loads without a
 *    driver or GPU, reports why CUDA cannot be used, and refuses to build a CudaLstm with DS_CUDA (after
 *    checking its arguments like every other entry point).
 * 2. "CUDA kernels on the host emulator": runs on every machine, nvcc or not, from the verification addon
 *    (`npm run build:verify` → build/Release/deepsentry_verify.node; not in the shipped addon). Its
 *    cudaEmulator executes the kernels' own per-thread bodies (native/cuda/lstm_kernels.cuh) for every block and thread of the grid,
 *    in the kernels' phase order, with memory that checks each index, that each output element is written
 *    exactly once and that no two threads race between barriers. Results are compared with the float64
 *    reference (lib/backend/reference.ts). This proves the index arithmetic, tiling, edge handling, work
 *    decomposition, barrier placement and the math for these shapes — not the device (compiler, memory model
 *    of grid.sync, occupancy, launch limits, speed): only suite 3 on a GPU does that.
 * 3. "CUDA device": CudaLstm against the CPU kernels and the reference (relative error < 1e-4) and gradients
 *    against finite differences. Without a device every test is skipped with the CUDA error in its title;
 *    DEEPSENTRY_EXPECT_GPU=1 turns that skip into a failure (a GPU runner must not pass by skipping).
 *
 * Error measure: maxRelErr (test/support/native-helpers.ts), max |got − want| / max |want| per array.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import type {
  BiLstmForwardResult, BiLstmGradients, CudaBinding as CudaEntryPoints, CudaLstm, CudaLstmMode, NativeBinding, Precision,
} from '../../lib/backend/binding';
import { DeepSentryError } from '../../lib/errors';
import { lstmBackwardRef, lstmForwardRef, lstmProbeLoss } from '../../lib/backend/reference';
import {
  type Dims, type LstmProblem, cudaKernelsHostCompiled, expectBf16Contract, firstDifference, lstmProblem, maxRelErr, nativeOrSkip, randF32, randInt,
  randWeights, refInput, rngFor, sampleIndices, verifyAddonOrSkip,
} from '../support/native-helpers';
import { skipBecause } from '../support/skip';

// ---- the CUDA entry points (native/cuda/cuda_binding.cpp) and the emulator (native/verify/emulate.cpp) ----

/** Emulator options: the launch shape of the recurrent kernels. */
interface EmuLaunch {
  unitsPerBlock?: number;
  threadsPerBlock?: number;
  persistent?: boolean;
  /** negative control: drop the barrier between steps (the race check must fire) */
  omitStepBarrier?: boolean;
}

interface CudaEmulator {
  sgemm(args: {
    m: number; n: number; k: number; a: Float32Array; b: Float32Array; c?: Float32Array;
    transA?: boolean; transB?: boolean; accumulate?: boolean; lda?: number; ldb?: number; ldc?: number;
    aRows?: Int32Array; aRowCount?: number; bias?: Float32Array;
    /** the bf16 tier's form: b rounded into pair words, op(a) rounded as loaded, pairs accumulated in float32 */
    bf16?: boolean;
  }): { c: Float32Array; faults: string[] };
  lstmForward(args: Record<string, unknown> & EmuLaunch): {
    y: Float32Array; h: Float32Array; c: Float32Array; gates: Float32Array; cells: Float32Array; faults: string[];
  };
  lstmBackward(args: Record<string, unknown> & EmuLaunch): {
    dx: Float32Array; dh0: Float32Array; dc0: Float32Array; dKernel: Float32Array; dRecurrentKernel: Float32Array;
    dBias: Float32Array; faults: string[];
  };
}

/** The addon with its CUDA entry points. */
type CudaBinding = NativeBinding & CudaEntryPoints;

/** The emulator, from the verification addon (native/verify/emulate.cpp). */
function emulator(ctx: Mocha.Context): CudaEmulator {
  return verifyAddonOrSkip<{ cudaEmulator: CudaEmulator }>(ctx).cudaEmulator;
}

function cudaBinding(ctx: Mocha.Context): CudaBinding {
  const b = nativeOrSkip(ctx);
  if (!b.capabilities().cudaCompiled) {
    skipBecause(ctx, b.capabilities().cudaError ?? 'CUDA not compiled in');
  }
  return b as CudaBinding;
}

/** An executable nvcc on PATH (looked up, not run: the unit tests start no child process). */
function nvccPresent(): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', 'nvcc'), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  const e = maxRelErr(got, want);
  expect(e, `${what}: max relative error ${e.toExponential(2)} > ${tol}`).to.be.at.most(tol);
}

/** Bit-for-bit equality (+0 and −0 differ), naming the first difference. */
function expectIdentical(what: string, got: Float32Array, want: Float32Array): void {
  expect(firstDifference(got, want), what).to.equal(null);
}

/** The bf16 tier's contract against fp32 (expectBf16Contract), or equality when every sequence is empty (nothing computed). */
function expectBf16VsFp32(what: string, p: LstmProblem, bf: Float32Array, fp: Float32Array): void {
  if (!p.lengths || p.lengths.some((l) => l > 0)) expectBf16Contract(what, bf, fp);
  else expectIdentical(`${what} (nothing computed)`, bf, fp);
}

/** `f` with the addon's products at `precision` (process-wide), then fp32 again. */
function atPrecision<T>(nb: NativeBinding, precision: Precision, f: () => T): T {
  nb.setPrecision(precision);
  try {
    return f();
  } finally {
    nb.setPrecision('fp32');
  }
}

// ---- 1. build -------------------------------------------------------------------------------------------

describe('CUDA build', function () {
  it('compiles the CUDA sources into the addon when nvcc is present', function () {
    const b = nativeOrSkip(this);
    const caps = b.capabilities();
    if (process.env.DEEPSENTRY_CUDA === 'OFF') {
      expect(caps.cudaCompiled, 'DEEPSENTRY_CUDA=OFF but the addon has CUDA').to.equal(false);
      return;
    }
    if (!nvccPresent()) {
      // CMake may still find nvcc off PATH (e.g. /usr/local/cuda/bin): nothing to require then.
      this.test!.title += ` (no nvcc on PATH; addon cudaCompiled: ${caps.cudaCompiled})`;
      return;
    }
    expect(caps.cudaCompiled, 'nvcc is on PATH but the addon was built without CUDA').to.equal(true);
    expect(caps.cudaRuntimeVersion).to.be.a('number').and.to.be.at.least(12000);
  });

  it('the shipped addon has no test-only code: the emulator is in the verification addon', function () {
    expect(nativeOrSkip(this)).to.not.have.property('cudaEmulator');
  });

  it('loads without a usable device and reports why, with the CUDA error text', function () {
    const b = cudaBinding(this);
    const caps = b.capabilities();
    if (caps.cudaDeviceCount > 0) {
      expect(caps.cudaError).to.equal(null);
      this.test!.title += ' (a device is present)';
      return;
    }
    expect(caps.cudaError).to.be.a('string').and.to.match(/^cudaGetDeviceCount: (cudaError\w+: .+ \(\d+\)|no CUDA device)$/);
  });

  it('CudaLstm checks its arguments first, then throws DS_CUDA when CUDA is unusable', function () {
    const b = cudaBinding(this);
    const w = randWeights(rngFor(1), 2, 3);
    expect(() => new b.CudaLstm({ inputSize: 2, hiddenSize: 3, ...w, kernel: new Float32Array(23) }))
      .to.throw(DeepSentryError).with.property('code', 'DS_SHAPE_MISMATCH');
    expect(() => new b.CudaLstm({ inputSize: 0, hiddenSize: 3, ...w }))
      .to.throw(DeepSentryError, /inputSize/).with.property('code', 'DS_OUT_OF_RANGE');
    expect(() => new b.CudaLstm({ inputSize: 2, hiddenSize: 3, ...w, mode: 'fast' as CudaLstmMode }))
      .to.throw(DeepSentryError, /mode/);
    expect(() => new b.CudaLstm({ inputSize: 2, hiddenSize: 3, ...w, precision: 'fp16' as Precision }))
      .to.throw(DeepSentryError, /expected precision to be 'fp32' or 'bf16'/).with.property('code', 'DS_INVALID_ARGUMENT');
    const caps = b.capabilities();
    if (caps.cudaDeviceCount > 0) return;
    let err: unknown;
    try {
      new b.CudaLstm({ inputSize: 2, hiddenSize: 3, ...w });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(DeepSentryError);
    expect((err as DeepSentryError).code).to.equal('DS_CUDA');
    expect((err as Error).message).to.contain(caps.cudaError!);
    expect(b.cudaPoolStats()).to.deep.equal({ bytesInUse: 0, bytesCached: 0, mallocs: 0, reuses: 0 });
  });
});

// ---- 2. emulator ------------------------------------------------------------------------------------------

/** Naive C = (acc ? C : 0) + op(A)·op(B) in float64. */
function gemmRef(o: {
  m: number; n: number; k: number; a: Float32Array; b: Float32Array; c?: Float32Array; transA?: boolean;
  transB?: boolean; lda: number; ldb: number; ldc: number; aRows?: Int32Array;
}): Float64Array {
  const out = new Float64Array(o.m * o.ldc);
  if (o.c) out.set(o.c);
  for (let r = 0; r < o.m; r++) {
    for (let c = 0; c < o.n; c++) {
      let s = o.c ? out[r * o.ldc + c] : 0;
      for (let kk = 0; kk < o.k; kk++) {
        const row = o.aRows ? o.aRows[r] : r;
        const av = o.transA ? o.a[kk * o.lda + r] : o.a[row * o.lda + kk];
        const bv = o.transB ? o.b[c * o.ldb + kk] : o.b[kk * o.ldb + c];
        s += av * bv;
      }
      out[r * o.ldc + c] = s;
    }
  }
  return out;
}

const EMU_SHAPES: Dims[] = [
  { batch: 1, steps: 1, inputSize: 1, hiddenSize: 1 },
  { batch: 3, steps: 5, inputSize: 7, hiddenSize: 5 },
  { batch: 2, steps: 4, inputSize: 19, hiddenSize: 13 },
  { batch: 5, steps: 3, inputSize: 3, hiddenSize: 9 },
];
// Launch shapes: units per block that do and do not divide H, fewer threads than pairs (threads stride),
// more threads than pairs (idle threads), persistent and per-step forms.
const LAUNCHES: EmuLaunch[] = [
  { unitsPerBlock: 1, threadsPerBlock: 32, persistent: false },
  { unitsPerBlock: 2, threadsPerBlock: 3, persistent: true },
  { unitsPerBlock: 4, threadsPerBlock: 7, persistent: false },
  { unitsPerBlock: 64, threadsPerBlock: 64, persistent: true },
];

function emuArgs(p: LstmProblem, launch: EmuLaunch): Record<string, unknown> & EmuLaunch {
  return { ...p, ...launch };
}

describe('CUDA kernels on the host emulator', function () {
  it('tiled sgemm: odd sizes, transposes, leading dimensions, accumulate and row gather', function () {
    const emu = emulator(this);
    const rng = rngFor(7);
    const cases = [
      { m: 1, n: 1, k: 1 }, { m: 65, n: 63, k: 17 }, { m: 64, n: 64, k: 16 }, { m: 3, n: 130, k: 33 },
      { m: 129, n: 5, k: 1 }, { m: 7, n: 9, k: 0 },
    ];
    let runs = 0;
    for (const s of cases) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const mode of ['plain', 'padded', 'accumulate', 'gather'] as const) {
            if (mode === 'gather' && transA) continue;
            const pad = mode === 'padded' ? 3 : 0;
            const lda = (transA ? s.m : s.k) + pad;
            const ldb = (transB ? s.k : s.n) + pad;
            const ldc = s.n;
            const aRowCount = mode === 'gather' ? 11 : transA ? s.k : s.m;
            const a = randF32(rng, aRowCount * lda);
            const b = randF32(rng, (transB ? s.n : s.k) * ldb);
            const c = mode === 'accumulate' ? randF32(rng, s.m * ldc) : undefined;
            const aRows = mode === 'gather' ? Int32Array.from({ length: s.m }, () => randInt(rng, 0, aRowCount - 1)) : undefined;
            const args = { ...s, a, b, c, transA, transB, accumulate: !!c, lda, ldb, ldc, aRows, aRowCount };
            const got = emu.sgemm(args);
            const what = `m=${s.m} n=${s.n} k=${s.k} tA=${transA} tB=${transB} ${mode}`;
            expect(got.faults, what).to.deep.equal([]);
            expectClose(what, got.c, gemmRef(args), 1e-6);
            runs++;
          }
        }
      }
    }
    expect(runs).to.equal(cases.length * 14);
  });

  it('the bounds check fires on an out-of-bounds read (negative control)', function () {
    const emu = emulator(this);
    // lda = k - 1 is too small: the last row of A reaches past the end of the array.
    const r = emu.sgemm({ m: 4, n: 4, k: 5, lda: 4, a: new Float32Array(16), b: new Float32Array(20) });
    expect(r.faults.join('\n')).to.match(/read out of bounds: A\[16\]/);
  });

  it('the race check fires when the barrier between steps is missing (negative control)', function () {
    const emu = emulator(this);
    const p = lstmProblem(rngFor(3), { batch: 2, steps: 3, inputSize: 2, hiddenSize: 4 });
    for (const persistent of [false, true]) {
      const r = emu.lstmForward(emuArgs(p, { unitsPerBlock: 2, threadsPerBlock: 4, persistent, omitStepBarrier: true }));
      expect(r.faults.join('\n'), `persistent=${persistent}`).to.match(/race: hbuf\[\d+\]/);
    }
    const f = emu.lstmForward(emuArgs(p, { unitsPerBlock: 2, threadsPerBlock: 4, persistent: true }));
    expect(f.faults).to.deep.equal([]);
    const g = emu.lstmBackward({
      ...emuArgs(p, { unitsPerBlock: 2, threadsPerBlock: 4, persistent: true, omitStepBarrier: true }),
      y: f.y, gates: f.gates, cells: f.cells, dh: randF32(rngFor(4), 2 * 4),
    });
    expect(g.faults.join('\n')).to.match(/race: dpre\[\d+\]/);
  });

  for (const d of EMU_SHAPES) {
    for (const [li, launch] of LAUNCHES.entries()) {
      const v = { reverse: li % 2 === 1, lengths: li >= 2, state: li !== 1 };
      const name = `forward and backward B=${d.batch} T=${d.steps} I=${d.inputSize} H=${d.hiddenSize} ` +
        `U=${launch.unitsPerBlock} threads=${launch.threadsPerBlock} ${launch.persistent ? 'persistent' : 'per-step'}` +
        `${v.reverse ? ' reverse' : ''}${v.lengths ? ' lengths' : ''}${v.state ? ' h0/c0' : ''}`;
      it(name, function () {
        const emu = emulator(this);
        const rng = rngFor(100 + d.hiddenSize * 7 + li);
        const p = lstmProblem(rng, d, v);
        const fwd = emu.lstmForward(emuArgs(p, launch));
        expect(fwd.faults, 'forward faults').to.deep.equal([]);
        const ref = lstmForwardRef(refInput(p));
        expectClose('y', fwd.y, ref.y, 1e-5);
        expectClose('h', fwd.h, ref.h, 1e-5);
        expectClose('c', fwd.c, ref.c, 1e-5);
        expectClose('gates', fwd.gates, ref.gates, 1e-5);
        expectClose('cells', fwd.cells, ref.cells, 1e-5);

        const { batch: B, steps: T, hiddenSize: H } = d;
        const dy = randF32(rng, B * T * H);
        const dh = randF32(rng, B * H);
        const dc = randF32(rng, B * H);
        const bwd = emu.lstmBackward({ ...emuArgs(p, launch), y: fwd.y, gates: fwd.gates, cells: fwd.cells, dy, dh, dc });
        expect(bwd.faults, 'backward faults').to.deep.equal([]);
        const g = lstmBackwardRef(refInput(p), ref, { dy, dh, dc });
        expectClose('dx', bwd.dx, g.dx, 1e-4);
        expectClose('dh0', bwd.dh0, g.dh0, 1e-4);
        expectClose('dc0', bwd.dc0, g.dc0, 1e-4);
        expectClose('dKernel', bwd.dKernel, g.dKernel, 1e-4);
        expectClose('dRecurrentKernel', bwd.dRecurrentKernel, g.dRecurrentKernel, 1e-4);
        expectClose('dBias', bwd.dBias, g.dBias, 1e-4);
      });
    }
  }

  it('bidirectional layer (halves of y, summed dx) and bidirectional encoding', function () {
    const emu = emulator(this);
    const rng = rngFor(31);
    const d = { batch: 4, steps: 5, inputSize: 6, hiddenSize: 7 };
    const { batch: B, steps: T, hiddenSize: H } = d;
    const p = lstmProblem(rng, d, { lengths: true, state: true });
    const bw = randWeights(rng, d.inputSize, H);
    const h0Bw = randF32(rng, B * H, 0.5);
    const c0Bw = randF32(rng, B * H, 0.5);
    const launch: EmuLaunch = { unitsPerBlock: 3, threadsPerBlock: 5, persistent: true };
    const args = { ...p, h0Fw: p.h0, c0Fw: p.c0, h0Bw, c0Bw, backwardWeights: bw, ...launch };
    const f = emu.lstmForward(args) as unknown as Record<string, Float32Array> & { faults: string[] };
    expect(f.faults).to.deep.equal([]);
    const rf = lstmForwardRef(refInput(p, false));
    const rb = lstmForwardRef(refInput(p, true, bw, h0Bw, c0Bw));
    const yRef = new Float64Array(B * T * 2 * H);
    for (let r = 0; r < B * T; r++) {
      yRef.set(rf.y.subarray(r * H, (r + 1) * H), r * 2 * H);
      yRef.set(rb.y.subarray(r * H, (r + 1) * H), r * 2 * H + H);
    }
    expectClose('y', f.y, yRef, 1e-5);
    expectClose('hFw', f.hFw, rf.h, 1e-5);
    expectClose('cBw', f.cBw, rb.c, 1e-5);

    const dy = randF32(rng, B * T * 2 * H);
    const dyFw = new Float32Array(B * T * H);
    const dyBw = new Float32Array(B * T * H);
    for (let r = 0; r < B * T; r++) {
      dyFw.set(dy.subarray(r * 2 * H, r * 2 * H + H), r * H);
      dyBw.set(dy.subarray(r * 2 * H + H, (r + 1) * 2 * H), r * H);
    }
    const g = emu.lstmBackward({ ...args, y: f.y, gatesFw: f.gatesFw, cellsFw: f.cellsFw, gatesBw: f.gatesBw, cellsBw: f.cellsBw, dy }) as unknown as
      Record<string, Float32Array> & { faults: string[]; forward: Record<string, Float32Array>; backward: Record<string, Float32Array> };
    expect(g.faults).to.deep.equal([]);
    const gf = lstmBackwardRef(refInput(p, false), rf, { dy: dyFw });
    const gb = lstmBackwardRef(refInput(p, true, bw, h0Bw, c0Bw), rb, { dy: dyBw });
    expectClose('dx (both directions)', g.dx, gf.dx.map((v, i) => v + gb.dx[i]), 1e-4);
    expectClose('dh0Bw', g.dh0Bw, gb.dh0, 1e-4);
    expectClose('forward.dKernel', g.forward.dKernel, gf.dKernel, 1e-4);
    expectClose('backward.dRecurrentKernel', g.backward.dRecurrentKernel, gb.dRecurrentKernel, 1e-4);
    expectClose('backward.dBias', g.backward.dBias, gb.dBias, 1e-4);

    const e = emu.lstmForward({ ...p, h0: undefined, c0: undefined, backwardWeights: bw, encode: true, ...launch });
    expect(e.faults).to.deep.equal([]);
    const ef = lstmForwardRef({ ...refInput(p, false), h0: undefined, c0: undefined });
    const eb = lstmForwardRef({ ...refInput(p, true, bw), h0: undefined, c0: undefined });
    const hRef = new Float64Array(B * 2 * H);
    for (let b = 0; b < B; b++) {
      hRef.set(ef.h.subarray(b * H, (b + 1) * H), b * 2 * H);
      hRef.set(eb.h.subarray(b * H, (b + 1) * H), b * 2 * H + H);
    }
    expectClose('encoded h [B, 2H]', e.h, hRef, 1e-5);
    expect(e.y, 'encoding keeps no per-step output').to.equal(undefined);
  });

  it('encoding (no per-step outputs kept) from tokens + embedding equals the reference on the looked-up rows', function () {
    const emu = emulator(this);
    const rng = rngFor(11);
    const B = 4, T = 5, I = 6, H = 7, vocab = 9;
    const tokens = Int32Array.from({ length: B * T }, () => randInt(rng, 0, vocab - 1));
    const embedding = randF32(rng, vocab * I);
    const x = new Float32Array(B * T * I);
    tokens.forEach((t, r) => x.set(embedding.subarray(t * I, (t + 1) * I), r * I));
    const weights = randWeights(rng, I, H);
    const lengths = Int32Array.from([5, 0, 3, 1]);
    for (const reverse of [false, true]) {
      const r = emu.lstmForward({
        batch: B, steps: T, inputSize: I, hiddenSize: H, tokens, embedding, vocabSize: vocab, weights, lengths,
        reverse, encode: true, unitsPerBlock: 3, threadsPerBlock: 5, persistent: reverse,
      });
      expect(r.faults).to.deep.equal([]);
      const ref = lstmForwardRef({ batch: B, steps: T, inputSize: I, hiddenSize: H, x, weights, lengths, reverse });
      expectClose(`h reverse=${reverse}`, r.h, ref.h, 1e-5);
      expectClose(`c reverse=${reverse}`, r.c, ref.c, 1e-5);
    }
  });

  it('gradients of the emulated kernels agree with finite differences of the emulated forward pass', function () {
    const emu = emulator(this);
    const rng = rngFor(21);
    const d = { batch: 2, steps: 3, inputSize: 3, hiddenSize: 4 };
    const p = lstmProblem(rng, d, { state: true, lengths: true });
    const launch: EmuLaunch = { unitsPerBlock: 3, threadsPerBlock: 4, persistent: true };
    const ry = randF32(rng, d.batch * d.steps * d.hiddenSize);
    const rh = randF32(rng, d.batch * d.hiddenSize);
    const rc = randF32(rng, d.batch * d.hiddenSize);
    const loss = (q: LstmProblem) => {
      const f = emu.lstmForward(emuArgs(q, launch));
      return lstmProbeLoss({ y: Float64Array.from(f.y), h: Float64Array.from(f.h), c: Float64Array.from(f.c), gates: new Float64Array(), cells: new Float64Array() }, ry, rh, rc);
    };
    const fwd = emu.lstmForward(emuArgs(p, launch));
    const g = emu.lstmBackward({ ...emuArgs(p, launch), y: fwd.y, gates: fwd.gates, cells: fwd.cells, dy: ry, dh: rh, dc: rc });
    const eps = 1e-2;
    const checks: [string, Float32Array, (q: LstmProblem, a: Float32Array) => LstmProblem][] = [
      ['dx', g.dx, (q, a) => ({ ...q, x: a })],
      ['dKernel', g.dKernel, (q, a) => ({ ...q, weights: { ...q.weights, kernel: a } })],
      ['dRecurrentKernel', g.dRecurrentKernel, (q, a) => ({ ...q, weights: { ...q.weights, recurrentKernel: a } })],
      ['dBias', g.dBias, (q, a) => ({ ...q, weights: { ...q.weights, bias: a } })],
      ['dh0', g.dh0, (q, a) => ({ ...q, h0: a })],
      ['dc0', g.dc0, (q, a) => ({ ...q, c0: a })],
    ];
    const base: Record<string, Float32Array> = {
      dx: p.x, dKernel: p.weights.kernel, dRecurrentKernel: p.weights.recurrentKernel, dBias: p.weights.bias,
      dh0: p.h0!, dc0: p.c0!,
    };
    for (const [name, grad, set] of checks) {
      let scale = 0;
      for (const v of grad) scale = Math.max(scale, Math.abs(v));
      for (const i of sampleIndices(rng, grad.length, 6)) {
        const plus = Float32Array.from(base[name]);
        const minus = Float32Array.from(base[name]);
        plus[i] += eps;
        minus[i] -= eps;
        const fd = (loss(set(p, plus)) - loss(set(p, minus))) / (2 * eps);
        expect(Math.abs(fd - grad[i]), `${name}[${i}]: fd ${fd} vs ${grad[i]}`).to.be.at.most(5e-3 * Math.max(scale, 1e-3));
      }
    }
  });
});

// ---- 2b. the bf16 tier on the emulator ------------------------------------------------------------------

// The bf16 forms of the kernel bodies (lstm_kernels.cuh: GemmArgs::Bp, FwdArgs::Rp) run the CPU bf16 tier's own
// per-element code (native/src/bf16_math.h: the rounding and the pair step) over the pairs of K in the CPU tier's
// order, from the bias: their outputs must be the CPU bf16 tier's (test/unit/native-bf16.test.ts) bit for bit,
// and within the tier's contract (1e-2) of fp32. Bit for bit holds here because the host compiler builds both
// sides; on a GPU nvcc compiles the float32 gate math (FMA contraction), so the device suite allows a margin.

const BF16_SHAPES: Dims[] = [...EMU_SHAPES, { batch: 1, steps: 6, inputSize: 33, hiddenSize: 17 }];

describe('CUDA bf16 kernels on the host emulator', function () {
  it('tiled sgemm in bf16 is the addon\'s bf16 matMul bit for bit (odd sizes, transposed A, row gather), not the fp32 one', function () {
    const emu = emulator(this);
    const nb = nativeOrSkip(this);
    const rng = rngFor(41);
    let differs = false;
    for (const s of [{ m: 1, n: 1, k: 1 }, { m: 65, n: 63, k: 17 }, { m: 3, n: 130, k: 33 }, { m: 129, n: 5, k: 2 }, { m: 7, n: 9, k: 40 }]) {
      for (const mode of ['plain', 'transA', 'gather'] as const) {
        const transA = mode === 'transA';
        const aRowCount = mode === 'gather' ? 11 : transA ? s.k : s.m;
        const a = randF32(rng, aRowCount * (transA ? s.m : s.k));
        const b = randF32(rng, s.k * s.n);
        const aRows = mode === 'gather' ? Int32Array.from({ length: s.m }, () => randInt(rng, 0, aRowCount - 1)) : undefined;
        const got = emu.sgemm({ ...s, a, b, transA, aRows, aRowCount, bf16: true });
        const what = `m=${s.m} n=${s.n} k=${s.k} ${mode}`;
        expect(got.faults, what).to.deep.equal([]);
        // the addon's matMul on op(A) as the gather reads it
        const rowsA = aRows ? new Float32Array(s.m * s.k) : a;
        if (aRows) aRows.forEach((r, i) => rowsA.set(a.subarray(r * s.k, (r + 1) * s.k), i * s.k));
        const mm = { a: rowsA, b, m: s.m, k: s.k, n: s.n, transposeA: transA };
        expectIdentical(what, got.c, atPrecision(nb, 'bf16', () => nb.matMul(mm)));
        if (firstDifference(got.c, nb.matMul(mm)) !== null) differs = true;
      }
    }
    expect(differs, 'the bf16 products differ from fp32 somewhere').to.equal(true);
  });

  for (const d of BF16_SHAPES) {
    for (const [li, launch] of LAUNCHES.entries()) {
      const v = { reverse: li % 2 === 1, lengths: li >= 2, state: li !== 1 };
      const name = `bf16 forward B=${d.batch} T=${d.steps} I=${d.inputSize} H=${d.hiddenSize} ` +
        `U=${launch.unitsPerBlock} threads=${launch.threadsPerBlock} ${launch.persistent ? 'persistent' : 'per-step'}` +
        `${v.reverse ? ' reverse' : ''}${v.lengths ? ' lengths' : ''}${v.state ? ' h0/c0' : ''}: the CPU bf16 tier bit for bit, fp32 within 1e-2`;
      it(name, function () {
        const emu = emulator(this);
        const nb = nativeOrSkip(this);
        const p = lstmProblem(rngFor(900 + d.hiddenSize * 7 + li), d, v);
        const f = emu.lstmForward({ ...emuArgs(p, launch), precision: 'bf16' });
        expect(f.faults, 'faults').to.deep.equal([]);
        const cpu = atPrecision(nb, 'bf16', () => nb.lstmForward({ ...p, training: true }));
        const G = d.batch * d.steps * 4 * d.hiddenSize;
        expectIdentical('y', f.y, cpu.y);
        expectIdentical('h', f.h, cpu.h);
        expectIdentical('c', f.c, cpu.c);
        expectIdentical('gates', f.gates, cpu.workspace!.subarray(0, G));
        expectIdentical('cells', f.cells, cpu.workspace!.subarray(G, G + d.batch * d.steps * d.hiddenSize));
        const fp = nb.lstmForward(p);
        for (const k of ['y', 'h', 'c'] as const) expectBf16VsFp32(k, p, f[k], fp[k]);
      });
    }
  }

  it('bf16 bidirectional layer and encodings (x; tokens + embedding, one and two directions): the CPU bf16 tier bit for bit', function () {
    const emu = emulator(this);
    const nb = nativeOrSkip(this);
    const rng = rngFor(43);
    const d = { batch: 4, steps: 5, inputSize: 6, hiddenSize: 7 };
    const { batch: B, hiddenSize: H } = d;
    const p = lstmProblem(rng, d, { lengths: true, state: true });
    const bw = randWeights(rng, d.inputSize, H);
    const h0Bw = randF32(rng, B * H, 0.5);
    const c0Bw = randF32(rng, B * H, 0.5);
    const launch: EmuLaunch = { unitsPerBlock: 3, threadsPerBlock: 5, persistent: true };
    const f = emu.lstmForward({ ...p, h0Fw: p.h0, c0Fw: p.c0, h0Bw, c0Bw, backwardWeights: bw, precision: 'bf16', ...launch }) as unknown as
      Record<string, Float32Array> & { faults: string[] };
    expect(f.faults).to.deep.equal([]);
    const cpu = atPrecision(nb, 'bf16', () => nb.bilstmForward({
      ...d, x: p.x, lengths: p.lengths, forward: p.weights, backward: bw, h0Fw: p.h0, c0Fw: p.c0, h0Bw, c0Bw, training: true,
    }));
    for (const k of ['y', 'hFw', 'cFw', 'hBw', 'cBw'] as const) expectIdentical(k, f[k], cpu[k]);

    const T = 6, I = 5, vocab = 13;
    const Bt = 5, Ht = 9;
    const tokens = Int32Array.from({ length: Bt * T }, () => randInt(rng, 0, vocab - 1));
    const embedding = randF32(rng, vocab * I);
    const lengths = Int32Array.from([6, 0, 3, 1, 6]);
    const wf = randWeights(rng, I, Ht);
    const wb = randWeights(rng, I, Ht);
    const dims = { batch: Bt, steps: T, inputSize: I, hiddenSize: Ht, tokens, embedding, vocabSize: vocab, lengths, weights: wf };
    for (const form of [{ reverse: false }, { reverse: true }, { backwardWeights: wb }]) {
      const what = JSON.stringify(Object.keys(form)) + JSON.stringify((form as { reverse?: boolean }).reverse ?? null);
      const e = emu.lstmForward({ ...dims, ...form, encode: true, precision: 'bf16', unitsPerBlock: 4, threadsPerBlock: 7, persistent: !('reverse' in form && form.reverse) });
      expect(e.faults, what).to.deep.equal([]);
      const want = atPrecision(nb, 'bf16', () => nb.lstmEncode({ ...dims, ...form }));
      expectIdentical(`encode h ${what}`, e.h, want.h);
      expectIdentical(`encode c ${what}`, e.c, want.c);
      expectBf16Contract(`encode h ${what} vs fp32`, e.h, nb.lstmEncode({ ...dims, ...form }).h);
    }
  });

  it('precision is checked: anything but fp32 or bf16 is DS_INVALID_ARGUMENT', function () {
    const emu = emulator(this);
    const p = lstmProblem(rngFor(44), { batch: 1, steps: 1, inputSize: 1, hiddenSize: 1 });
    expect(() => emu.lstmForward({ ...p, precision: 'fp16' })).to.throw(DeepSentryError, /precision to be 'fp32' or 'bf16'/)
      .with.property('code', 'DS_INVALID_ARGUMENT');
  });
});

// ---- 3. device -------------------------------------------------------------------------------------------

/** A device to run on, or a skip naming the CUDA error (a failure when DEEPSENTRY_EXPECT_GPU=1). */
function deviceOrSkip(ctx: Mocha.Context): CudaBinding {
  const b = cudaBinding(ctx);
  const caps = b.capabilities();
  if (caps.cudaDeviceCount > 0) return b;
  const reason = `no CUDA device: ${caps.cudaError}`;
  if (process.env.DEEPSENTRY_EXPECT_GPU === '1') throw new Error(`DEEPSENTRY_EXPECT_GPU=1 but ${reason}`);
  skipBecause(ctx, reason);
}

const DEV_SHAPES: Dims[] = [
  { batch: 1, steps: 1, inputSize: 1, hiddenSize: 1 },
  { batch: 3, steps: 7, inputSize: 19, hiddenSize: 17 },
  { batch: 8, steps: 12, inputSize: 64, hiddenSize: 96 },
  { batch: 33, steps: 5, inputSize: 70, hiddenSize: 130 },
];
const DEV_TOL = 1e-4;

describe('CUDA device', function () {
  for (const d of DEV_SHAPES) {
    for (const mode of ['persistent', 'perStep'] as const) {
      it(`forward/backward vs CPU kernels and reference B=${d.batch} T=${d.steps} I=${d.inputSize} H=${d.hiddenSize} ${mode}`, function () {
        const b = deviceOrSkip(this);
        const rng = rngFor(500 + d.hiddenSize);
        for (const v of [{ reverse: false, lengths: false, state: false }, { reverse: true, lengths: true, state: true }]) {
          const p = lstmProblem(rng, d, v);
          let l: CudaLstm;
          try {
            l = new b.CudaLstm({ inputSize: d.inputSize, hiddenSize: d.hiddenSize, ...p.weights, mode });
          } catch (e) {
            throw new Error(`CudaLstm(${mode}): ${(e as Error).message}`);
          }
          try {
            const args = { batch: d.batch, steps: d.steps, x: p.x, h0: p.h0, c0: p.c0, lengths: p.lengths, reverse: p.reverse };
            const f = l.forward({ ...args, training: true });
            expect(l.lastPersistent).to.equal(mode === 'persistent');
            const cpu = b.lstmForward({ ...p, training: true });
            const ref = lstmForwardRef(refInput(p));
            for (const k of ['y', 'h', 'c'] as const) {
              expectClose(`${k} vs cpu`, f[k], cpu[k], DEV_TOL);
              expectClose(`${k} vs reference`, f[k], ref[k], DEV_TOL);
            }
            const dy = randF32(rng, d.batch * d.steps * d.hiddenSize);
            const dh = randF32(rng, d.batch * d.hiddenSize);
            const dc = randF32(rng, d.batch * d.hiddenSize);
            const g = l.backward({ ...args, y: f.y, workspace: f.workspace!, dy, dh, dc });
            const gc = b.lstmBackward({ ...p, y: cpu.y, workspace: cpu.workspace!, dy, dh, dc });
            for (const k of ['dx', 'dh0', 'dc0', 'dKernel', 'dRecurrentKernel', 'dBias'] as const) expectClose(`${k} vs cpu`, g[k], gc[k], DEV_TOL);
          } finally {
            l.dispose();
          }
        }
      });
    }
  }

  it('bidirectional forward/backward (two streams) vs the CPU kernels', function () {
    const b = deviceOrSkip(this);
    const rng = rngFor(61);
    const d = { batch: 6, steps: 9, inputSize: 12, hiddenSize: 20 };
    const p = lstmProblem(rng, d, { lengths: true });
    const bw = randWeights(rng, d.inputSize, d.hiddenSize);
    const l = new b.CudaLstm({ inputSize: d.inputSize, hiddenSize: d.hiddenSize, ...p.weights, backward: bw });
    try {
      const args = { batch: d.batch, steps: d.steps, x: p.x, lengths: p.lengths };
      const f = l.forward({ ...args, training: true }) as unknown as BiLstmForwardResult;
      const cpu = b.bilstmForward({ ...d, x: p.x, lengths: p.lengths, forward: p.weights, backward: bw, training: true });
      for (const k of ['y', 'hFw', 'cFw', 'hBw', 'cBw'] as const) expectClose(k, f[k], cpu[k], DEV_TOL);
      const dy = randF32(rng, d.batch * d.steps * 2 * d.hiddenSize);
      const g = l.backward({ ...args, y: f.y, workspace: f.workspace!, dy }) as unknown as BiLstmGradients;
      const gc = b.bilstmBackward({ ...d, x: p.x, lengths: p.lengths, forward: p.weights, backward: bw, y: cpu.y, workspace: cpu.workspace!, dy });
      expectClose('dx', g.dx, gc.dx, DEV_TOL);
      for (const dir of ['forward', 'backward'] as const)
        for (const k of ['dKernel', 'dRecurrentKernel', 'dBias'] as const) expectClose(`${dir}.${k}`, g[dir][k], gc[dir][k], DEV_TOL);
    } finally {
      l.dispose();
    }
  });

  /** A batch of token sequences with random lengths and two directions' weights, for the encode tests. */
  function tokenProblem(seed: number) {
    const rng = rngFor(seed);
    const B = 40, T = 11, I = 16, H = 24, vocab = 50;
    const tokens = Int32Array.from({ length: B * T }, () => randInt(rng, 0, vocab - 1));
    const embedding = randF32(rng, vocab * I);
    const lengths = Int32Array.from({ length: B }, () => randInt(rng, 0, T));
    return { B, T, I, H, vocab, tokens, embedding, lengths, fw: randWeights(rng, I, H), bw: randWeights(rng, I, H) };
  }

  it('batched encoding from tokens + embedding vs the CPU kernels; weights stay resident; pool reuses buffers', function () {
    const b = deviceOrSkip(this);
    const { B, T, I, H, vocab, tokens, embedding, lengths, fw, bw } = tokenProblem(71);
    const l = new b.CudaLstm({ inputSize: I, hiddenSize: H, ...fw, backward: bw });
    try {
      const args = { batch: B, steps: T, tokens, embedding, vocabSize: vocab, lengths };
      const first = l.encode(args);
      const cpu = b.lstmEncode({ batch: B, steps: T, inputSize: I, hiddenSize: H, tokens, embedding, vocabSize: vocab, lengths, weights: fw, backwardWeights: bw });
      expectClose('h', first.h, cpu.h, DEV_TOL);
      expectClose('c', first.c, cpu.c, DEV_TOL);
      const before = b.cudaPoolStats();
      const again = l.encode(args);
      const after = b.cudaPoolStats();
      expect(Array.from(again.h)).to.deep.equal(Array.from(first.h));
      expect(after.mallocs, 'the second call allocates nothing new').to.equal(before.mallocs);
      expect(after.reuses).to.be.above(before.reuses);
      l.setWeights({ ...bw, backward: fw });
      const swapped = l.encode(args);
      expect(maxRelErr(swapped.h, first.h)).to.be.above(1e-3);
    } finally {
      l.dispose();
    }
    expect(() => l.encode({ batch: 1, steps: 1, x: new Float32Array(I) })).to.throw(DeepSentryError, /disposed/);
  });

  // The bf16 tier on the device against the CPU bf16 tier. The kernel bodies give the CPU tier's outputs bit for
  // bit when one compiler builds both (the emulator suite; here the hostsim build, where that is required). On a
  // GPU nvcc contracts the float32 gate math into FMAs, which moves h by float32 ulps (the fp32 tier's DEV_TOL),
  // and an h whose bf16 rounding flips then moves the next step's pre-activations by 2^-8 of one product term:
  // BF16_DEV_TOL (1e-3 of the largest output) leaves room for a few such flips, below the tier's 1e-2 contract
  // against fp32, which is checked too. (Not rounding h at all stays within 3.8e-4–6.4e-4 of the CPU tier on these
  // shapes: only the bit-for-bit check catches that.)
  const BF16_DEV_TOL = 1e-3;
  const expectBf16Device = (what: string, got: Float32Array, want: Float32Array) =>
    cudaKernelsHostCompiled() ? expectIdentical(`${what} (bit for bit: host-compiled kernels)`, got, want) : expectClose(what, got, want, BF16_DEV_TOL);
  for (const d of [DEV_SHAPES[0], DEV_SHAPES[1], DEV_SHAPES[3]]) {
    for (const mode of ['persistent', 'perStep'] as const) {
      it(`bf16 forward vs the CPU bf16 tier (and fp32 within 1e-2), backward float32 B=${d.batch} T=${d.steps} I=${d.inputSize} H=${d.hiddenSize} ${mode}`, function () {
        const b = deviceOrSkip(this);
        const rng = rngFor(700 + d.hiddenSize);
        for (const v of [{ reverse: false, lengths: false, state: false }, { reverse: true, lengths: true, state: true }]) {
          const p = lstmProblem(rng, d, v);
          const l = new b.CudaLstm({ inputSize: d.inputSize, hiddenSize: d.hiddenSize, ...p.weights, mode, precision: 'bf16' });
          try {
            expect(l.precision).to.equal('bf16');
            const args = { batch: d.batch, steps: d.steps, x: p.x, h0: p.h0, c0: p.c0, lengths: p.lengths, reverse: p.reverse };
            const f = l.forward({ ...args, training: true });
            const cpu = atPrecision(b, 'bf16', () => b.lstmForward({ ...p, training: true }));
            const fp = b.lstmForward(p);
            for (const k of ['y', 'h', 'c'] as const) {
              expectBf16Device(`${k} vs cpu bf16`, f[k], cpu[k]);
              expectBf16VsFp32(`${k} vs cpu fp32`, p, f[k], fp[k]);
            }
            // the backward is float32 on both sides, from each side's bf16 forward
            const dy = randF32(rng, d.batch * d.steps * d.hiddenSize);
            const g = l.backward({ ...args, y: f.y, workspace: f.workspace!, dy });
            const gc = b.lstmBackward({ ...p, y: cpu.y, workspace: cpu.workspace!, dy });
            for (const k of ['dx', 'dKernel', 'dRecurrentKernel', 'dBias'] as const) expectClose(`${k} vs cpu`, g[k], gc[k], BF16_DEV_TOL);
          } finally {
            l.dispose();
          }
        }
      });
    }
  }

  it('bf16 encoding from tokens (one and two directions) vs the CPU bf16 tier; setPrecision switches a layer both ways', function () {
    const b = deviceOrSkip(this);
    const { B, T, I, H, vocab, tokens, embedding, lengths, fw, bw } = tokenProblem(73);
    const args = { batch: B, steps: T, tokens, embedding, vocabSize: vocab, lengths };
    const cpuArgs = { ...args, inputSize: I, hiddenSize: H, weights: fw };
    for (const backward of [undefined, bw]) {
      const l = new b.CudaLstm({ inputSize: I, hiddenSize: H, ...fw, ...(backward ? { backward } : {}), precision: 'bf16' });
      const fp32 = new b.CudaLstm({ inputSize: I, hiddenSize: H, ...fw, ...(backward ? { backward } : {}) });
      try {
        const what = backward ? 'two directions' : 'one direction';
        const e = l.encode(args);
        const cpuBf = atPrecision(b, 'bf16', () => b.lstmEncode({ ...cpuArgs, ...(backward ? { backwardWeights: backward } : {}) }));
        const cpuFp = b.lstmEncode({ ...cpuArgs, ...(backward ? { backwardWeights: backward } : {}) });
        expectBf16Device(`${what}: h vs cpu bf16`, e.h, cpuBf.h);
        expectBf16Device(`${what}: c vs cpu bf16`, e.c, cpuBf.c);
        expectBf16Contract(`${what}: h vs cpu fp32`, e.h, cpuFp.h);
        // an fp32 layer switched to bf16 computes what the bf16 layer does (same device code), and back
        const fpFirst = fp32.encode(args);
        fp32.setPrecision('bf16');
        expect(fp32.precision).to.equal('bf16');
        expectIdentical(`${what}: switched to bf16`, fp32.encode(args).h, e.h);
        fp32.setPrecision('fp32');
        expectIdentical(`${what}: switched back to fp32`, fp32.encode(args).h, fpFirst.h);
        // setWeights at bf16 rounds the new weights too
        l.setWeights({ ...bw, ...(backward ? { backward: fw } : {}) });
        const swapped = atPrecision(b, 'bf16', () => b.lstmEncode({ ...cpuArgs, weights: bw, ...(backward ? { backwardWeights: fw } : {}) }));
        expectBf16Device(`${what}: h after setWeights vs cpu bf16`, l.encode(args).h, swapped.h);
        expect(() => l.setPrecision('fp16' as Precision)).to.throw(DeepSentryError, /'fp32' or 'bf16'/).with.property('code', 'DS_INVALID_ARGUMENT');
        expect(l.precision, 'a refused setPrecision changes nothing').to.equal('bf16');
      } finally {
        l.dispose();
        fp32.dispose();
      }
    }
  });

  it('gradients agree with finite differences of the device forward pass', function () {
    const b = deviceOrSkip(this);
    const rng = rngFor(81);
    const d = { batch: 3, steps: 4, inputSize: 5, hiddenSize: 6 };
    const p = lstmProblem(rng, d, { state: true, lengths: true });
    const ry = randF32(rng, d.batch * d.steps * d.hiddenSize);
    const rh = randF32(rng, d.batch * d.hiddenSize);
    const rc = randF32(rng, d.batch * d.hiddenSize);
    const args = (x: Float32Array) => ({ batch: d.batch, steps: d.steps, x, h0: p.h0, c0: p.c0, lengths: p.lengths });
    const l = new b.CudaLstm({ inputSize: d.inputSize, hiddenSize: d.hiddenSize, ...p.weights });
    try {
      const f = l.forward({ ...args(p.x), training: true });
      const g = l.backward({ ...args(p.x), y: f.y, workspace: f.workspace!, dy: ry, dh: rh, dc: rc });
      const loss = (x: Float32Array) => {
        const o = l.forward(args(x));
        return lstmProbeLoss({ y: Float64Array.from(o.y), h: Float64Array.from(o.h), c: Float64Array.from(o.c), gates: new Float64Array(), cells: new Float64Array() }, ry, rh, rc);
      };
      let scale = 0;
      for (const v of g.dx) scale = Math.max(scale, Math.abs(v));
      const eps = 1e-2;
      for (const i of sampleIndices(rng, g.dx.length, 10)) {
        const plus = Float32Array.from(p.x);
        const minus = Float32Array.from(p.x);
        plus[i] += eps;
        minus[i] -= eps;
        const fd = (loss(plus) - loss(minus)) / (2 * eps);
        expect(Math.abs(fd - g.dx[i]), `dx[${i}]`).to.be.at.most(5e-3 * scale);
      }
    } finally {
      l.dispose();
    }
  });
});
