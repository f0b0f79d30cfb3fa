/**
 * A typed view of the native addon (native/src/addon.cpp). This is the contract between the C++ code and
 * the TypeScript layer: every function checks its arguments natively and throws a DeepSentryError (code
 * DS_INVALID_ARGUMENT / DS_SHAPE_MISMATCH / DS_OUT_OF_RANGE / DS_UNSUPPORTED) naming the argument; none can
 * crash the process whatever it is passed.
 *
 * Layout (see native/src/lstm.h): x [B,T,I] batch-major; kernel [I,4H], recurrentKernel [H,4H], bias [4H],
 * gate order i, f, c, o (Keras / tfjs-layers). Typed arrays go in without copies in the sync functions;
 * results are new Float32Arrays allocated by the addon. The *Async variants run the same work on the libuv
 * pool on copies of every array they are given, taken during the call: detaching (transferring), resizing or
 * writing an argument afterwards cannot reach the job, which resolves with the result the sync function
 * would have returned at the call. adamUpdateAsync writes weights, m and v back when it completes, all three
 * — or, if one of them was detached or resized meanwhile, none: it rejects with DS_INVALID_ARGUMENT.
 */

export type SimdLevel = 'baseline' | 'avx2' | 'avx512';

/**
 * The precision tier of the matrix products (native/src/lstm.h): `fp32` everywhere (the default), or `bf16`:
 * the LSTM/BiLSTM forward and encode products and matMul take bfloat16 operands (rounded to nearest even) and
 * accumulate in float32; gates, cell state, softmax and every other operation stay float32, and the LSTM
 * backward is float32. Process-wide, like the SIMD level.
 */
export type Precision = 'fp32' | 'bf16';

export interface NativeCapabilities {
  /** addon version (package.json version at build time) */
  version: string;
  /** the SIMD level the kernels use now */
  simd: SimdLevel;
  /** levels compiled in and supported by this CPU, lowest first */
  simdSupported: SimdLevel[];
  /** worker threads of the kernel thread pool */
  threads: number;
  /** the precision tier the products use now (setPrecision) */
  precision: Precision;
  /** the bf16 kernels at the current SIMD level: AVX512-BF16, or the portable emulation (same numbers, slower) */
  bf16Kernels: 'avx512bf16' | 'portable';
  /** what computes the bf16 products, in words (e.g. "AVX512-BF16 (vcvtne2ps2bf16, vdpbf16ps)") */
  bf16Instructions: string;
  /** whether this CPU has AVX512-BF16 (and the addon has the kernels for it) */
  bf16Hardware: boolean;
  /** whether CUDA kernels were compiled in */
  cudaCompiled: boolean;
  /** visible CUDA devices (0 when none or not compiled) */
  cudaDeviceCount: number;
  /** why CUDA cannot be used, or null when it can */
  cudaError: string | null;
  cudaRuntimeVersion: number | null;
  cudaDriverVersion: number | null;
}

export interface LstmWeights {
  kernel: Float32Array; // [I, 4H]
  recurrentKernel: Float32Array; // [H, 4H]
  bias: Float32Array; // [4H]
  /**
   * the caller promises that kernel and recurrentKernel never change in place (tfjs tensor storage, a loaded
   * model): at precision bf16 their rounded copies are then kept on the arrays and reused by later calls instead
   * of being rounded again on every call (same results). Default false.
   */
  frozen?: boolean;
}

export interface LstmDims {
  batch: number;
  steps: number;
  inputSize: number;
  hiddenSize: number;
}

/**
 * What one LSTM direction reads: input, weights, initial state, lengths, direction. Backward is given the same
 * inputs again as its forward was (the addon checks both through one helper), so both extend this.
 */
export interface LstmInputs extends LstmDims {
  x: Float32Array; // [B, T, I]
  weights: LstmWeights;
  h0?: Float32Array; // [B, H], default zeros
  c0?: Float32Array; // [B, H], default zeros
  lengths?: Int32Array; // [B], each in [0, T]; default all T
  reverse?: boolean;
}

/**
 * Caller-provided output arrays (`into`): a training loop may hand back the arrays an earlier call returned (or
 * any of the right lengths); the call overwrites them and returns them as the result's fields instead of new
 * arrays — no allocation, page faults or zero-filling per step. Each must share memory with no other array of
 * the call (DS_INVALID_ARGUMENT names the two).
 */
