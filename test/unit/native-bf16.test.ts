/**
 * The bf16 precision tier of the native kernels (native/src/kernels/kernels_bf16.h): matMul is bit-exact to the
 * documented arithmetic (bf16 operands rounded to nearest even, K in pairs, float32 accumulation — emulated here
 * in JavaScript); the portable emulation and the AVX512-BF16 kernels give identical outputs; bf16 agrees with
 * fp32 within the contract on the reference workload shapes (bench/workloads.ts) and on odd shapes; results do
 * not depend on the thread count; the boundary accepts only 'fp32' | 'bf16'.
 */
import { expect } from 'chai';
import type { BiLstmForwardArgs, NativeBinding, Precision, SimdLevel } from '../../lib/backend/binding';
import { decideBackend, useBackend } from '../../lib/backend/select';
import { DeepSentryError } from '../../lib/errors';
import { L1_REFERENCE, W1_REFERENCE, W2_REFERENCE, initW1Params, initW2Params, makeW1Batch, makeW2Batch } from '../../bench/workloads';
import { expectBf16Contract as expectContract, nativeOrSkip, randF32, randInt, rngFor } from '../support/native-helpers';
import { skipBecause } from '../support/skip';

const u32 = new Uint32Array(1);
const f32 = new Float32Array(u32.buffer);

/** float32 → bf16 (as a float32 value), round to nearest even; a denormal becomes a zero of its sign. */
function bf16(x: number): number {
  f32[0] = x;
  let u = u32[0];
  if ((u & 0x7f800000) === 0) u &= 0x80000000;
  else if ((u & 0x7fffffff) > 0x7f800000) u = (u | 0x00400000) & 0xffff0000;
  else u = ((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000) >>> 0;
  u32[0] = u;
  return f32[0];
}

interface Mm {
  m: number;
  k: number;
  n: number;
  ta: boolean;
  tb: boolean;
}

/** C = op(A)·op(B) in the tier's arithmetic: per pair of K, acc += a_odd·b_odd, then acc += a_even·b_even. */
function bf16Gemm(a: Float32Array, b: Float32Array, s: Mm): Float32Array {
  const { m, k, n, ta, tb } = s;
  const A = (i: number, p: number) => (p < k ? bf16(ta ? a[p * m + i] : a[i * k + p]) : 0);
  const B = (p: number, j: number) => (p < k ? bf16(tb ? b[j * k + p] : b[p * n + j]) : 0);
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p += 2) {
        acc = Math.fround(acc + A(i, p + 1) * B(p + 1, j)); // products of two bf16 are exact in float32
        acc = Math.fround(acc + A(i, p) * B(p, j));
      }
      c[i * n + j] = acc;
    }
  }
  return c;
}

/** Σ_k |op(A)[i,k]·op(B)[k,j]| per output: the scale a product's rounding error is measured against. */
function absProducts(a: Float32Array, b: Float32Array, s: Mm): Float64Array {
  const { m, k, n, ta, tb } = s;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let t = 0;
      for (let p = 0; p < k; p++) t += Math.abs((ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]));
      out[i * n + j] = t;
    }
  return out;
}

const SHAPES: Mm[] = [
  { m: 1, k: 1, n: 1, ta: false, tb: false },
  { m: 1, k: 7, n: 5, ta: false, tb: false },
  { m: 1, k: 256, n: 100, ta: false, tb: false }, // one row: B read unpacked, rounded on the fly
  { m: 3, k: 1, n: 17, ta: false, tb: false },
  { m: 12, k: 33, n: 70, ta: false, tb: false }, // the most rows of the unpacked path
  { m: 13, k: 33, n: 70, ta: false, tb: false }, // packed B, a partial row tile
  { m: 7, k: 301, n: 65, ta: true, tb: false }, // two K blocks, odd K
  { m: 250, k: 19, n: 131, ta: false, tb: true }, // two row blocks, a partial panel
  { m: 31, k: 64, n: 3, ta: true, tb: true },
];

/** The kernels the bf16 tier can run here: AVX512-BF16 (at the avx512 level) and the portable emulation. */
function bf16Levels(nb: NativeBinding): Array<{ level: SimdLevel; kernels: string }> {
  const c = nb.capabilities();
  const out: Array<{ level: SimdLevel; kernels: string }> = [];
  for (const level of c.simdSupported) {
    nb.setSimdLevel(level);
    const k = nb.capabilities().bf16Kernels;
    if (!out.some((o) => o.kernels === k)) out.push({ level, kernels: k });
  }
  nb.setSimdLevel(c.simd);
  return out;
}

