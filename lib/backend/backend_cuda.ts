/**
 * The `deepsentry-cuda` tfjs backend: the native backend (backend_native.ts) with its FusedLstm /
 * FusedBiLstm kernels and their gradients running through the addon's CudaLstm objects (native/cuda). Every
 * other kernel — Dense products, losses, Adam — stays on the native CPU kernels, on the same typed-array
 * storage, so nothing else changes.
 *
 * Weights stay on the device between calls: one CudaLstm per layer, found by the dataIds of the layer's weight
 * tensors (CudaLstmCache). tfjs never changes a tensor's data in place — a variable's `assign` gives it a new
 * dataId and disposes the old one — so equal dataIds (with the same storage arrays) mean equal weights and no
 * upload; a layer whose old weights were disposed (an optimizer step) has its CudaLstm re-used with
 * `setWeights` (one host→device copy of the new values, no new device allocation).
 *
 * Small work goes to the CPU kernels: a launch and the copies of x and y cost more than a small recurrence
 * (see CUDA_MIN_WORK). None of this has run on a GPU (no machine here has one); the CPU-side logic — the cache,
 * its invalidation, the routing — is tested with a stand-in device layer (test/unit/backend-cuda.test.ts).
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { findBackend, getKernel, getKernelsForBackend, registerBackend, registerKernel } from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../errors';
import { NativeBackend } from './backend_native';
import type { CudaBinding, CudaLstm, CudaLstmOptions, NativeBinding, Precision } from './binding';
import { cudaKernelConfigs } from './kernels/FusedLstmCuda';
import { NATIVE_BACKEND_NAME } from './kernels/kernel_util';
import { registerAllKernels } from './register_all_kernels';
import { registerAllGradients } from './register_all_gradients';

/** Name of the tfjs backend whose LSTM kernels run on CUDA. */
export const CUDA_BACKEND_NAME = 'deepsentry-cuda';

/**
 * The rule for "worth running on the GPU": a FusedLstm/FusedBiLstm call goes to the device when
 * batch × hiddenSize ≥ CUDA_MIN_WORK (in `auto`; `--backend cuda` sends every call). Why batch × hidden: the
 * recurrence is sequential in time, so the parallel work of one step is B·H gate columns (each a dot product of
 * length H + I); below a few thousand of them a GPU step is bound by launch / grid-barrier latency (~5–10 µs)
 * while the CPU kernels do such a step in about that time. 2048 (e.g. B=16, H=128) is an estimate from those
 * figures, NOT a measurement: no GPU has been available to calibrate it. L1 (B=1) stays on the CPU.
 */
export const CUDA_MIN_WORK = 2048;

/** Whether a call of this size should run on the device under `minWork` (see CUDA_MIN_WORK). */
export function cudaWorthIt(batch: number, hiddenSize: number, minWork: number): boolean {
  return batch > 0 && batch * hiddenSize >= minWork;
}

/** Makes a device layer (the addon's CudaLstm, or a stand-in in tests). */
export type DeviceLstmFactory = (opts: CudaLstmOptions) => CudaLstm;

/** The three weight tensors of one direction, as a kernel sees them. */
export interface WeightTensors {
  kernel: TensorInfo;
  recurrentKernel: TensorInfo;
  bias: TensorInfo;
}

/** Counters of the cache (tests, benchmarks). */
export interface CudaLstmCacheStats {
  /** calls that found their weights on the device */
  hits: number;
  /** calls that re-used a layer's CudaLstm with new weights (setWeights: one upload) */
  uploads: number;
  /** CudaLstm objects created (upload included) */
  creations: number;
  /** CudaLstm objects disposed to stay within the capacity */
  evictions: number;
}

/** One cached layer: what is on the device and which tensors it came from. */
interface Entry {
  lstm: CudaLstm;
  inputSize: number;
  hiddenSize: number;
  dirs: 1 | 2;
  /** the tier its forward runs at (a layer's CudaLstm follows the backend's precision: setPrecision) */
  precision: Precision;
  /** dataIds of the weight tensors on the device: kernel, recurrentKernel, bias (× directions) */
  ids: object[];
  /** their storage arrays at upload time (a backend `move` would replace them under the same dataId) */
  arrays: Float32Array[];
  /** bumped on every upload: a workspace from an older generation is not valid for backward */
  generation: number;
  lastUse: number;
}

/** What acquire() hands a kernel. */
export interface AcquiredLstm {
  lstm: CudaLstm;
  /** the upload generation of these weights (compare with the one saved beside a forward's workspace) */
  generation: number;
}