export interface TrainingInto {
  /** the training workspace's array */
  workspace?: Float32Array;
  /** y's array */
  y?: Float32Array;
}

export interface LstmForwardArgs extends LstmInputs {
  /** keep what backward needs (the workspace); default false */
  training?: boolean;
  /** with training: true only */
  into?: TrainingInto;
}

export interface LstmForwardResult {
  y: Float32Array; // [B, T, H]
  h: Float32Array; // [B, H] final hidden state
  c: Float32Array; // [B, H] final cell state
  /** opaque; present when training: pass it to lstmBackward unchanged */
  workspace?: Float32Array;
}

export interface LstmBackwardArgs extends LstmInputs {
  y: Float32Array; // from forward
  workspace: Float32Array; // from forward (training: true)
  dy?: Float32Array; // [B, T, H]
  dh?: Float32Array; // [B, H] gradient of the final h
  dc?: Float32Array; // [B, H] gradient of the final c
  /**
   * false: the weight gradients only — no dx, dh0, dc0 (a layer whose input is data: skips the product
   * dx = dG·kernelᵀ and the last step's dh product). Default true.
   */
  inputGradients?: boolean;
  /** arrays to write the weight gradients into (TrainingInto says how), each optional */
  into?: Partial<LstmWeightGradients>;
}

/** The gradients of one direction's weights (LstmWeights' shapes). */
export interface LstmWeightGradients {
  dKernel: Float32Array; // [I, 4H]
  dRecurrentKernel: Float32Array; // [H, 4H]
  dBias: Float32Array; // [4H]
}

export interface LstmGradients extends LstmWeightGradients {
  dx: Float32Array; // [B, T, I]
  dh0: Float32Array; // [B, H]
  dc0: Float32Array; // [B, H]
}

/** What a bidirectional LSTM layer reads (both directions over one x); its backward is given them again. */
export interface BiLstmInputs extends LstmDims {
  x: Float32Array; // [B, T, I]
  forward: LstmWeights;
  backward: LstmWeights;
  h0Fw?: Float32Array; // [B, H] each, default zeros
  c0Fw?: Float32Array;
  h0Bw?: Float32Array;
  c0Bw?: Float32Array;
  lengths?: Int32Array; // [B], each in [0, T]; default all T
}

export interface BiLstmForwardArgs extends BiLstmInputs {
  /** keep what backward needs (the workspace); default false */
  training?: boolean;
  /** with training: true only */
  into?: TrainingInto;
}

export interface BiLstmForwardResult {
  y: Float32Array; // [B, T, 2H]: forward direction in [..., 0:H], backward in [..., H:2H]
  hFw: Float32Array;
  cFw: Float32Array;
  hBw: Float32Array;
  cBw: Float32Array;
  workspace?: Float32Array;
}

export interface BiLstmBackwardArgs extends BiLstmInputs {
  y: Float32Array; // [B, T, 2H] from forward
  workspace: Float32Array;
  dy?: Float32Array; // [B, T, 2H]
  dhFw?: Float32Array;
  dcFw?: Float32Array;
  dhBw?: Float32Array;
  dcBw?: Float32Array;
  /** as LstmBackwardArgs.inputGradients: false returns the weight gradients only; default true */
  inputGradients?: boolean;
  /** arrays to write each direction's weight gradients into (TrainingInto says how), each optional */
  into?: { forward?: Partial<LstmWeightGradients>; backward?: Partial<LstmWeightGradients> };
}

/** What bilstmBackward returns with inputGradients: false. */
export interface BiLstmWeightGradients {
  forward: LstmWeightGradients;
  backward: LstmWeightGradients;
}

export interface BiLstmGradients extends BiLstmWeightGradients {
  dx: Float32Array; // [B, T, I], both directions summed
  dh0Fw: Float32Array;
  dc0Fw: Float32Array;
  dh0Bw: Float32Array;
  dc0Bw: Float32Array;
}

export interface LstmEncodeArgs extends LstmDims {
  /** [B, T, I]; or give tokens + embedding */
  x?: Float32Array;
  tokens?: Int32Array; // [B, T]
  embedding?: Float32Array; // [vocabSize, I]
  vocabSize?: number;
  weights: LstmWeights;
  /** weights of the reverse direction: makes the encoder bidirectional, outputs [B, 2H] */
  backwardWeights?: LstmWeights;
  lengths?: Int32Array;
  reverse?: boolean; // only without backwardWeights
}

