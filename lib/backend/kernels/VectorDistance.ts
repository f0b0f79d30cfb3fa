/**
 * VectorDistance: row-wise distance between a [N,D] and b [N,D] → [N] (attrs.metric: squared, euclidean,
 * cosine; definitions in shared.ts `distance`), and its gradient kernel (inputs a, b, dy → da, db). Both
 * backends run the same TypeScript (O(N·D)).
 */
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../../errors';
import { DISTANCE_METRICS, VectorDistance, VectorDistanceAttrs, VectorDistanceGrad } from '../op_names';
import { vectorDistanceGradImpl, vectorDistanceImpl } from '../shared';
import { NATIVE_BACKEND_NAME, expectRank, expectShape, f32, output } from './kernel_util';

function metricOf(op: string, attrs: unknown) {
  const m = (attrs as VectorDistanceAttrs).metric;
  if (!DISTANCE_METRICS.includes(m)) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `${op}: expected one of ${DISTANCE_METRICS.join(', ')} for metric but received ${String(m)}`);
  }
  return m;
}

const forward: KernelFunc = ({ inputs, attrs, backend }) => {
  const op = VectorDistance;
  const a = expectRank(op, 'a', inputs.a, 2);
  const [N, D] = a.shape;
  const b = expectShape(op, 'b', inputs.b, [N, D]);
  return output(backend, [N], vectorDistanceImpl(f32(backend, a, op, 'a'), f32(backend, b, op, 'b'), N, D, metricOf(op, attrs)));
};

const backward: KernelFunc = ({ inputs, attrs, backend }) => {
  const op = VectorDistanceGrad;
  const a = expectRank(op, 'a', inputs.a, 2);
  const [N, D] = a.shape;
  const b = expectShape(op, 'b', inputs.b, [N, D]);
  const dy = expectShape(op, 'dy', inputs.dy, [N]);
  const g = vectorDistanceGradImpl(f32(backend, a, op, 'a'), f32(backend, b, op, 'b'), f32(backend, dy, op, 'dy'), N, D, metricOf(op, attrs));
  return [output(backend, [N, D], g.da), output(backend, [N, D], g.db)];
};

export const vectorDistanceConfigs: KernelConfig[] = ['cpu', NATIVE_BACKEND_NAME].flatMap((backendName) => [
  { kernelName: VectorDistance, backendName, kernelFunc: forward },
  { kernelName: VectorDistanceGrad, backendName, kernelFunc: backward },
]);