/**
 * CudaLstm objects keyed by the weight tensors they hold on the device. `values(dataId)` reads a tensor's
 * storage, or returns undefined once the tensor was disposed (then its layer's CudaLstm may be re-used).
 */
export class CudaLstmCache {
  readonly stats: CudaLstmCacheStats = { hits: 0, uploads: 0, creations: 0, evictions: 0 };
  private readonly entries: Entry[] = [];
  private clock = 0;
  private generations = 0;

  constructor(
    private readonly factory: DeviceLstmFactory,
    private readonly values: (dataId: object) => Float32Array | undefined,
    /** most layers kept on the device at once (a model has a handful; beyond this the least recently used goes) */
    readonly capacity = 16,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new DeepSentryError('DS_OUT_OF_RANGE', `CudaLstmCache: capacity must be an integer >= 1, got ${capacity}`);
  }

  /** Number of layers on the device. */
  get size(): number {
    return this.entries.length;
  }

  /**
   * The device layer holding these weights, uploading them only when they are not there yet, set to run its
   * forward at `precision` (a cached layer at another tier is switched with setPrecision; its weights stay).
   */
  acquire(inputSize: number, hiddenSize: number, fw: WeightTensors, bw?: WeightTensors, precision: Precision = 'fp32'): AcquiredLstm {
    const dirs: 1 | 2 = bw ? 2 : 1;
    const tensors = bw ? [fw.kernel, fw.recurrentKernel, fw.bias, bw.kernel, bw.recurrentKernel, bw.bias] : [fw.kernel, fw.recurrentKernel, fw.bias];
    const ids = tensors.map((t) => t.dataId);
    const arrays = ids.map((id, i) => {
      const v = this.values(id);
      if (!v) throw new DeepSentryError('DS_INVALID_ARGUMENT', `CudaLstmCache: weight tensor ${i} has no data (disposed)`);
      return v;
    });
    const sameShape = this.entries.filter((e) => e.inputSize === inputSize && e.hiddenSize === hiddenSize && e.dirs === dirs);
    const use = (e: Entry): AcquiredLstm => {
      if (e.precision !== precision) {
        e.lstm.setPrecision(precision);
        e.precision = precision;
      }
      e.lastUse = ++this.clock;
      return { lstm: e.lstm, generation: e.generation };
    };
    const exact = sameShape.find((e) => e.ids.every((id, i) => id === ids[i]));
    if (exact) {
      if (exact.arrays.every((a, i) => a === arrays[i])) {
        this.stats.hits++;
        return use(exact);
      }
      return use(this.upload(exact, ids, arrays));
    }
    // A layer whose previous weights were disposed (a variable assigned by an optimizer step): same layer, new
    // values — overwrite its device weights instead of allocating another layer.
    const stale = sameShape.find((e) => e.ids.some((id) => this.values(id) === undefined));
    if (stale) return use(this.upload(stale, ids, arrays));
    const opts: CudaLstmOptions = { inputSize, hiddenSize, kernel: arrays[0], recurrentKernel: arrays[1], bias: arrays[2], precision };
    if (dirs === 2) opts.backward = { kernel: arrays[3], recurrentKernel: arrays[4], bias: arrays[5] };
    const lstm = this.factory(opts);
    this.stats.creations++;
    const e: Entry = { lstm, inputSize, hiddenSize, dirs, precision, ids, arrays, generation: ++this.generations, lastUse: 0 };
    this.entries.push(e);
    if (this.entries.length > this.capacity) {
      let lru = 0;
      for (let i = 1; i < this.entries.length - 1; i++) if (this.entries[i].lastUse < this.entries[lru].lastUse) lru = i;
      const [gone] = this.entries.splice(lru, 1);
      gone.lstm.dispose();
      this.stats.evictions++;
    }
    return use(e);
  }

  /** Frees every device layer. */
  clear(): void {
    for (const e of this.entries.splice(0)) e.lstm.dispose();
  }

  private upload(e: Entry, ids: object[], arrays: Float32Array[]): Entry {
    const w: Parameters<CudaLstm['setWeights']>[0] = { kernel: arrays[0], recurrentKernel: arrays[1], bias: arrays[2] };
    if (e.dirs === 2) w.backward = { kernel: arrays[3], recurrentKernel: arrays[4], bias: arrays[5] };
    e.lstm.setWeights(w);
    e.ids = ids;
    e.arrays = arrays;
    e.generation = ++this.generations;
    this.stats.uploads++;
    return e;
  }
}