export interface LstmEncodeResult {
  h: Float32Array; // [B, H] or [B, 2H] (forward then backward)
  c: Float32Array; // same shape
}

export interface MatMulArgs {
  a: Float32Array; // [batchA, M, K] (or [batchA, K, M] when transposeA)
  b: Float32Array; // [batchB, K, N] (or [batchB, N, K] when transposeB)
  m: number;
  k: number;
  n: number;
  /** batch of a and of b: equal, or one of them 1 (broadcast); default 1 */
  batchA?: number;
  batchB?: number;
  transposeA?: boolean;
  transposeB?: boolean;
}

/**
 * Dense layer + sparse softmax cross-entropy (native/src/train_ops.h): logits = x·kernel + bias, never
 * returned (they exist one block of rows at a time), loss[r] = w[r]·(logsumexp(logits[r]) − logits[r, labels[r]]).
 * With `gradient`, also the gradient of Σ_r dLoss[r]·loss[r] with respect to x, kernel and bias.
 */
export interface DenseSoftmaxXentArgs {
  rows: number;
  inSize: number;
  classes: number;
  x: Float32Array; // [rows, inSize]
  kernel: Float32Array; // [inSize, classes]
  bias: Float32Array; // [classes]
  labels: Int32Array; // [rows], each in [0, classes)
  /** per-row loss weight (0 masks a row); default 1 */
  weights?: Float32Array;
  /** compute dx, dKernel, dBias; default false */
  gradient?: boolean;
  /** the gradient reaching each row's loss (only with gradient); default 1 */
  dLoss?: Float32Array;
}

export interface DenseSoftmaxXentResult {
  loss: Float32Array; // [rows]
  /** present with gradient: true */
  dx?: Float32Array; // [rows, inSize]
  dKernel?: Float32Array; // [inSize, classes]
  dBias?: Float32Array; // [classes]
}

/**
 * Dense layer + mean squared error, the regression head of the anomaly detector: pred = x·kernel + bias,
 * scores[r] = Σ_j (pred[r, j] − target[r, j])² / outSize (in double from the float32 predictions, as a
 * TypeScript loop over Float32Arrays computes it). With `gradient`, also the gradient of the loss
 * mean_r scores[r] (the mean over all rows·outSize squared differences) with respect to x, kernel and bias.
 */
export interface DenseMseArgs {
  rows: number;
  inSize: number;
  outSize: number;
  x: Float32Array; // [rows, inSize]
  kernel: Float32Array; // [inSize, outSize]
  bias: Float32Array; // [outSize]
  target: Float32Array; // [rows, outSize]
  /** compute dx, dKernel, dBias; default false */
  gradient?: boolean;
}

export interface DenseMseResult {
  scores: Float32Array; // [rows]
  /** present with gradient: true */
  dx?: Float32Array; // [rows, inSize]
  dKernel?: Float32Array; // [inSize, outSize]
  dBias?: Float32Array; // [outSize]
}

/** Scatter-add of rows, the gradient of an embedding lookup: out[indices[i], :] += x[i, :] → [numRows, cols]. */
export interface ScatterAddRowsArgs {
  rows: number;
  cols: number;
  numRows: number;
  x: Float32Array; // [rows, cols]
  indices: Int32Array; // [rows], each in [0, numRows)
}

/**
 * One Adam step over one parameter array (native/src/adam.h), IN PLACE on weights, m and v (the optimiser's
 * state; the four arrays must not overlap). Per element, in double with m, v and w stored as float32 (as a
 * JavaScript loop over Float32Arrays computes it):
 *   g·gradScale → m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  w ← w − alpha·m / (√v·vScale + epsilon)
 * tfjs' AdamOptimizer at step t is alpha = lr/(1−β1^t), vScale = 1/√(1−β2^t); Kingma & Ba's efficient form is
 * alpha = lr·√(1−β2^t)/(1−β1^t), vScale = 1.
 */
export interface AdamUpdateArgs {
  size: number;
  weights: Float32Array; // [size], updated
  gradients: Float32Array; // [size]
  m: Float32Array; // [size], updated (first moment)
  v: Float32Array; // [size], updated (second moment)
  alpha: number;
  beta1: number;
  beta2: number;
  /** > 0 */
  epsilon: number;
  /** default 1 */
  vScale?: number;
  /** the gradient is multiplied by it first (global-norm clipping); default 1 */
  gradScale?: number;
}

