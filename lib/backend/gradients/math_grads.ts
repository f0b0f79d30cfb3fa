/**
 * Gradients of the standard tfjs kernels DeepSentry's models (and small user models on our backend) train
 * through. tfjs-core registers no gradients by itself and its register_all_gradients module is ESM that plain
 * node cannot load from compiled output (it imports without file extensions), so the few needed are written here, following
 * tfjs-core's own definitions. Kernels outside this list fail in backprop with tfjs' "Cannot compute gradient"
 * error naming the kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../../errors';
import { SegmentSumRows } from '../op_names';

/** Sums a broadcast gradient back to the shape of the input it came from. */
function unbroadcast(dy: Tensor, shape: number[]): Tensor {
  const axes = tf.broadcast_util.getReductionAxes(shape, dy.shape);
  const r = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(r, shape);
}

const binary = (
  kernelName: string,
  da: (dy: Tensor, a: Tensor, b: Tensor) => Tensor,
  db: (dy: Tensor, a: Tensor, b: Tensor) => Tensor,
): GradConfig => ({
  kernelName,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved) => {
    const [a, b] = saved;
    const g = dy as Tensor;
    return { a: () => unbroadcast(da(g, a, b), a.shape), b: () => unbroadcast(db(g, a, b), b.shape) };
  },
});

const unary = (kernelName: string, save: 'x' | 'y', dx: (dy: Tensor, v: Tensor) => Tensor): GradConfig => ({
  kernelName,
  ...(save === 'x' ? { inputsToSave: ['x'] } : { outputsToSave: [true] }),
  gradFunc: (dy, saved) => ({ x: () => dx(dy as Tensor, saved[0]) }),
});

/** dy of a reduction, reshaped to keepDims form and broadcast back to the input's shape. */
function expandReduced(dy: Tensor, x: Tensor, attrs: NamedAttrMap): Tensor {
  const axes = tf.util.parseAxisParam((attrs as unknown as { axis: number | number[] }).axis, x.shape);
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.ones(x.shape));
}

export const mathGradConfigs: GradConfig[] = [
  binary(tf.Add, (dy) => dy, (dy) => dy),
  binary(tf.Sub, (dy) => dy, (dy) => tf.neg(dy)),
  binary(tf.Multiply, (dy, _a, b) => tf.mul(dy, b), (dy, a) => tf.mul(dy, a)),
  binary(
    tf.RealDiv,
    (dy, _a, b) => tf.div(dy, b),
    (dy, a, b) => tf.neg(tf.div(tf.mul(dy, a), tf.square(b))),
  ),
  binary(
    tf.Maximum,
    (dy, a, b) => tf.mul(dy, tf.cast(tf.greaterEqual(a, b), 'float32')),
    (dy, a, b) => tf.mul(dy, tf.cast(tf.less(a, b), 'float32')),
  ),
  unary(tf.Neg, 'x', (dy) => tf.neg(dy)),
  unary(tf.Square, 'x', (dy, x) => tf.mul(dy, tf.mul(x, 2))),
  unary(tf.Sqrt, 'x', (dy, x) => tf.div(dy, tf.mul(tf.sqrt(x), 2))),
  unary(tf.Exp, 'y', (dy, y) => tf.mul(dy, y)),
  unary(tf.Log, 'x', (dy, x) => tf.div(dy, x)),
  unary(tf.Tanh, 'y', (dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)))),
  unary(tf.Sigmoid, 'y', (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  unary(tf.Relu, 'x', (dy, x) => tf.mul(dy, tf.step(x))),
  unary(tf.Abs, 'x', (dy, x) => tf.mul(dy, tf.sign(x))),
  {
    kernelName: tf.Sum,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => ({ x: () => expandReduced(dy as Tensor, saved[0], attrs) }),
  },
  {
    kernelName: tf.Mean,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const axes = tf.util.parseAxisParam((attrs as unknown as { axis: number | number[] }).axis, x.shape);
      const count = axes.reduce((n, a) => n * x.shape[a], 1);
      return { x: () => tf.div(expandReduced(dy as Tensor, x, attrs), count) };
    },
  },
  {
    kernelName: tf.Reshape,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.reshape(dy as Tensor, saved[0].shape) }),
  },
  {
    kernelName: tf.Cast,
    gradFunc: (dy) => ({ x: () => tf.clone(dy as Tensor) }),
  },
  {
    kernelName: tf.Identity,
    gradFunc: (dy) => ({ x: () => tf.cast(dy as Tensor, 'float32') }),
  },
  {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const g = dy as Tensor;
      if (a.rank !== b.rank) {
        throw new DeepSentryError('DS_UNSUPPORTED', `gradient of matMul with broadcast batch dimensions ([${a.shape}] x [${b.shape}]) is not implemented: reshape to rank 2 first`);
      }
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
      if (!transposeA && !transposeB) return { a: () => tf.matMul(g, b, false, true), b: () => tf.matMul(a, g, true, false) };
      if (!transposeA && transposeB) return { a: () => tf.matMul(g, b, false, false), b: () => tf.matMul(g, a, true, false) };
      if (transposeA && !transposeB) return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g, false, false) };
      return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
    },
  },
  {
    // Embedding lookups: gather along axis 0 (the only form the gradient supports).
    kernelName: tf.GatherV2,
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, saved, attrs) => {
      const [x, indices] = saved;
      const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
      const ax = tf.util.parseAxisParam(axis, x.shape)[0];
      if (ax !== 0 || (batchDims ?? 0) !== 0) {
        throw new DeepSentryError('DS_UNSUPPORTED', `gradient of gather is implemented for axis 0, batchDims 0 only (received axis ${ax}, batchDims ${batchDims})`);
      }
      return {
        x: () => {
          const flat = tf.reshape(indices, [indices.size]) as tf.Tensor1D;
          const inner = x.shape.slice(1).reduce((a, b) => a * b, 1);
          const rows = tf.reshape(dy as Tensor, [indices.size, inner]);
          const summed = tf.engine().runKernel(SegmentSumRows, { x: rows, indices: flat }, { numRows: x.shape[0] }) as Tensor;
          return tf.reshape(summed, x.shape);
        },
        indices: () => tf.zeros(indices.shape),
      };
    },
  },
  {
    kernelName: tf.Concat,
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const shapes = saved.map((t) => t.shape);
      const axis = tf.util.parseAxisParam((attrs as unknown as tf.ConcatAttrs).axis, saved[0].shape)[0];
      const sizes = shapes.map((s) => s[axis]);
      const parts = tf.split(dy as Tensor, sizes, axis);
      const out: Record<string, () => Tensor> = {};
      parts.forEach((p, i) => (out[i] = () => p));
      return out;
    },
  },
  {
    kernelName: tf.Slice,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const { begin, size } = attrs as unknown as tf.SliceAttrs;
      const [b, s] = tf.slice_util.parseSliceParams(x, begin, size);
      const pads: Array<[number, number]> = x.shape.map((d, i) => [b[i], d - b[i] - s[i]]);
      return { x: () => tf.pad(dy as Tensor, pads) };
    },
  },
];
