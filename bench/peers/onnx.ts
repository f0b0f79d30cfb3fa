/**
 * The onnxruntime peer: W1 (BiLSTM → Dense → per-window MSE) and the W2 encoder as ONNX graphs, run by
 * onnxruntime-node on its CPU execution provider. Forward only: onnxruntime-node has no training API.
 *
 * The graphs are written here, from the same seeded parameters as every other implementation
 * (bench/workloads.ts), so the agreement check compares them with native like any peer; no exporter
 * (torch, tf2onnx) is needed. The ONNX file is the protobuf `ModelProto` (onnx/onnx.proto, IR version 8,
 * opset 14), encoded below with the handful of fields these graphs use.
 *
 * onnxruntime-node is not a dependency of the project (its install script downloads GPU binaries, and
 * `npm ci` must not need it): it is found in $DEEPSENTRY_PEERS_DIR/node_modules, then in the default peers
 * folder (~/.cache/deepsentry-peers), then wherever Node resolves it from the project. When none has it the
 * peer is skipped with that reason (`onnxSkipReason`).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { LstmWeights } from '../../lib/backend/binding';
import { DeepSentryError } from '../../lib/errors';
import type { W1Batch, W1Params, W1Shape, W2Batch, W2Params, W2Shape } from '../workloads';

// ---- a minimal protobuf writer (wire types 0 varint, 2 length-delimited, 5 fixed32) -----------------

class Proto {
  private readonly parts: Buffer[] = [];

  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  private varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    const bytes: number[] = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      bytes.push(b);
    } while (x !== 0n);
    this.parts.push(Buffer.from(bytes));
  }

  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(b.length);
    this.parts.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }

  message(field: number, m: Proto): this {
    return this.bytes(field, m.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** onnx.proto TensorProto.DataType */
const FLOAT = 1;
const INT32 = 6;
const INT64 = 7;

type Attr = { name: string; int?: number; ints?: number[]; string?: string };

function attribute(a: Attr): Proto {
  // AttributeProto: name 1, i 3, s 4, ints 8, type 20 (INT 2, STRING 3, INTS 7)
  const p = new Proto().string(1, a.name);
  if (a.int !== undefined) return p.int(3, a.int).int(20, 2);
  if (a.string !== undefined) return p.string(4, a.string).int(20, 3);
  for (const v of a.ints ?? []) p.int(8, v);
  return p.int(20, 7);
}

function node(op: string, inputs: string[], outputs: string[], attrs: Attr[] = []): Proto {
  // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5
  const p = new Proto();
  for (const i of inputs) p.string(1, i);
  for (const o of outputs) p.string(2, o);
  p.string(3, `${op}_${outputs.find((o) => o !== '')}`).string(4, op);
  for (const a of attrs) p.message(5, attribute(a));
  return p;
}

