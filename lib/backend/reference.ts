/**
 * Reference LSTM math in plain TypeScript, computed in float64. It is the definition the native and CUDA
 * kernels are tested against, and the pure-TypeScript fallback of the fused ops when the addon cannot load.
 * Same conventions as native/src/lstm.h: x [B,T,I], kernel [I,4H], recurrentKernel [H,4H], bias [4H],
 * gate order i, f, c, o; per-sequence lengths; the reverse direction runs t = len-1 … 0; outputs past a
 * sequence's length are 0 and its final state is the state after its last valid step.
 */

type Num = ArrayLike<number>;

export interface RefLstmWeights {
  kernel: Num;
  recurrentKernel: Num;
  bias: Num;
}

export interface RefLstmInput {
  batch: number;
  steps: number;
  inputSize: number;
  hiddenSize: number;
  x: Num;
  weights: RefLstmWeights;
  h0?: Num;
  c0?: Num;
  lengths?: ArrayLike<number>;
  reverse?: boolean;
}

export interface RefLstmForward {
  y: Float64Array; // [B,T,H]
  h: Float64Array; // [B,H]
  c: Float64Array; // [B,H]
  /** activated gates [B,T,4H] and cell states [B,T,H] of every valid step (for backward) */
  gates: Float64Array;
  cells: Float64Array;
}

export interface RefLstmGrads {
  dx: Float64Array;
  dh0: Float64Array;
  dc0: Float64Array;
  dKernel: Float64Array;
  dRecurrentKernel: Float64Array;
  dBias: Float64Array;
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** The order in which sequence b visits its steps. */
export function stepOrder(len: number, reverse: boolean): number[] {
  const order: number[] = [];
  for (let k = 0; k < len; k++) order.push(reverse ? len - 1 - k : k);
  return order;
}

function lengthOf(inp: RefLstmInput, b: number): number {
  return inp.lengths ? inp.lengths[b] : inp.steps;
}

export function lstmForwardRef(inp: RefLstmInput): RefLstmForward {
  const { batch: B, steps: T, inputSize: I, hiddenSize: H, x, weights: w } = inp;
  const G = 4 * H;
  const y = new Float64Array(B * T * H);
  const hOut = new Float64Array(B * H);
  const cOut = new Float64Array(B * H);
  const gates = new Float64Array(B * T * G);
  const cells = new Float64Array(B * T * H);
  const pre = new Float64Array(G);
  for (let b = 0; b < B; b++) {
    const h = new Float64Array(H);
    const c = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      h[j] = inp.h0 ? inp.h0[b * H + j] : 0;
      c[j] = inp.c0 ? inp.c0[b * H + j] : 0;
    }
    for (const t of stepOrder(lengthOf(inp, b), !!inp.reverse)) {
      for (let g = 0; g < G; g++) pre[g] = w.bias[g];
      for (let k = 0; k < I; k++) {
        const xv = x[(b * T + t) * I + k];
        if (xv === 0) continue;
        for (let g = 0; g < G; g++) pre[g] += xv * w.kernel[k * G + g];
      }
      for (let k = 0; k < H; k++) {
        const hv = h[k];
        if (hv === 0) continue;
        for (let g = 0; g < G; g++) pre[g] += hv * w.recurrentKernel[k * G + g];
      }
      const go = (b * T + t) * G;
      for (let j = 0; j < H; j++) {
        const i = sigmoid(pre[j]);
        const f = sigmoid(pre[H + j]);
        const gg = Math.tanh(pre[2 * H + j]);
        const o = sigmoid(pre[3 * H + j]);
        c[j] = f * c[j] + i * gg;
        h[j] = o * Math.tanh(c[j]);
        gates[go + j] = i;
        gates[go + H + j] = f;
        gates[go + 2 * H + j] = gg;
        gates[go + 3 * H + j] = o;
        cells[(b * T + t) * H + j] = c[j];
        y[(b * T + t) * H + j] = h[j];
      }
    }
    hOut.set(h, b * H);
    cOut.set(c, b * H);
  }
  return { y, h: hOut, c: cOut, gates, cells };
}