/**
 * The detector's forward (native/src/binding_predict.cpp): a bidirectional LSTM whose final hidden states
 * [h_fw, h_bw] feed a Dense layer, and optionally the per-window mean squared error against a target, in one
 * call. The constructor checks and copies the weights (the object owns them: make a new one for new weights).
 */
export interface BiLstmDenseOptions {
  inputSize: number;
  hiddenSize: number;
  outputSize: number;
  forward: Omit<LstmWeights, 'frozen'>;
  backward: Omit<LstmWeights, 'frozen'>;
  dense: { kernel: Float32Array /* [2H, N] */; bias: Float32Array /* [N] */ };
}

export interface BiLstmDenseArgs {
  batch: number;
  steps: number;
  x: Float32Array; // [B, T, I]
  lengths?: Int32Array; // [B], each in [0, T]; default all T
  /** [B, N]: with it the call also returns the per-window MSE (scores) */
  target?: Float32Array;
  /** where to write the predictions [B, N] (returned); default a new array */
  pred?: Float32Array;
  /** where to write the scores [B] (only with target; returned); default a new array */
  scores?: Float32Array;
}

export interface BiLstmDenseResult {
  pred: Float32Array; // [B, N] = [h_fw, h_bw]·dense.kernel + dense.bias
  /** present with a target: scores[b] = mean over j of (pred[b, j] − target[b, j])², summed in double */
  scores?: Float32Array;
}

export interface BiLstmDense {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly outputSize: number;
  /** the same numbers as bilstmForward's hFw, hBw through matMul plus the bias (at either precision tier) */
  forward(args: BiLstmDenseArgs): BiLstmDenseResult;
  forwardAsync(args: BiLstmDenseArgs): Promise<BiLstmDenseResult>;
}

/** One parameter array of adamUpdateMany: the fields of AdamUpdateArgs that are per array. */
export type AdamTensorArgs = Pick<AdamUpdateArgs, 'size' | 'weights' | 'gradients' | 'm' | 'v'>;

/**
 * adamUpdate of many parameter arrays (a model's) with one step's settings, in one call: one job on the
 * thread pool for all of them. No two of all the arrays may share memory.
 */
export interface AdamUpdateManyArgs extends Omit<AdamUpdateArgs, keyof AdamTensorArgs> {
  params: AdamTensorArgs[];
}

export interface NativeBinding {
  capabilities(): NativeCapabilities;
  /** force a SIMD level (tests, benchmarks); throws DS_UNSUPPORTED when the CPU or build lacks it */
  setSimdLevel(level: SimdLevel): void;
  /** the precision tier of the products from now on; throws DS_INVALID_ARGUMENT for anything but 'fp32' | 'bf16' */
  setPrecision(precision: Precision): void;
  /** resize the kernel thread pool (1 … 256) */
  setThreads(n: number): void;
  /** hands the addon the class it throws (called once by the loader) */
  setErrorClass(cls: new (code: string, message: string) => Error): void;

  lstmForward(args: LstmForwardArgs): LstmForwardResult;
  lstmForwardAsync(args: LstmForwardArgs): Promise<LstmForwardResult>;
  lstmBackward(args: LstmBackwardArgs & { inputGradients: false }): LstmWeightGradients;
  lstmBackward(args: LstmBackwardArgs): LstmGradients;
  lstmBackwardAsync(args: LstmBackwardArgs & { inputGradients: false }): Promise<LstmWeightGradients>;
  lstmBackwardAsync(args: LstmBackwardArgs): Promise<LstmGradients>;
  bilstmForward(args: BiLstmForwardArgs): BiLstmForwardResult;
  bilstmForwardAsync(args: BiLstmForwardArgs): Promise<BiLstmForwardResult>;
  bilstmBackward(args: BiLstmBackwardArgs & { inputGradients: false }): BiLstmWeightGradients;
  bilstmBackward(args: BiLstmBackwardArgs): BiLstmGradients;
  bilstmBackwardAsync(args: BiLstmBackwardArgs & { inputGradients: false }): Promise<BiLstmWeightGradients>;
  bilstmBackwardAsync(args: BiLstmBackwardArgs): Promise<BiLstmGradients>;
  lstmEncode(args: LstmEncodeArgs): LstmEncodeResult;
  lstmEncodeAsync(args: LstmEncodeArgs): Promise<LstmEncodeResult>;
  /** [max(batchA,batchB), M, N] */
  matMul(args: MatMulArgs): Float32Array;
  matMulAsync(args: MatMulArgs): Promise<Float32Array>;
  denseSoftmaxXent(args: DenseSoftmaxXentArgs): DenseSoftmaxXentResult;
  denseSoftmaxXentAsync(args: DenseSoftmaxXentArgs): Promise<DenseSoftmaxXentResult>;
  denseMse(args: DenseMseArgs): DenseMseResult;
  denseMseAsync(args: DenseMseArgs): Promise<DenseMseResult>;
  /** [numRows, cols] */
  scatterAddRows(args: ScatterAddRowsArgs): Float32Array;
  scatterAddRowsAsync(args: ScatterAddRowsArgs): Promise<Float32Array>;
  /** returns args.weights (updated in place) */
  adamUpdate(args: AdamUpdateArgs): Float32Array;
  adamUpdateAsync(args: AdamUpdateArgs): Promise<Float32Array>;
  /** returns args.params (each weights, m and v updated in place) */
  adamUpdateMany(args: AdamUpdateManyArgs): AdamTensorArgs[];
  adamUpdateManyAsync(args: AdamUpdateManyArgs): Promise<AdamTensorArgs[]>;
  BiLstmDense: new (opts: BiLstmDenseOptions) => BiLstmDense;
}

