/**
 * Plumbing shared by the kernel files: typed-array access to tensor storage (both our backends keep tensor
 * data as JS typed arrays, MathBackendCPU-style, so native code reads it without a copy), output creation,
 * shape checks that name the op and the input, and the side table of LSTM workspaces.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { DeepSentryError } from '../../errors';
import type { NativeBinding } from '../binding';

/** Name of the backend that runs the native kernels. */
export const NATIVE_BACKEND_NAME = 'deepsentry';

export function f32(backend: object, t: TensorInfo, op: string, name: string): Float32Array {
  if (t.dtype !== 'float32') throw new DeepSentryError('DS_INVALID_ARGUMENT', `${op}: expected float32 for ${name} but received ${t.dtype}`);
  return (backend as unknown as MathBackendCPU).data.get(t.dataId).values as Float32Array;
}

export function i32(backend: object, t: TensorInfo, op: string, name: string): Int32Array {
  if (t.dtype !== 'int32') throw new DeepSentryError('DS_INVALID_ARGUMENT', `${op}: expected int32 for ${name} but received ${t.dtype}`);
  return (backend as unknown as MathBackendCPU).data.get(t.dataId).values as Int32Array;
}

export function output(backend: object, shape: number[], values: Float32Array): TensorInfo {
  return (backend as unknown as MathBackendCPU).makeTensorInfo(shape, 'float32', values);
}

/** The addon held by the `deepsentry` backend. */
export function bindingOf(backend: object): NativeBinding {
  const b = (backend as unknown as { binding?: NativeBinding }).binding;
  if (!b) throw new DeepSentryError('DS_NATIVE_UNAVAILABLE', 'a native kernel ran on a backend without the addon');
  return b;
}

export function expectShape(op: string, name: string, t: TensorInfo | undefined, shape: number[]): TensorInfo {
  if (t === undefined) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${op}: missing input ${name}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new DeepSentryError('DS_SHAPE_MISMATCH', `${op}: expected shape [${shape.join(',')}] for ${name} but received [${t.shape.join(',')}]`);
  }
  return t;
}

export function expectRank(op: string, name: string, t: TensorInfo | undefined, rank: number): TensorInfo {
  if (t === undefined) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${op}: missing input ${name}`);
  if (t.shape.length !== rank) {
    throw new DeepSentryError('DS_SHAPE_MISMATCH', `${op}: expected rank ${rank} for ${name} but received shape [${t.shape.join(',')}]`);
  }
  return t;
}

export function checkLengths(op: string, lengths: Int32Array, T: number): void {
  for (let b = 0; b < lengths.length; b++) {
    if (!(lengths[b] >= 0 && lengths[b] <= T)) {
      throw new DeepSentryError('DS_OUT_OF_RANGE', `${op}: lengths[${b}] = ${lengths[b]} is outside [0, ${T}] (the number of steps)`);
    }
  }
}

/**
 * Native forward passes run with training=true return a workspace that their backward needs. It is kept
 * out of the tensor graph (tfjs would otherwise allocate a zero gradient of its size on every backward),
 * keyed by the dataId of the forward's `y` output, which the gradient saves: it lives as long as y does.
 */
export const lstmWorkspaces = new WeakMap<object, Float32Array>();

/**
 * Workspaces whose `y` was disposed, by the shape of the forward that made them (at most MAX_SPARE_WORKSPACES
 * each), for the next training forward of that shape to write into (binding.ts TrainingInto) instead of
 * allocating its megabytes again: a training loop disposes each step's tensors, so from its second step on it
 * allocates no workspace (nor the page faults and garbage-collector pressure that come with one). A workspace
 * never leaves the kernels: once its y is disposed, nothing can reach it but this list.
 */
const spareWorkspaces = new Map<string, Float32Array[]>();
const workspaceShapes = new WeakMap<Float32Array, string>();
const MAX_SPARE_WORKSPACES = 2;

/** A spare workspace for a training forward of `shape` (a key naming its kind and dimensions), if one is left. */
export function spareWorkspace(shape: string): Float32Array | undefined {
  return spareWorkspaces.get(shape)?.pop();
}

/** Keeps a training forward's workspace for the backward of its output `y` (lstmWorkspaces). */
export function keepWorkspace(y: TensorInfo, workspace: Float32Array, shape: string): void {
  lstmWorkspaces.set(y.dataId, workspace);
  workspaceShapes.set(workspace, shape);
}

/** The data `dataId` was released (the backend's disposeData): its workspace, if any, becomes a spare. */
export function releaseWorkspace(dataId: object): void {
  const ws = lstmWorkspaces.get(dataId);
  if (!ws) return;
  lstmWorkspaces.delete(dataId);
  const shape = workspaceShapes.get(ws);
  if (shape === undefined) return;
  const spares = spareWorkspaces.get(shape) ?? [];
  if (spares.length < MAX_SPARE_WORKSPACES) spares.push(ws);
  spareWorkspaces.set(shape, spares);
}