describe('native bf16 precision tier', function () {
  this.timeout(120000);
  let nb: NativeBinding;
  let best: SimdLevel;
  const at = <T>(precision: Precision, f: () => T, level?: SimdLevel): T => {
    nb.setPrecision(precision);
    if (level) nb.setSimdLevel(level);
    try {
      return f();
    } finally {
      nb.setPrecision('fp32');
      nb.setSimdLevel(best);
    }
  };
  before(function () {
    nb = nativeOrSkip(this);
    best = nb.capabilities().simd;
  });

  it('matMul is bit-exact to the documented bf16 arithmetic on every bf16 kernel (odd sizes, transposes, one row, K = 1)', () => {
    const rng = rngFor(11);
    const levels = bf16Levels(nb);
    expect(levels.map((l) => l.kernels)).to.include('portable');
    for (const s of SHAPES) {
      const a = randF32(rng, s.m * s.k, 2);
      const b = randF32(rng, s.k * s.n, 2);
      const want = bf16Gemm(a, b, s);
      for (const { level, kernels } of levels) {
        const got = at('bf16', () => nb.matMul({ a, b, m: s.m, k: s.k, n: s.n, transposeA: s.ta, transposeB: s.tb }), level);
        const bad = got.findIndex((v, i) => v !== want[i]);
        expect(bad, `${kernels} ${JSON.stringify(s)}: output ${bad} = ${got[bad]}, the bf16 arithmetic gives ${want[bad]}`).to.equal(-1);
      }
    }
  });

  it('matMul in bf16 is within 1e-2 of fp32 per output, relative to Σ|a·b| (and differs from it: bf16 really ran)', () => {
    const rng = rngFor(12);
    let differs = false;
    for (const s of SHAPES) {
      const a = randF32(rng, s.m * s.k, 1);
      const b = randF32(rng, s.k * s.n, 1);
      const args = { a, b, m: s.m, k: s.k, n: s.n, transposeA: s.ta, transposeB: s.tb };
      const f = nb.matMul(args);
      const h = at('bf16', () => nb.matMul(args));
      const scale = absProducts(a, b, s);
      for (let i = 0; i < f.length; i++) {
        expect(Math.abs(h[i] - f[i]), `${JSON.stringify(s)} output ${i}`).to.be.at.most(1e-2 * scale[i]);
        if (h[i] !== f[i]) differs = true;
      }
    }
    expect(differs).to.equal(true);
  });

  it('W1 and L1 (BiLSTM forward + Dense, bench/workloads.ts): bf16 within 1e-2 of fp32 per output', () => {
    for (const shape of [W1_REFERENCE, L1_REFERENCE]) {
      const p = initW1Params(shape, 1);
      const batch = makeW1Batch(shape, 2);
      const args: BiLstmForwardArgs = { batch: shape.batch, steps: shape.steps, inputSize: shape.input, hiddenSize: shape.hidden, x: batch.x, forward: p.forward, backward: p.backward };
      const run = () => {
        const r = nb.bilstmForward(args);
        const H = shape.hidden;
        const summary = new Float32Array(shape.batch * 2 * H);
        for (let b = 0; b < shape.batch; b++) {
          summary.set(r.hFw.subarray(b * H, (b + 1) * H), b * 2 * H);
          summary.set(r.hBw.subarray(b * H, (b + 1) * H), b * 2 * H + H);
        }
        return { y: r.y, c: r.cFw, dense: nb.matMul({ a: summary, b: p.dense.kernel, m: shape.batch, k: 2 * H, n: shape.out }) };
      };
      const fp = run();
      const bf = at('bf16', run);
      const name = shape.batch === 1 ? 'L1' : 'W1';
      expectContract(`${name} y`, bf.y, fp.y);
      expectContract(`${name} final c`, bf.c, fp.c);
      // the Dense output is not bounded by 1: measured against its own scale
      const scale = Math.max(...Array.from(fp.dense, Math.abs));
      for (let i = 0; i < fp.dense.length; i++) expect(Math.abs(bf.dense[i] - fp.dense[i])).to.be.at.most(1e-2 * scale);
    }
  });

  it('W2 (encoder over token ids, bench/workloads.ts): bf16 within 1e-2 of fp32 per output', () => {
    const s = W2_REFERENCE;
    const p = initW2Params(s, 3);
    const { tokens } = makeW2Batch(s, 4);
    const lengths = Int32Array.from({ length: s.batch }, (_, b) => s.steps - (b % (s.steps / 2)));
    const args = { batch: s.batch, steps: s.steps, inputSize: s.embedding, hiddenSize: s.hidden, tokens, embedding: p.embedding, vocabSize: s.vocab, weights: p.encoder, lengths };
    const fp = nb.lstmEncode(args);
    const bf = at('bf16', () => nb.lstmEncode(args));
    expectContract('W2 h', bf.h, fp.h);
    expectContract('W2 c', bf.c, fp.c);
  });

  it('odd shapes and padded batches (batch 1, one step, sizes off 16/32): bf16 within 1e-2 of fp32; 1 and 2 threads bit-identical', () => {
    const rng = rngFor(13);
    const threads = nb.capabilities().threads;
    for (const [B, T, I, H] of [[1, 1, 3, 5], [1, 10, 33, 19], [7, 5, 33, 19], [13, 9, 20, 40], [40, 3, 129, 65]]) {
      const w = () => ({ kernel: randF32(rng, I * 4 * H, 0.3), recurrentKernel: randF32(rng, H * 4 * H, 0.3), bias: randF32(rng, 4 * H, 0.1) });
      const lengths = Int32Array.from({ length: B }, () => randInt(rng, 0, T));
      const args: BiLstmForwardArgs = { batch: B, steps: T, inputSize: I, hiddenSize: H, x: randF32(rng, B * T * I, 1), forward: w(), backward: w(), lengths, h0Fw: randF32(rng, B * H, 0.5) };
      const fp = nb.bilstmForward(args);
      const bf = at('bf16', () => nb.bilstmForward(args));
      if (lengths.some((l) => l > 0)) expectContract(`[${B},${T},${I},${H}] y`, bf.y, fp.y);
      try {
        nb.setThreads(1);
        const one = at('bf16', () => nb.bilstmForward(args));
        nb.setThreads(2);
        const two = at('bf16', () => nb.bilstmForward(args));
        expect(one.y).to.deep.equal(two.y);
        expect(one.hBw).to.deep.equal(two.hBw);
      } finally {
        nb.setThreads(threads);
      }
    }
  });

  it('the portable emulation and the AVX512-BF16 kernels give identical LSTM outputs (workspace included)', function () {
    const levels = bf16Levels(nb);
    const hw = levels.find((l) => l.kernels === 'avx512bf16');
    if (!hw) skipBecause(this, 'this CPU has no AVX512-BF16: only the portable kernels can run');
    const portable = levels.find((l) => l.kernels === 'portable')!;
    const rng = rngFor(14);
    // [9, 3, 301, 20]: the steps' fused input projection over two K blocks of the packed kernel, odd I.
    // One row (batch 1, or the last row of a padded batch) visits its blocks of 16 units in runs of 1, 4 and 2,
    // up on even steps and down on odd ones: H = 17, 80, 100, 150 give 2, 5, 7, 10 blocks (every run length,
    // a partial last block), and [5, 8, 20, 100] ends with one row left for several steps.
    const SHAPES = [[1, 10, 128, 128], [7, 5, 33, 19], [30, 6, 64, 48], [9, 3, 301, 20], [1, 3, 5, 17], [1, 6, 20, 80], [1, 9, 33, 100], [1, 4, 12, 150], [5, 8, 20, 100]];
    for (const [B, T, I, H] of SHAPES) {
      const w = () => ({ kernel: randF32(rng, I * 4 * H, 0.2), recurrentKernel: randF32(rng, H * 4 * H, 0.2), bias: randF32(rng, 4 * H, 0.1) });
      const args: BiLstmForwardArgs = { batch: B, steps: T, inputSize: I, hiddenSize: H, x: randF32(rng, B * T * I, 1), forward: w(), backward: w(), lengths: Int32Array.from({ length: B }, () => randInt(rng, 1, T)), training: true };
      const a = at('bf16', () => nb.bilstmForward(args), hw.level);
      const b = at('bf16', () => nb.bilstmForward(args), portable.level);
      expect(a.y, `[${B},${T},${I},${H}] y`).to.deep.equal(b.y);
      expect(a.workspace, `[${B},${T},${I},${H}] workspace`).to.deep.equal(b.workspace);
    }
  });

  it('an async call runs at the tier it was made at, whatever setPrecision does before it starts', async () => {
    const s = W1_REFERENCE;
    const p = initW1Params(s, 5);
    const args: BiLstmForwardArgs = { batch: s.batch, steps: s.steps, inputSize: s.input, hiddenSize: s.hidden, x: makeW1Batch(s, 6).x, forward: p.forward, backward: p.backward };
    const bf = at('bf16', () => nb.bilstmForward(args));
    const fp = nb.bilstmForward(args);
    for (let i = 0; i < 3; i++) {
      nb.setPrecision('bf16');
      // queued behind one another on the libuv pool: the later ones start after the switch below
      const jobs = [nb.bilstmForwardAsync(args), nb.bilstmForwardAsync(args), nb.bilstmForwardAsync(args), nb.bilstmForwardAsync(args), nb.bilstmForwardAsync(args)];
      nb.setPrecision('fp32');
      const late = nb.bilstmForwardAsync(args);
      for (const r of await Promise.all(jobs)) expect(r.y).to.deep.equal(bf.y);
      expect((await late).y).to.deep.equal(fp.y);
    }
  });

  it('frozen weights: the rounded copies kept on the arrays give the same results, sync and async, whatever shape or role', async () => {
    const rng = rngFor(17);
    const cases: Array<[number, number, number, number]> = [[1, 10, 128, 128], [9, 4, 33, 19], [3, 2, 20, 20]];
    for (const [B, T, I, H] of cases) {
      const w = () => ({ kernel: randF32(rng, I * 4 * H, 0.3), recurrentKernel: randF32(rng, H * 4 * H, 0.3), bias: randF32(rng, 4 * H, 0.1) });
      const fw = w();
      // I = H: one array as both kernels of the reverse direction (two layouts on one array)
      const bw = I === H ? { ...w(), recurrentKernel: fw.kernel } : w();
      if (I === H) bw.kernel = fw.kernel;
      const args: BiLstmForwardArgs = { batch: B, steps: T, inputSize: I, hiddenSize: H, x: randF32(rng, B * T * I, 1), forward: fw, backward: bw };
      const frozen = { ...args, forward: { ...fw, frozen: true }, backward: { ...bw, frozen: true } };
      const want = at('bf16', () => nb.bilstmForward(args));
      for (let i = 0; i < 2; i++) {
        expect(at('bf16', () => nb.bilstmForward(frozen)).y, `[${B},${T},${I},${H}] sync, call ${i}`).to.deep.equal(want.y);
        nb.setPrecision('bf16');
        const pending = nb.bilstmForwardAsync(frozen);
        nb.setPrecision('fp32');
        expect((await pending).y, `[${B},${T},${I},${H}] async, call ${i}`).to.deep.equal(want.y);
      }
      expect(nb.bilstmForward(frozen).y, 'at fp32 frozen changes nothing').to.deep.equal(nb.bilstmForward(args).y);
    }
    // one kernel array read with another shape (same length: I·4H = 4·4·8 = 8·4·4) is rounded again for it
    const kernel = randF32(rng, 128, 0.3);
    for (const [I, H] of [[4, 8], [8, 4]]) {
      const weights = { kernel, recurrentKernel: randF32(rng, H * 4 * H, 0.3), bias: randF32(rng, 4 * H, 0.1) };
      const args = { batch: 2, steps: 3, inputSize: I, hiddenSize: H, x: randF32(rng, 2 * 3 * I, 1), weights };
      const want = at('bf16', () => nb.lstmForward(args));
      expect(at('bf16', () => nb.lstmForward({ ...args, weights: { ...weights, frozen: true } })).y, `I=${I} H=${H}`).to.deep.equal(want.y);
    }
  });

  it('frozen weights are a promise: the rounded copy is reused, so an in-place change is not seen until frozen is dropped', () => {
    const rng = rngFor(18);
    const [B, T, I, H] = [2, 3, 6, 5];
    const weights = { kernel: randF32(rng, I * 4 * H, 0.3), recurrentKernel: randF32(rng, H * 4 * H, 0.3), bias: randF32(rng, 4 * H, 0.1) };
    const args = { batch: B, steps: T, inputSize: I, hiddenSize: H, x: randF32(rng, B * T * I, 1) };
    const before = at('bf16', () => nb.lstmForward({ ...args, weights: { ...weights, frozen: true } }));
    weights.kernel.fill(0.25); // breaks the promise
    const stale = at('bf16', () => nb.lstmForward({ ...args, weights: { ...weights, frozen: true } }));
    const fresh = at('bf16', () => nb.lstmForward({ ...args, weights }));
    expect(stale.y).to.deep.equal(before.y);
    expect(fresh.y).to.not.deep.equal(before.y);
    expect(() => nb.lstmForward({ ...args, weights: { ...weights, frozen: 'yes' as unknown as boolean } }))
      .to.throw(DeepSentryError, 'lstmForward: expected weights.frozen to be a boolean but received string "yes"');
  });

  it('the LSTM backward is float32 at either tier (mixed precision: only forward products are bf16)', () => {
    const rng = rngFor(15);
    const [B, T, I, H] = [5, 4, 12, 9];
    const w = () => ({ kernel: randF32(rng, I * 4 * H, 0.3), recurrentKernel: randF32(rng, H * 4 * H, 0.3), bias: randF32(rng, 4 * H, 0.1) });
    const inputs = { batch: B, steps: T, inputSize: I, hiddenSize: H, x: randF32(rng, B * T * I, 1), forward: w(), backward: w() };
    const fwd = nb.bilstmForward({ ...inputs, training: true });
    const back = () => nb.bilstmBackward({ ...inputs, y: fwd.y, workspace: fwd.workspace!, dy: randF32(rngFor(16), B * T * 2 * H, 1) });
    const fp = back();
    const bf = at('bf16', back);
    expect(bf.dx).to.deep.equal(fp.dx);
    expect(bf.forward.dRecurrentKernel).to.deep.equal(fp.forward.dRecurrentKernel);
  });

  it('setPrecision accepts only fp32 and bf16; capabilities report the tier and its kernels', () => {
    for (const bad of ['fp16', 'BF16', '', 3, undefined, null]) {
      let err: unknown;
      try {
        nb.setPrecision(bad as unknown as Precision);
      } catch (e) {
        err = e;
      }
      expect(err, String(bad)).to.be.instanceOf(DeepSentryError);
      expect((err as DeepSentryError).code).to.equal('DS_INVALID_ARGUMENT');
      expect((err as Error).message).to.match(/setPrecision: expected precision to be 'fp32' or 'bf16'/);
    }
    expect(nb.capabilities().precision).to.equal('fp32');
    at('bf16', () => expect(nb.capabilities().precision).to.equal('bf16'));
    const c = nb.capabilities();
    expect(c.bf16Kernels).to.equal(c.bf16Hardware && c.simd === 'avx512' ? 'avx512bf16' : 'portable');
    expect(c.bf16Instructions).to.match(c.bf16Kernels === 'avx512bf16' ? /vdpbf16ps/ : /plain C\+\+/);
  });

  it('backend selection: bf16 runs on the native CPU kernels and on CUDA (same rule as fp32); cpu with bf16 is refused', () => {
    const caps = nb.capabilities();
    const probe = { capabilities: { ...caps, cudaCompiled: true, cudaDeviceCount: 1, cudaError: null }, nativeError: null, deviceCheck: () => null };
    expect(decideBackend('auto', probe).backend).to.equal('cuda');
    expect(decideBackend('auto', probe).reason).to.not.contain('bf16');
    for (const choice of ['auto', 'cuda'] as const) {
      const d = decideBackend(choice, probe, 'bf16');
      expect(d.backend, choice).to.equal('cuda');
      expect(d.reason, choice).to.contain('bf16 products: bf16 weights, float32 accumulation');
    }
    expect(decideBackend('native', probe, 'bf16').backend).to.equal('native');
    expect(() => decideBackend('cpu', probe, 'bf16')).to.throw(DeepSentryError, /precision: 'bf16'/).with.property('code', 'DS_UNSUPPORTED');
    expect(() => decideBackend('auto', { capabilities: null, nativeError: 'not built' }, 'bf16')).to.throw(/native addon cannot be loaded \(not built\)/);
    expect(() => useBackend('native', { precision: 'half' as Precision })).to.throw(DeepSentryError, /precision/).with.property('code', 'DS_INVALID_ARGUMENT');
    try {
      expect(useBackend('native', { precision: 'bf16' }).precision).to.equal('bf16');
      expect(nb.capabilities().precision).to.equal('bf16');
      useBackend('native');
      expect(nb.capabilities().precision, 'a later selection without precision is fp32 again').to.equal('fp32');
    } finally {
      nb.setPrecision('fp32');
    }
  });
});
