/**
 * Using DeepSentry's tfjs backend for your own tfjs-core model.
 *
 *   npx tsx examples/custom-model.ts [auto|native|cpu]
 *
 * A small sequence classifier — is the running sum of a noisy sequence positive at its (variable) end? — built
 * from plain tfjs-core ops plus DeepSentry's fused LSTM op, trained with tf.variableGrads and Adam. On the
 * `deepsentry` backend the LSTM (forward and backward) and every matMul run in the native kernels; every other
 * tfjs kernel runs tfjs-backend-cpu's code on the same tensor storage. On `cpu` the same program runs in
 * pure TypeScript. (In an installed package, import from 'deepsentry/dist/lib/backend'.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedLstm, useBackend } from '../lib/backend';
import { mulberry32 } from '../lib/backend/reference';

const choice = (process.argv[2] ?? 'auto') as 'auto' | 'native' | 'cpu';
const selection = useBackend(choice);
console.log(`backend: ${selection.backend} (tfjs '${tf.getBackend()}') — ${selection.reason}`);

const B = 64, T = 20, I = 1, H = 32;
const rand = mulberry32(1);

/** A batch: x [B,T,1], lengths [B], labels [B,1] = 1 when the sum of x over the valid steps is positive. */
function batch() {
  const x = new Float32Array(B * T);
  const lengths = new Int32Array(B);
  const y = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    lengths[b] = 5 + Math.floor(rand() * (T - 4));
    let s = 0;
    for (let t = 0; t < lengths[b]; t++) {
      x[b * T + t] = rand() * 2 - 1;
      s += x[b * T + t];
    }
    y[b] = s > 0 ? 1 : 0;
  }
  return { x: tf.tensor3d(x, [B, T, I]), lengths: tf.tensor1d(lengths, 'int32'), y: tf.tensor2d(y, [B, 1]) };
}

// Parameters: ordinary tfjs variables, seeded (Keras layout for the LSTM: kernel [I,4H], recurrent [H,4H]).
const init = (shape: number[], scale: number) => tf.variable(tf.randomUniform(shape, -scale, scale, 'float32', 7));
const lstm = {
  kernel: init([I, 4 * H], 0.5) as tf.Variable<tf.Rank.R2>,
  recurrentKernel: init([H, 4 * H], 0.2) as tf.Variable<tf.Rank.R2>,
  bias: tf.variable(tf.zeros([4 * H])) as tf.Variable<tf.Rank.R1>,
};
const dense = { w: init([H, 1], 0.3), b: tf.variable(tf.zeros([1])) };

function model(x: tf.Tensor3D, lengths: tf.Tensor1D): tf.Tensor2D {
  const { h } = fusedLstm(x, lstm, { lengths }); // final state after each sequence's last valid step
  return tf.add(tf.matMul(h, dense.w), dense.b) as tf.Tensor2D; // logits [B,1]
}

function loss(logits: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
  // Binary cross-entropy from logits, written with ops that have gradients on this backend.
  const p = tf.sigmoid(logits);
  const eps = 1e-6;
  return tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(tf.add(p, eps))), tf.mul(tf.sub(1, y), tf.log(tf.add(tf.sub(1, p), eps)))))) as tf.Scalar;
}

const optimizer = tf.train.adam(1e-2);
const t0 = Date.now();
for (let step = 1; step <= 150; step++) {
  const { x, lengths, y } = batch();
  const value = optimizer.minimize(() => loss(model(x, lengths), y), true) as tf.Scalar;
  if (step % 25 === 0) {
    const test = batch();
    const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.greater(model(test.x, test.lengths), 0), tf.cast(test.y, 'bool')), 'float32')).dataSync()[0]);
    console.log(`step ${step}: loss ${value.dataSync()[0].toFixed(4)}, held-out accuracy ${(acc * 100).toFixed(1)}%`);
    tf.dispose([test.x, test.lengths, test.y]);
  }
  tf.dispose([x, lengths, y, value]);
}
console.log(`150 steps in ${((Date.now() - t0) / 1000).toFixed(1)} s; tensors alive: ${tf.memory().numTensors}`);
