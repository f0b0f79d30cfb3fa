/**
 * The `deepsentry` tfjs backend: MathBackendCPU's storage and kernels, with the kernels the addon does better
 * replaced (register_all_kernels.ts). Tensor data stays JS typed arrays, which the addon reads and writes in
 * place.
 */
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { findBackend, registerBackend, type DataId } from '@tensorflow/tfjs-core';
import type { NativeBinding } from './binding';
import { NATIVE_BACKEND_NAME, releaseWorkspace } from './kernels/kernel_util';
import { registerAllKernels } from './register_all_kernels';
import { registerAllGradients } from './register_all_gradients';

export { NATIVE_BACKEND_NAME };

export class NativeBackend extends MathBackendCPU {
  /** The addon the native kernels call. */
  readonly binding: NativeBinding;
  constructor(binding: NativeBinding) {
    super();
    this.binding = binding;
    // MathBackendCPU prints a "use tfjs-node" banner on first write; this backend is the native one.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** MathBackendCPU's, and when the data is released, an LSTM workspace kept for it becomes a spare. */
  override disposeData(dataId: DataId, force = false): boolean {
    const had = this.data.has(dataId);
    const disposed = super.disposeData(dataId, force);
    if (had && !this.data.has(dataId)) releaseWorkspace(dataId);
    return disposed;
  }
}

/**
 * Registers the `deepsentry` backend over `binding` (once; later calls keep the first). Priority 2 puts it
 * ahead of `cpu` (1) for tfjs code that never calls setBackend.
 */
export function registerNativeBackend(binding: NativeBinding): void {
  registerAllKernels();
  registerAllGradients();
  if (findBackend(NATIVE_BACKEND_NAME) == null && !registered) {
    registered = true;
    registerBackend(NATIVE_BACKEND_NAME, () => new NativeBackend(binding), 2);
  }
}
let registered = false;
