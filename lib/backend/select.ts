/**
 * Backend choice: `auto | native | cuda | cpu`, and a report of what was picked and why (printed by
 * `deepsentry info` and by training commands). `cpu` is tfjs-backend-cpu with DeepSentry's fused ops in
 * TypeScript; `native` is the `deepsentry` backend over the addon; `cuda` is `deepsentry-cuda`
 * (backend_cuda.ts): the native backend with its LSTM kernels on the device through CudaLstm.
 *
 * The rule (decideBackend, a pure function of what the machine offers, so it is tested without a GPU):
 * - `auto`: `cuda` when the addon has CUDA compiled in, sees at least one device (capabilities().cudaDeviceCount
 *   > 0) and a probe CudaLstm can be created; then LSTM calls with batch × hidden ≥ CUDA_MIN_WORK run on the
 *   device and smaller ones on the CPU kernels, and a later CUDA failure moves everything back to the CPU.
 *   Otherwise `native` when the addon loads, else `cpu`. The reason names why the faster ones were not used.
 * - `cuda`: every LSTM call on the device; refused (DS_UNSUPPORTED, or DS_CUDA when a device is seen but cannot
 *   be used) with the CUDA error when there is no usable device.
 * - `native` / `cpu`: exactly that, or DS_NATIVE_UNAVAILABLE when the addon does not load.
 *
 * Precision (`fp32` default, `bf16`: binding.ts Precision) is set on the addon for the whole process and on the
 * `deepsentry-cuda` backend, whose CudaLstm layers then run their forward products at the same bf16 tier
 * (native/cuda/README.md: bf16 weights on the device, float32 accumulation in the CPU tier's order), so `auto`
 * and `cuda` choose as at fp32. `cpu` with bf16 is refused (DS_UNSUPPORTED) rather than silently computing in
 * another precision.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DeepSentryError, invalidParameterError } from '../errors';
import type { CudaBinding, NativeBinding, NativeCapabilities, Precision } from './binding';
import { CUDA_BACKEND_NAME, CUDA_MIN_WORK, CudaBackend, registerCudaBackend } from './backend_cuda';
import { NATIVE_BACKEND_NAME, registerNativeBackend } from './backend_native';
import { registerAllGradients } from './register_all_gradients';
import { registerAllKernels } from './register_all_kernels';
import { loadNative, nativeStatus } from './native';

export type BackendChoice = 'auto' | 'native' | 'cuda' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'cuda', 'cpu'];

export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16'];

/** What runs: the CUDA LSTM kernels (+ native CPU kernels), the native CPU kernels, or TypeScript on tfjs cpu. */
export type BackendKind = 'cuda' | 'native' | 'cpu';

/** What useBackend picked. */
export interface BackendSelection {
  /** what the caller asked for */
  requested: BackendChoice;
  /** what runs: CUDA for the LSTM kernels, the native CPU kernels, or pure TypeScript on tfjs-backend-cpu */
  backend: BackendKind;
  /** the tfjs backend name now active */
  tfjsBackend: string;
  /** one sentence: why this backend (and why not the faster ones) */
  reason: string;
  /** addon capabilities when the addon loaded */
  capabilities: NativeCapabilities | null;
  /** the precision tier of the products */
  precision: Precision;
}

interface NativeProbe {
  binding: NativeBinding | null;
  error: string | null;
}

let probe: NativeProbe | null = null;

/** Loads the addon once (lib/backend/native.ts) and remembers why it failed. */
export function probeNative(): NativeProbe {
  if (probe) return probe;
  const binding = loadNative();
  const status = nativeStatus();
  const why = binding ? null : status.errors.map((e) => e.error).join('; ') || 'the addon did not load';
  probe = { binding, error: why };
  return probe;
}

let current: BackendSelection | null = null;

/** The selection made by the last useBackend call, or null. */
export function currentBackend(): BackendSelection | null {
  return current;
}

/**
 * The addon when the native CPU backend is the one running (the last useBackend picked `native` and tfjs'
 * active backend is still `deepsentry`), else null: for model code that calls the addon directly instead of
 * going through tfjs kernels. Null on `cpu` (no addon), on `cuda` (its LSTM calls belong on the device) and
 * when something else set another tfjs backend since.
 */
export function activeNativeBinding(): NativeBinding | null {
  if (current?.backend !== 'native' || tf.getBackend() !== NATIVE_BACKEND_NAME) return null;
  return probeNative().binding;
}

function activate(name: string): void {
  // tfjs' setBackend is async in signature only for these two (their init is synchronous).
  void tf.setBackend(name);
  if (tf.getBackend() !== name) throw new DeepSentryError('DS_UNSUPPORTED', `tfjs could not initialise backend ${name}`);
  // MathBackendCPU's "use tfjs-node" banner is about a package that cannot install here.
  const b = tf.findBackend(name) as unknown as { firstUse?: boolean } | null;
  if (b) b.firstUse = false;
}