/** How a CudaBackend routes LSTM calls. */
export interface CudaRouting {
  /** calls with batch × hidden below this run on the CPU kernels (CUDA_MIN_WORK in auto, 0 for --backend cuda) */
  minWork: number;
  /**
   * when a device call fails with DS_CUDA: true (auto) runs that call and all later ones on the CPU kernels and
   * remembers why (cudaFailure); false (--backend cuda) throws
   */
  fallBackOnError: boolean;
}

export class CudaBackend extends NativeBackend {
  readonly cache: CudaLstmCache;
  readonly routing: CudaRouting = { minWork: CUDA_MIN_WORK, fallBackOnError: true };
  /** the tier of the device layers' forward passes: the process's precision, set by useBackend (select.ts) */
  precision: Precision = 'fp32';
  /** the DS_CUDA error that turned the device off for this backend (auto only), or null */
  cudaFailure: string | null = null;
  /** Says once per failure that CUDA failed and the CPU took over (a process warning); tests keep the text instead. */
  warn: (message: string) => void = (message) => process.emitWarning(message, { code: 'DEEPSENTRY_CUDA_FAILED' });
  /** LSTM calls run on the device and on the CPU kernels */
  readonly calls = { device: 0, cpu: 0 };

  /** `deviceLayer` defaults to the addon's CudaLstm; tests pass a stand-in. */
  constructor(binding: NativeBinding, deviceLayer?: DeviceLstmFactory) {
    super(binding);
    const factory = deviceLayer ?? defaultDeviceLayer(binding);
    this.cache = new CudaLstmCache(factory, (id) => {
      const data = (this as unknown as MathBackendCPU).data;
      return data.has(id) ? (data.get(id).values as Float32Array) : undefined;
    });
  }

  /** Whether a call of this size goes to the device. */
  useDevice(batch: number, hiddenSize: number): boolean {
    return this.cudaFailure === null && cudaWorthIt(batch, hiddenSize, this.routing.minWork);
  }

  /** Runs `device` (counted), or `cpu` when the device is off; a DS_CUDA failure follows routing.fallBackOnError. */
  run<T>(onDevice: boolean, device: () => T, cpu: () => T): T {
    if (!onDevice) {
      this.calls.cpu++;
      return cpu();
    }
    try {
      const r = device();
      this.calls.device++;
      return r;
    } catch (e) {
      if (!(this.routing.fallBackOnError && e instanceof DeepSentryError && e.code === 'DS_CUDA')) throw e;
      this.cudaFailure = e.message;
      this.warn(`CUDA failed, the LSTM kernels run on the CPU from now on: ${e.message}`);
      this.cache.clear();
      this.calls.cpu++;
      return cpu();
    }
  }

  override dispose(): void {
    this.cache.clear();
    super.dispose();
  }
}

function defaultDeviceLayer(binding: NativeBinding): DeviceLstmFactory {
  const ctor = (binding as Partial<CudaBinding>).CudaLstm;
  return (opts) => {
    if (typeof ctor !== 'function') throw new DeepSentryError('DS_UNSUPPORTED', 'this addon was built without CUDA (no CudaLstm)');
    return new ctor(opts);
  };
}

const kernelsRegistered = new Set<string>();

/**
 * Registers the kernel table of a CUDA backend under `backendName`: every kernel of the native backend, then the
 * CUDA LSTM kernels on top. Idempotent per name (tests register a second name with a stand-in device layer).
 */
export function registerCudaKernels(backendName: string): void {
  if (kernelsRegistered.has(backendName)) return;
  registerAllKernels();
  registerAllGradients();
  const cuda = cudaKernelConfigs(backendName);
  for (const k of getKernelsForBackend(NATIVE_BACKEND_NAME)) {
    if (getKernel(k.kernelName, backendName) == null && !cuda.some((c) => c.kernelName === k.kernelName)) registerKernel({ ...k, backendName });
  }
  for (const k of cuda) if (getKernel(k.kernelName, backendName) == null) registerKernel(k);
  kernelsRegistered.add(backendName);
}

/** Registers the `deepsentry-cuda` backend over `binding` (once; priority 0: used only when selected). */
export function registerCudaBackend(binding: NativeBinding): void {
  registerCudaKernels(CUDA_BACKEND_NAME);
  if (findBackend(CUDA_BACKEND_NAME) == null) registerBackend(CUDA_BACKEND_NAME, () => new CudaBackend(binding), 0);
}