// ---- CUDA (native/cuda; present only when capabilities().cudaCompiled) ------------------------------------

/** Which form the recurrent CUDA kernels take: one persistent cooperative kernel keeping the recurrent weights
 * in shared memory across steps, or one launch per step; `auto` picks persistent when it fits on the device. */
export type CudaLstmMode = 'auto' | 'persistent' | 'perStep';

export interface CudaLstmOptions extends LstmWeights {
  inputSize: number;
  hiddenSize: number;
  /** the reverse direction's weights: makes the layer bidirectional (forward/backward then take and return
   * the BiLstm* shapes, encode returns [B, 2H]) */
  backward?: LstmWeights;
  mode?: CudaLstmMode;
  /**
   * the tier of forward and encode (default fp32): `bf16` is the CPU bf16 tier on the device — the input and
   * recurrent kernels also kept as bf16 (rounded as the CPU tier rounds them), x and h rounded as they are read,
   * products accumulated in float32 in the CPU tier's order; backward stays float32 (native/cuda/README.md)
   */
  precision?: Precision;
}

type WithoutWeights<T> = Omit<T, 'weights' | 'forward' | 'backward' | 'inputSize' | 'hiddenSize'>;

/**
 * An LSTM layer (one or two directions) whose weights stay on the device between calls; scratch memory comes
 * from the addon's device memory pool. Same layout, lengths and reverse semantics as the CPU entry points.
 * The constructor throws DS_CUDA (with the runtime's reason) when no usable device exists; a failing CUDA call
 * throws DS_CUDA naming the call. The workspace is opaque and only valid for this layer's backward.
 */
export interface CudaLstm {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly bidirectional: boolean;
  /** whether the last recurrent pass ran as the persistent kernel */
  readonly lastPersistent: boolean;
  /** the tier forward and encode run at (CudaLstmOptions.precision, setPrecision) */
  readonly precision: Precision;
  forward(args: WithoutWeights<LstmForwardArgs>): LstmForwardResult;
  forward(args: WithoutWeights<BiLstmForwardArgs>): BiLstmForwardResult;
  backward(args: WithoutWeights<LstmBackwardArgs>): LstmGradients;
  backward(args: WithoutWeights<BiLstmBackwardArgs>): BiLstmGradients;
  encode(args: WithoutWeights<LstmEncodeArgs>): LstmEncodeResult;
  /** replaces the weights on the device (same shapes; `backward` exactly when bidirectional) */
  setWeights(w: LstmWeights & { backward?: LstmWeights }): void;
  /** the tier of the following forward and encode calls; throws DS_INVALID_ARGUMENT for anything but 'fp32' | 'bf16' */
  setPrecision(precision: Precision): void;
  /** frees the device weights; later calls throw */
  dispose(): void;
}

/** The CUDA additions to NativeBinding (native/cuda/cuda_binding.cpp). */
export interface CudaBinding {
  CudaLstm: new (opts: CudaLstmOptions) => CudaLstm;
  cudaPoolStats(): { bytesInUse: number; bytesCached: number; mallocs: number; reuses: number };
  /** frees the pool's cached (unused) device buffers */
  cudaPoolTrim(): void;
}
