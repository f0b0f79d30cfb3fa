/**
 * SegmentSumRows: out[indices[i], :] += x[i, :] (x [N,D] float32, indices [N] int32, attrs.numRows) → [numRows, D].
 * One pass over x; both backends run this TypeScript (it is memory-bound and small).
 */
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../../errors';
import { SegmentSumRows, SegmentSumRowsAttrs } from '../op_names';
import { NATIVE_BACKEND_NAME, expectRank, expectShape, f32, i32, output } from './kernel_util';

const kernelFunc: KernelFunc = ({ inputs, attrs, backend }) => {
  const op = SegmentSumRows;
  const x = expectRank(op, 'x', inputs.x, 2);
  const [N, D] = x.shape;
  const idx = i32(backend, expectShape(op, 'indices', inputs.indices, [N]), op, 'indices');
  const rows = (attrs as unknown as SegmentSumRowsAttrs).numRows;
  const xv = f32(backend, x, op, 'x');
  const out = new Float32Array(rows * D);
  for (let i = 0; i < N; i++) {
    const r = idx[i];
    if (!(r >= 0 && r < rows)) throw new DeepSentryError('DS_OUT_OF_RANGE', `${op}: indices[${i}] = ${r} is outside [0, ${rows})`);
    const o = r * D;
    const s = i * D;
    for (let d = 0; d < D; d++) out[o + d] += xv[s + d];
  }
  return output(backend, [rows, D], out);
};

export const segmentSumRowsConfigs: KernelConfig[] = ['cpu', NATIVE_BACKEND_NAME].map((backendName) => ({ kernelName: SegmentSumRows, backendName, kernelFunc }));
