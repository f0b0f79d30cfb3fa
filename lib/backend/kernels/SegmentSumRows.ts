/**
 * SegmentSumRows: out[indices[i], :] += x[i, :] (x [N,D] float32, indices [N] int32, attrs.numRows) → [numRows, D].
 * The `cpu` kernel is one pass over x in TypeScript; the native one is the addon's scatterAddRows
 * (native/src/train_ops.h), the same sums in the same order.
 */
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../../errors';
import { SegmentSumRows, SegmentSumRowsAttrs } from '../op_names';
import { NATIVE_BACKEND_NAME, bindingOf, expectRank, expectShape, f32, i32, output } from './kernel_util';

function read(args: Parameters<KernelFunc>[0]) {
  const op = SegmentSumRows;
  const x = expectRank(op, 'x', args.inputs.x, 2);
  const [N, D] = x.shape;
  const indices = i32(args.backend, expectShape(op, 'indices', args.inputs.indices, [N]), op, 'indices');
  const numRows = (args.attrs as unknown as SegmentSumRowsAttrs).numRows;
  return { N, D, numRows, indices, x: f32(args.backend, x, op, 'x') };
}

const cpuKernel: KernelFunc = (args) => {
  const { N, D, numRows: rows, indices: idx, x: xv } = read(args);
  const out = new Float32Array(rows * D);
  for (let i = 0; i < N; i++) {
    const r = idx[i];
    if (!(r >= 0 && r < rows)) throw new DeepSentryError('DS_OUT_OF_RANGE', `${SegmentSumRows}: indices[${i}] = ${r} is outside [0, ${rows})`);
    const o = r * D;
    const s = i * D;
    for (let d = 0; d < D; d++) out[o + d] += xv[s + d];
  }
  return output(args.backend, [rows, D], out);
};

const nativeKernel: KernelFunc = (args) => {
  const { N, D, numRows, indices, x } = read(args);
  if (N === 0 || D === 0 || numRows === 0) return cpuKernel(args);  // the addon refuses empty dimensions
  return output(args.backend, [numRows, D], bindingOf(args.backend).scatterAddRows({ rows: N, cols: D, numRows, x, indices }));
};

export const segmentSumRowsConfigs: KernelConfig[] = [
  { kernelName: SegmentSumRows, backendName: 'cpu', kernelFunc: cpuKernel },
  { kernelName: SegmentSumRows, backendName: NATIVE_BACKEND_NAME, kernelFunc: nativeKernel },
];