/**
 * Backpropagation through time. dy [B,T,H] (entries past a sequence's length are ignored), dh/dc [B,H]
 * the gradients of the final state; any may be omitted (zeros).
 */
export function lstmBackwardRef(
  inp: RefLstmInput,
  fwd: RefLstmForward,
  grads: { dy?: Num; dh?: Num; dc?: Num },
): RefLstmGrads {
  const { batch: B, steps: T, inputSize: I, hiddenSize: H, x, weights: w } = inp;
  const G = 4 * H;
  const dx = new Float64Array(B * T * I);
  const dh0 = new Float64Array(B * H);
  const dc0 = new Float64Array(B * H);
  const dKernel = new Float64Array(I * G);
  const dRecurrentKernel = new Float64Array(H * G);
  const dBias = new Float64Array(G);
  const dpre = new Float64Array(G);
  for (let b = 0; b < B; b++) {
    const dh = new Float64Array(H);
    const dc = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      dh[j] = grads.dh ? grads.dh[b * H + j] : 0;
      dc[j] = grads.dc ? grads.dc[b * H + j] : 0;
    }
    const order = stepOrder(lengthOf(inp, b), !!inp.reverse);
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const prevT = k > 0 ? order[k - 1] : -1;
      if (grads.dy) for (let j = 0; j < H; j++) dh[j] += grads.dy[(b * T + t) * H + j];
      const go = (b * T + t) * G;
      for (let j = 0; j < H; j++) {
        const i = fwd.gates[go + j];
        const f = fwd.gates[go + H + j];
        const gg = fwd.gates[go + 2 * H + j];
        const o = fwd.gates[go + 3 * H + j];
        const cNow = fwd.cells[(b * T + t) * H + j];
        const cPrev = prevT >= 0 ? fwd.cells[(b * T + prevT) * H + j] : inp.c0 ? inp.c0[b * H + j] : 0;
        const tc = Math.tanh(cNow);
        const dct = dc[j] + dh[j] * o * (1 - tc * tc);
        dpre[3 * H + j] = dh[j] * tc * o * (1 - o);
        dpre[j] = dct * gg * i * (1 - i);
        dpre[H + j] = dct * cPrev * f * (1 - f);
        dpre[2 * H + j] = dct * i * (1 - gg * gg);
        dc[j] = dct * f;
      }
      for (let g = 0; g < G; g++) dBias[g] += dpre[g];
      for (let kk = 0; kk < I; kk++) {
        const xv = x[(b * T + t) * I + kk];
        let s = 0;
        for (let g = 0; g < G; g++) {
          dKernel[kk * G + g] += xv * dpre[g];
          s += w.kernel[kk * G + g] * dpre[g];
        }
        dx[(b * T + t) * I + kk] = s;
      }
      const nextDh = new Float64Array(H);
      for (let kk = 0; kk < H; kk++) {
        const hPrev = prevT >= 0 ? fwd.y[(b * T + prevT) * H + kk] : inp.h0 ? inp.h0[b * H + kk] : 0;
        let s = 0;
        for (let g = 0; g < G; g++) {
          dRecurrentKernel[kk * G + g] += hPrev * dpre[g];
          s += w.recurrentKernel[kk * G + g] * dpre[g];
        }
        nextDh[kk] = s;
      }
      dh.set(nextDh);
    }
    dh0.set(dh, b * H);
    dc0.set(dc, b * H);
  }
  return { dx, dh0, dc0, dKernel, dRecurrentKernel, dBias };
}

/** Scalar loss L = Σ y·ry + Σ h·rh + Σ c·rc for finite-difference checks (r* fixed random weights). */
export function lstmProbeLoss(f: RefLstmForward, ry: Num, rh: Num, rc: Num): number {
  let s = 0;
  for (let i = 0; i < f.y.length; i++) s += f.y[i] * ry[i];
  for (let i = 0; i < f.h.length; i++) s += f.h[i] * rh[i] + f.c[i] * rc[i];
  return s;
}

/** Deterministic PRNG (mulberry32) for tests and initialisers: same seed, same numbers, everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
