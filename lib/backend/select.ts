/**
 * Backend choice: `auto | native | cuda | cpu`, and a report of what was picked and why (printed by
 * `deepsentry info` and by training commands). `cpu` is tfjs-backend-cpu with DeepSentry's fused ops in
 * TypeScript; `native` is the `deepsentry` backend over the addon; `cuda` needs CUDA kernels wired into the
 * backend, which this build does not have yet: asking for it is a clear error, and `auto` says why it did not
 * pick it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DeepSentryError, invalidParameterError } from '../errors';
import type { NativeBinding, NativeCapabilities } from './binding';
import { NATIVE_BACKEND_NAME, registerNativeBackend } from './backend_native';
import { registerAllGradients } from './register_all_gradients';
import { registerAllKernels } from './register_all_kernels';
import { loadNative, nativeStatus } from './native';

export type BackendChoice = 'auto' | 'native' | 'cuda' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'cuda', 'cpu'];

/** What useBackend picked. */
export interface BackendSelection {
  /** what the caller asked for */
  requested: BackendChoice;
  /** what runs: the native CPU kernels or pure TypeScript on tfjs-backend-cpu */
  backend: 'native' | 'cpu';
  /** the tfjs backend name now active */
  tfjsBackend: string;
  /** one sentence: why this backend (and why not the faster ones) */
  reason: string;
  /** addon capabilities when the addon loaded */
  capabilities: NativeCapabilities | null;
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

function activate(name: string): void {
  // tfjs' setBackend is async in signature only for these two (their init is synchronous).
  void tf.setBackend(name);
  if (tf.getBackend() !== name) throw new DeepSentryError('DS_UNSUPPORTED', `tfjs could not initialise backend ${name}`);
  // MathBackendCPU's "use tfjs-node" banner is about a package that cannot install here.
  const b = tf.findBackend(name) as unknown as { firstUse?: boolean } | null;
  if (b) b.firstUse = false;
}

/**
 * Selects the compute backend for everything that follows (tfjs is process-global). `auto` picks the native
 * kernels when the addon loads, else TypeScript on tfjs-backend-cpu; `native` and `cuda` fail with a
 * DeepSentryError when they cannot be had. `threads` sizes the native thread pool.
 */
export function useBackend(choice: BackendChoice = 'auto', options: { threads?: number } = {}): BackendSelection {
  if (!BACKEND_CHOICES.includes(choice)) throw invalidParameterError('backend', `one of ${BACKEND_CHOICES.join(', ')}`, choice);
  registerAllKernels();
  registerAllGradients();
  if (choice === 'cpu') {
    activate('cpu');
    current = { requested: choice, backend: 'cpu', tfjsBackend: 'cpu', reason: 'requested: pure TypeScript on tfjs-backend-cpu', capabilities: null };
    return current;
  }
  const p = probeNative();
  if (!p.binding) {
    if (choice !== 'auto') {
      throw new DeepSentryError('DS_NATIVE_UNAVAILABLE', `--backend ${choice}: the native addon cannot be loaded (${p.error}); build it with \`npm run build:native\` or use --backend cpu`);
    }
    activate('cpu');
    current = { requested: choice, backend: 'cpu', tfjsBackend: 'cpu', reason: `native addon unavailable (${p.error}); using pure TypeScript`, capabilities: null };
    return current;
  }
  const caps = p.binding.capabilities();
  if (choice === 'cuda') {
    const why = caps.cudaDeviceCount > 0 ? 'the tfjs backend has no CUDA kernels wired in yet' : `no usable CUDA device (${caps.cudaError ?? (caps.cudaCompiled ? 'none found' : 'CUDA not compiled in')})`;
    throw new DeepSentryError('DS_UNSUPPORTED', `--backend cuda: ${why}; use --backend native or auto`);
  }
  if (options.threads !== undefined) p.binding.setThreads(options.threads);
  registerNativeBackend(p.binding);
  activate(NATIVE_BACKEND_NAME);
  const cudaNote = choice === 'auto' ? `; CUDA not used (${caps.cudaDeviceCount > 0 ? 'no CUDA kernels in the tfjs backend yet' : caps.cudaError ?? 'no device'})` : '';
  current = {
    requested: choice,
    backend: 'native',
    tfjsBackend: NATIVE_BACKEND_NAME,
    reason: `native CPU kernels (${caps.simd}, ${p.binding.capabilities().threads} threads)${cudaNote}`,
    capabilities: p.binding.capabilities(),
  };
  return current;
}
