/**
 * The `cuda` row of the benchmark: the same W1 / L1 / W2 implementations as the `native` row
 * (bench/native.ts — Dense products, loss, Adam unchanged, on the CPU), with every LSTM call — bilstmForward,
 * bilstmBackward, lstmForward, lstmBackward, lstmEncode — sent through the addon's CudaLstm instead. Runs only
 * when the addon sees a usable CUDA device; otherwise the harness prints "skipped: <the CUDA error>".
 *
 * Weights stay on the device: one CudaLstm per weight set (keyed by the kernel arrays, which the workloads
 * keep for their lifetime). The workloads' Adam updates the weight arrays in place, so before each call the
 * adapter compares them with a host copy of what it last uploaded and uploads again (setWeights) only when they
 * differ — once per training step, never for forward-only workloads. That comparison (O(weights) on the host,
 * stopping at the first difference) is part of the timed cost, as an upload per step would be in the tfjs
 * backend. Timings include the host↔device copies of x, y and the gradients on every call.
 */
import type {
  BiLstmBackwardArgs, BiLstmDense, BiLstmDenseArgs, BiLstmDenseOptions, BiLstmDenseResult, BiLstmForwardArgs,
  BiLstmForwardResult, BiLstmGradients, CudaBinding, CudaLstm, LstmBackwardArgs, LstmEncodeArgs, LstmForwardArgs,
  LstmWeights, NativeBinding,
} from '../lib/backend/binding';
import { cudaUnusableReason } from '../lib/backend/select';

/** Why the cuda row cannot run here (the CUDA error), or null when a device is usable. */
export function cudaSkipReason(nb: NativeBinding): string | null {
  const ctor = (nb as Partial<CudaBinding>).CudaLstm;
  return cudaUnusableReason(nb.capabilities(), () => {
    if (typeof ctor !== 'function') return 'the addon has no CudaLstm';
    try {
      const w = () => new Float32Array(4);
      new ctor({ inputSize: 1, hiddenSize: 1, kernel: w(), recurrentKernel: w(), bias: w() }).dispose();
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  });
}

interface Resident {
  lstm: CudaLstm;
  /** what is on the device (host copies), forward direction then backward */
  copies: Float32Array[];
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Every call's weights minus the per-call arguments CudaLstm takes. */
function callArgs<T extends object>(a: T): Omit<T, 'weights' | 'forward' | 'backward' | 'backwardWeights' | 'inputSize' | 'hiddenSize'> {
  const r = { ...a } as Record<string, unknown>;
  for (const k of ['weights', 'forward', 'backward', 'backwardWeights', 'inputSize', 'hiddenSize']) delete r[k];
  return r as Omit<T, 'weights' | 'forward' | 'backward' | 'backwardWeights' | 'inputSize' | 'hiddenSize'>;
}

/**
 * A NativeBinding whose LSTM entry points run on the device through CudaLstm (weights resident, re-uploaded
 * only when changed); matMul and the rest stay the addon's CPU kernels. BiLstmDense (W1's forward) runs its
 * BiLSTM as the bidirectional lstmEncode on the device and its Dense layer and MSE on the CPU. `dispose()` frees
 * the device layers.
 */
export function cudaAdapter(nb: NativeBinding): NativeBinding & { dispose(): void } {
  const Ctor = (nb as NativeBinding & CudaBinding).CudaLstm;
  const layers = new Map<Float32Array, Resident>();
  const layer = (I: number, H: number, fw: LstmWeights, bw?: LstmWeights): CudaLstm => {
    const arrays = bw ? [fw.kernel, fw.recurrentKernel, fw.bias, bw.kernel, bw.recurrentKernel, bw.bias] : [fw.kernel, fw.recurrentKernel, fw.bias];
    let r = layers.get(fw.kernel);
    if (r && r.copies.length !== arrays.length) throw new Error('bench/cuda: one kernel array used by a uni- and a bidirectional layer');
    if (!r) {
      r = { lstm: new Ctor({ inputSize: I, hiddenSize: H, ...fw, ...(bw ? { backward: bw } : {}) }), copies: arrays.map((a) => Float32Array.from(a)) };
      layers.set(fw.kernel, r);
    } else if (!arrays.every((a, i) => sameValues(a, r!.copies[i]))) {
      r.lstm.setWeights({ ...fw, ...(bw ? { backward: bw } : {}) });
      arrays.forEach((a, i) => r!.copies[i].set(a));
    }
    return r.lstm;
  };
  const adapter = Object.create(nb) as NativeBinding & { dispose(): void };
  Object.assign(adapter, {
    lstmForward: (a: LstmForwardArgs) => layer(a.inputSize, a.hiddenSize, a.weights).forward(callArgs(a)),
    lstmBackward: (a: LstmBackwardArgs) => layer(a.inputSize, a.hiddenSize, a.weights).backward(callArgs(a)),
    bilstmForward: (a: BiLstmForwardArgs) =>
      layer(a.inputSize, a.hiddenSize, a.forward, a.backward).forward(callArgs(a)) as unknown as BiLstmForwardResult,
    bilstmBackward: (a: BiLstmBackwardArgs) =>
      layer(a.inputSize, a.hiddenSize, a.forward, a.backward).backward(callArgs(a)) as unknown as BiLstmGradients,
    lstmEncode: (a: LstmEncodeArgs) => layer(a.inputSize, a.hiddenSize, a.weights, a.backwardWeights).encode(callArgs(a)),
    BiLstmDense: class implements BiLstmDense {
      constructor(private readonly o: BiLstmDenseOptions) {}
      get inputSize(): number {
        return this.o.inputSize;
      }
      get hiddenSize(): number {
        return this.o.hiddenSize;
      }
      get outputSize(): number {
        return this.o.outputSize;
      }
      forward(a: BiLstmDenseArgs): BiLstmDenseResult {
        const { inputSize: I, hiddenSize: H, outputSize: N, forward, backward, dense } = this.o;
        const B = a.batch;
        // [B, 2H] = [h_fw, h_bw]: the final states the Dense layer reads
        const summary = adapter.lstmEncode({ batch: B, steps: a.steps, inputSize: I, hiddenSize: H, x: a.x, weights: forward, backwardWeights: backward, lengths: a.lengths }).h;
        const pred = nb.matMul({ a: summary, b: dense.kernel, m: B, k: 2 * H, n: N });
        for (let i = 0; i < pred.length; i++) pred[i] += dense.bias[i % N];
        if (a.pred) a.pred.set(pred);
        if (!a.target) return { pred: a.pred ?? pred };
        const scores = a.scores ?? new Float32Array(B);
        for (let b = 0; b < B; b++) {
          let sum = 0;
          for (let j = 0; j < N; j++) sum += (pred[b * N + j] - a.target[b * N + j]) ** 2;
          scores[b] = sum / N;
        }
        return { pred: a.pred ?? pred, scores };
      }
      async forwardAsync(a: BiLstmDenseArgs): Promise<BiLstmDenseResult> {
        return this.forward(a);
      }
    },
    dispose: () => {
      for (const r of layers.values()) r.lstm.dispose();
      layers.clear();
    },
  });
  return adapter;
}