function initializer(name: string, dims: number[], data: Float32Array | BigInt64Array): Proto {
  // TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian, as typed arrays are on x86/ARM)
  const p = new Proto();
  for (const d of dims) p.int(1, d);
  return p.int(2, data instanceof Float32Array ? FLOAT : INT64).string(8, name).bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** ValueInfoProto of a graph input or output; a string dimension is symbolic (the batch). */
function valueInfo(name: string, elemType: number, dims: Array<number | string>): Proto {
  const shape = new Proto();
  for (const d of dims) shape.message(1, typeof d === 'number' ? new Proto().int(1, d) : new Proto().string(2, d));
  const tensorType = new Proto().int(1, elemType).message(2, shape);
  return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
}

interface Graph {
  nodes: Proto[];
  initializers: Proto[];
  inputs: Proto[];
  outputs: Proto[];
}

function model(name: string, g: Graph): Buffer {
  // GraphProto: node 1, name 2, initializer 5, input 11, output 12
  const graph = new Proto();
  for (const n of g.nodes) graph.message(1, n);
  graph.string(2, name);
  for (const t of g.initializers) graph.message(5, t);
  for (const v of g.inputs) graph.message(11, v);
  for (const v of g.outputs) graph.message(12, v);
  // ModelProto: ir_version 1, producer_name 2, graph 7, opset_import 8 (domain "" = ai.onnx, version 2)
  return new Proto().int(1, 8).string(2, 'deepsentry-bench').message(7, graph).message(8, new Proto().string(1, '').int(2, 14)).finish();
}

// ---- the workloads as graphs ------------------------------------------------------------------------

/**
 * One direction's weights in ONNX LSTM layout, appended at `dir`: W [4H, I], R [4H, H], B [8H] (input bias,
 * then recurrent bias = 0), gates in ONNX order i, o, f, c; the project's LstmWeights are Keras-style
 * kernel [I, 4H] in order i, f, c, o.
 */
function onnxLstmWeights(w: LstmWeights, input: number, hidden: number, W: Float32Array, R: Float32Array, B: Float32Array, dir: number): void {
  const H = hidden;
  const kerasGate = [0, 3, 1, 2]; // ONNX gate g is Keras gate kerasGate[g]
  for (let g = 0; g < 4; g++) {
    const kg = kerasGate[g];
    for (let h = 0; h < H; h++) {
      const row = dir * 4 * H + g * H + h;
      const col = kg * H + h;
      for (let i = 0; i < input; i++) W[row * input + i] = w.kernel[i * 4 * H + col];
      for (let j = 0; j < H; j++) R[row * H + j] = w.recurrentKernel[j * 4 * H + col];
      B[dir * 8 * H + g * H + h] = w.bias[col];
    }
  }
}

/** W1: x [B, T, I], target [B, out] → pred [B, out], scores [B] (per-window MSE), batch dimension symbolic. */
export function w1OnnxModel(s: W1Shape, p: W1Params): Buffer {
  const { input: I, hidden: H, out: N } = s;
  const W = new Float32Array(2 * 4 * H * I);
  const R = new Float32Array(2 * 4 * H * H);
  const B = new Float32Array(2 * 8 * H);
  onnxLstmWeights(p.forward, I, H, W, R, B, 0);
  onnxLstmWeights(p.backward, I, H, W, R, B, 1);
  return model('w1', {
    nodes: [
      node('Transpose', ['x'], ['x_tbi'], [{ name: 'perm', ints: [1, 0, 2] }]),
      // Y_h [2, B, H]: the final state of each direction (the backward one's after reading step 0)
      node('LSTM', ['x_tbi', 'W', 'R', 'B'], ['', 'h_n'], [{ name: 'hidden_size', int: H }, { name: 'direction', string: 'bidirectional' }]),
      node('Transpose', ['h_n'], ['h_b2h'], [{ name: 'perm', ints: [1, 0, 2] }]),
      node('Reshape', ['h_b2h', 'summary_shape'], ['summary']), // [B, 2H] = [h_fw, h_bw]
      node('Gemm', ['summary', 'dense_kernel', 'dense_bias'], ['pred']),
      node('Sub', ['pred', 'target'], ['diff']),
      node('Mul', ['diff', 'diff'], ['sq']),
      node('ReduceMean', ['sq'], ['scores'], [{ name: 'axes', ints: [1] }, { name: 'keepdims', int: 0 }]),
    ],
    initializers: [
      initializer('W', [2, 4 * H, I], W),
      initializer('R', [2, 4 * H, H], R),
      initializer('B', [2, 8 * H], B),
      initializer('summary_shape', [2], BigInt64Array.from([0n, BigInt(2 * H)])),
      initializer('dense_kernel', [2 * H, N], p.dense.kernel),
      initializer('dense_bias', [N], p.dense.bias),
    ],
    inputs: [valueInfo('x', FLOAT, ['batch', s.steps, I]), valueInfo('target', FLOAT, ['batch', N])],
    outputs: [valueInfo('pred', FLOAT, ['batch', N]), valueInfo('scores', FLOAT, ['batch'])],
  });
}

/** The W2 encoder: token ids [B, T] (int32) → Embedding → LSTM → final h [B, H]. */
export function w2EncoderOnnxModel(s: W2Shape, p: W2Params): Buffer {
  const { embedding: E, hidden: H } = s;
  const W = new Float32Array(4 * H * E);
  const R = new Float32Array(4 * H * H);
  const B = new Float32Array(8 * H);
  onnxLstmWeights(p.encoder, E, H, W, R, B, 0);
  return model('w2_encoder', {
    nodes: [
      node('Gather', ['embedding', 'tokens'], ['emb']),
      node('Transpose', ['emb'], ['emb_tbe'], [{ name: 'perm', ints: [1, 0, 2] }]),
      node('LSTM', ['emb_tbe', 'W', 'R', 'B'], ['', 'h_n'], [{ name: 'hidden_size', int: H }]),
      node('Squeeze', ['h_n', 'axis0'], ['h']),
    ],
    initializers: [
      initializer('embedding', [s.vocab, E], p.embedding),
      initializer('W', [1, 4 * H, E], W),
      initializer('R', [1, 4 * H, H], R),
      initializer('B', [1, 8 * H], B),
      initializer('axis0', [1], BigInt64Array.from([0n])),
    ],
    inputs: [valueInfo('tokens', INT32, ['batch', s.steps])],
    outputs: [valueInfo('h', FLOAT, ['batch', H])],
  });
}

// ---- onnxruntime-node --------------------------------------------------------------------------------

/** The part of onnxruntime-node's API used here. */
interface OrtTensor {
  readonly data: unknown;
}
interface OrtSession {
  /** fetches: output name → a pre-allocated tensor the run writes into (onnxruntime-common's FetchesType) */
  run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
export interface OrtModule {
  Tensor: new (type: 'float32' | 'int32', data: Float32Array | Int32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(model: Uint8Array, options: object): Promise<OrtSession> };
  env: { versions?: Record<string, string> };
}

/** The default folder of the opt-in peers (scripts/install-bench-peers.sh installs there). */
export function defaultPeersDir(): string {
  return path.join(os.homedir(), '.cache', 'deepsentry-peers');
}

/**
 * Where onnxruntime-node would be loaded from: the candidates in order, and the first that exists (null
 * when none does). `resolveFromProject` is Node's own resolution from this folder.
 */
export function locateOnnxRuntime(
  env: NodeJS.ProcessEnv,
  exists: (p: string) => boolean = fs.existsSync,
  resolveFromProject: () => string | null = () => {
    try {
      return path.dirname(require.resolve('onnxruntime-node/package.json'));
    } catch {
      return null;
    }
  },
): { tried: string[]; found: string | null } {
  const tried: string[] = [];
  const dirs = env.DEEPSENTRY_PEERS_DIR ? [env.DEEPSENTRY_PEERS_DIR] : [defaultPeersDir()];
  for (const d of dirs) {
    const p = path.join(d, 'node_modules', 'onnxruntime-node');
    tried.push(p);
    if (exists(path.join(p, 'package.json'))) return { tried, found: p };
  }
  tried.push('onnxruntime-node resolved from the project');
  return { tried, found: resolveFromProject() };
}

let ortModule: OrtModule | null = null;

/** Loads onnxruntime-node, or returns why it cannot (the peer is then skipped with that text). */
export function loadOnnxRuntime(env: NodeJS.ProcessEnv = process.env): { ort: OrtModule; from: string } | { skip: string } {
  const { tried, found } = locateOnnxRuntime(env);
  if (found === null) {
    return {
      skip: `onnxruntime-node is not installed (looked in: ${tried.join('; ')}); install it with scripts/install-bench-peers.sh or set DEEPSENTRY_PEERS_DIR to a folder whose node_modules has it`,
    };
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ortModule ??= require(found) as OrtModule;
    return { ort: ortModule, from: found };
  } catch (err) {
    return { skip: `onnxruntime-node at ${found} does not load: ${(err as Error).message}` };
  }
}

function sessionOptions(threads: number): object {
  return { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', executionProviders: ['cpu'] };
}

function floatOutput(t: OrtTensor | undefined, what: string): Float32Array {
  if (!t || !(t.data instanceof Float32Array)) throw new DeepSentryError('DS_UNSUPPORTED', `onnxruntime returned no float32 ${what}`);
  return t.data;
}

/** One onnxruntime session and the fixed inputs it is run on. */
class OrtRun {
  protected constructor(
    private readonly session: OrtSession,
    private readonly feeds: Record<string, OrtTensor>,
  ) {}

  protected run(fetches?: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>> {
    return fetches ? this.session.run(this.feeds, fetches) : this.session.run(this.feeds);
  }

  async dispose(): Promise<void> {
    await this.session.release?.();
  }
}

/** W1 forward (or L1 with batch 1) in one onnxruntime session. */
export class OrtW1 extends OrtRun {
  static async create(ort: OrtModule, s: W1Shape, p: W1Params, batch: W1Batch, threads: number): Promise<OrtW1> {
    const session = await ort.InferenceSession.create(w1OnnxModel(s, p), sessionOptions(threads));
    const out = { pred: new Float32Array(s.batch * s.out), scores: new Float32Array(s.batch) };
    const feeds = {
      x: new ort.Tensor('float32', batch.x, [s.batch, s.steps, s.input]),
      target: new ort.Tensor('float32', batch.target, [s.batch, s.out]),
    };
    const fetches = { pred: new ort.Tensor('float32', out.pred, [s.batch, s.out]), scores: new ort.Tensor('float32', out.scores, [s.batch]) };
    const m = new OrtW1(session, feeds, out, fetches);
    // onnxruntime-node writes a pre-allocated output in place (and returns another tensor object over it):
    // checked once here, so that forwardInto's timing holds no check
    out.pred.fill(NaN);
    out.scores.fill(NaN);
    const r = await m.run();
    await m.forwardInto();
    const fresh = [floatOutput(r.pred, 'pred'), floatOutput(r.scores, 'scores')];
    if (![out.pred, out.scores].every((o, i) => o.every((v, j) => v === fresh[i][j])))
      throw new DeepSentryError('DS_UNSUPPORTED', 'onnxruntime did not write its outputs into the pre-allocated tensors');
    return m;
  }

  private constructor(
    session: OrtSession,
    feeds: Record<string, OrtTensor>,
    /** forwardInto's outputs, and the pre-allocated output tensors over them */
    private readonly out: { pred: Float32Array; scores: Float32Array },
    private readonly fetches: Record<string, OrtTensor>,
  ) {
    super(session, feeds);
  }

  async forward(): Promise<{ pred: Float32Array; scores: Float32Array }> {
    const r = await this.run();
    return { pred: floatOutput(r.pred, 'pred'), scores: floatOutput(r.scores, 'scores') };
  }

  /** The same run with pre-allocated outputs (session.run's fetches): onnxruntime writes into this.out (checked by create). */
  async forwardInto(): Promise<{ pred: Float32Array; scores: Float32Array }> {
    await this.run(this.fetches);
    return this.out;
  }
}

/** The W2 encoder (batched encoding) in one onnxruntime session. */
export class OrtW2Encoder extends OrtRun {
  static async create(ort: OrtModule, s: W2Shape, p: W2Params, batch: W2Batch, threads: number): Promise<OrtW2Encoder> {
    const session = await ort.InferenceSession.create(w2EncoderOnnxModel(s, p), sessionOptions(threads));
    return new OrtW2Encoder(session, { tokens: new ort.Tensor('int32', batch.tokens, [s.batch, s.steps]) });
  }

  async encode(): Promise<Float32Array> {
    return floatOutput((await this.run()).h, 'h');
  }
}