/** What decideBackend knows about the machine. */
export interface MachineProbe {
  /** the addon's capabilities, or null when it did not load */
  capabilities: NativeCapabilities | null;
  /** why the addon did not load (when capabilities is null) */
  nativeError: string | null;
  /**
   * tries the device for real (creates and frees a tiny CudaLstm); null when that works, else the error. Called
   * only when a device is reported.
   */
  deviceCheck?: () => string | null;
}

/** decideBackend's answer. */
export interface BackendDecision {
  backend: BackendKind;
  /** one sentence: why this backend, and why not the faster ones */
  reason: string;
}

/** CUDA encodes versions as 1000*major + 10*minor (13000 → "13.0"). */
export function cudaVersionText(v: number | null): string {
  if (v === null || v <= 0) return 'n/a';
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** Why CUDA cannot be used here (with the CUDA error text), or null when it can. */
export function cudaUnusableReason(caps: NativeCapabilities, deviceCheck?: () => string | null): string | null {
  if (!caps.cudaCompiled) return `CUDA not compiled into the addon${caps.cudaError ? ` (${caps.cudaError})` : ''}`;
  if (caps.cudaDeviceCount <= 0) return `no usable CUDA device (${caps.cudaError ?? 'none found'})`;
  const failed = deviceCheck ? deviceCheck() : null;
  return failed === null ? null : `CUDA device present but unusable (${failed})`;
}

/** The backend `choice` gives on a machine described by `m`, or a DeepSentryError saying why it cannot be had. */
export function decideBackend(choice: BackendChoice, m: MachineProbe, precision: Precision = 'fp32'): BackendDecision {
  if (!BACKEND_CHOICES.includes(choice)) throw invalidParameterError('backend', `one of ${BACKEND_CHOICES.join(', ')}`, choice);
  if (!PRECISIONS.includes(precision)) throw invalidParameterError('precision', `one of ${PRECISIONS.join(', ')}`, precision);
  const bf16 = precision === 'bf16';
  const noBf16 = (what: string) =>
    new DeepSentryError('DS_UNSUPPORTED', `precision: 'bf16': ${what}; the bf16 tier runs on the native CPU and CUDA kernels (backend: 'native' or 'auto'; backend: 'cuda' with a device), or use precision: 'fp32'`);
  if (choice === 'cpu') {
    if (bf16) throw noBf16("backend: 'cpu' computes in float64/float32 TypeScript");
    return { backend: 'cpu', reason: 'requested: pure TypeScript on tfjs-backend-cpu' };
  }
  const caps = m.capabilities;
  if (caps === null) {
    const why = m.nativeError ?? 'the addon did not load';
    if (bf16) throw noBf16(`the native addon cannot be loaded (${why})`);
    if (choice !== 'auto') {
      throw new DeepSentryError('DS_NATIVE_UNAVAILABLE', `backend: '${choice}': the native addon cannot be loaded (${why}); build it with \`npm run build:native\` or use backend: 'cpu'`);
    }
    return { backend: 'cpu', reason: `native addon unavailable (${why}); using pure TypeScript` };
  }
  const cpuKernels = `native CPU kernels (${caps.simd}, ${caps.threads} threads${bf16 ? `, bf16 products on ${caps.bf16Instructions}` : ''})`;
  if (choice === 'native') return { backend: 'native', reason: `${cpuKernels}; CUDA not used (--backend native)` };
  const unusable = cudaUnusableReason(caps, m.deviceCheck);
  const cudaTier = bf16 ? ', bf16 products: bf16 weights, float32 accumulation' : '';
  const devices = `${caps.cudaDeviceCount} CUDA device(s), runtime ${cudaVersionText(caps.cudaRuntimeVersion)}, driver ${cudaVersionText(caps.cudaDriverVersion)}`;
  if (choice === 'cuda') {
    if (unusable !== null) {
      const code = caps.cudaCompiled && caps.cudaDeviceCount > 0 ? 'DS_CUDA' : 'DS_UNSUPPORTED';
      throw new DeepSentryError(code, `backend: 'cuda': ${unusable}; use backend: 'native' or 'auto'`);
    }
    return { backend: 'cuda', reason: `requested: every LSTM call on CUDA (${devices}${cudaTier}); other kernels on the ${cpuKernels}` };
  }
  if (unusable !== null) return { backend: 'native', reason: `${cpuKernels}; CUDA not used: ${unusable}` };
  return {
    backend: 'cuda',
    reason: `CUDA (${devices}${cudaTier}) for LSTM calls with batch × hidden ≥ ${CUDA_MIN_WORK}, ${cpuKernels} for smaller ones and everything else`,
  };
}

const SIMD_NAMES: Record<string, string> = { avx512: 'AVX-512', avx2: 'AVX2', baseline: 'no SIMD extensions' };

/**
 * The selection in one calm line for the start of every command ("CPU kernels, AVX-512, 2 threads"): what runs,
 * not why the faster options did not. A machine without a GPU is the normal case, so CUDA's absence is not
 * mentioned; its details are in `deepsentry info` and in the `reason` (--verbose).
 */
export function backendSummary(s: Pick<BackendSelection, 'backend' | 'requested' | 'capabilities'> & { precision?: Precision }): string {
  const c = s.capabilities;
  const bf16 = s.precision === 'bf16' && c ? `, bf16 products (${c.bf16Kernels === 'avx512bf16' ? 'AVX512-BF16' : 'emulated: no AVX512-BF16 here, slower than fp32'})` : '';
  const cpu = c ? `CPU kernels, ${SIMD_NAMES[c.simd] ?? c.simd}, ${c.threads} thread${c.threads === 1 ? '' : 's'}${bf16}` : '';
  if (s.backend === 'cuda') {
    const tier = s.precision === 'bf16' ? ', bf16 products' : '';
    return `CUDA for the LSTM kernels (${c?.cudaDeviceCount ?? '?'} device${c?.cudaDeviceCount === 1 ? '' : 's'}${tier}), ${cpu} for the rest`;
  }
  if (s.backend === 'native') return cpu;
  return s.requested === 'cpu' ? 'pure TypeScript kernels (--backend cpu)' : 'pure TypeScript kernels: the native addon did not load (deepsentry info says why)';
}

/** Creates and frees a 1×1 CudaLstm: the runtime can report a device that still cannot be used (driver too old). */
function deviceCheckFor(binding: NativeBinding): () => string | null {
  return () => {
    const ctor = (binding as Partial<CudaBinding>).CudaLstm;
    if (typeof ctor !== 'function') return 'the addon has no CudaLstm';
    try {
      const w = () => new Float32Array(4);
      new ctor({ inputSize: 1, hiddenSize: 1, kernel: w(), recurrentKernel: w(), bias: w() }).dispose();
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  };
}

/**
 * Selects the compute backend for everything that follows (tfjs is process-global), by decideBackend's rule;
 * `native` and `cuda` fail with a DeepSentryError when they cannot be had. `threads` sizes the native thread
 * pool; `precision` (default fp32) sets the tier of the products for the whole process.
 */
export function useBackend(choice: BackendChoice = 'auto', options: { threads?: number; precision?: Precision } = {}): BackendSelection {
  if (!BACKEND_CHOICES.includes(choice)) throw invalidParameterError('backend', `one of ${BACKEND_CHOICES.join(', ')}`, choice);
  const precision = options.precision ?? 'fp32';
  if (!PRECISIONS.includes(precision)) throw invalidParameterError('precision', `one of ${PRECISIONS.join(', ')}`, precision);
  registerAllKernels();
  registerAllGradients();
  const p = choice === 'cpu' ? { binding: null, error: null } : probeNative();
  // before deciding, so that the reason reports the pool size that will run
  if (p.binding && options.threads !== undefined) p.binding.setThreads(options.threads);
  const decision = decideBackend(choice, {
    capabilities: p.binding ? p.binding.capabilities() : null,
    nativeError: p.error,
    ...(p.binding ? { deviceCheck: deviceCheckFor(p.binding) } : {}),
  }, precision);
  // the addon's tier follows every selection (an earlier bf16 one does not linger into an fp32 one)
  if (p.binding) p.binding.setPrecision(precision);
  if (decision.backend === 'cpu' || !p.binding) {
    activate('cpu');
    current = { requested: choice, backend: 'cpu', tfjsBackend: 'cpu', reason: decision.reason, capabilities: null, precision };
    return current;
  }
  registerNativeBackend(p.binding);
  let name = NATIVE_BACKEND_NAME;
  if (decision.backend === 'cuda') {
    registerCudaBackend(p.binding);
    name = CUDA_BACKEND_NAME;
  }
  activate(name);
  if (decision.backend === 'cuda') {
    const be = tf.findBackend(CUDA_BACKEND_NAME) as CudaBackend;
    // explicit --backend cuda: everything on the device, failures are errors; auto: the size rule, CPU on failure
    be.routing.minWork = choice === 'cuda' ? 0 : CUDA_MIN_WORK;
    be.routing.fallBackOnError = choice !== 'cuda';
    // an explicit request tries the device again even if an earlier auto run fell back from it
    if (choice === 'cuda') be.cudaFailure = null;
    // the device layers' forward tier follows the selection, like the addon's (setPrecision above)
    be.precision = precision;
  }
  current = { requested: choice, backend: decision.backend, tfjsBackend: name, reason: decision.reason, capabilities: p.binding.capabilities(), precision };
  return current;
}
