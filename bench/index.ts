/**
 * `npm run bench` — the native kernels against tfjs (cpu and wasm backends) on the reference workloads, all
 * in one run. Prints items/s, GFLOP/s and native ÷ peer for every workload, checks first
 * that native and each peer compute the same function, and writes bench/results/<date>.json.
 *
 *   npm run bench                          # everything (~5 minutes on the 2-core machine)
 *   npm run bench -- --quick               # fewer samples: a smoke run (~1–2 minutes)
 *   npm run bench -- --filter w1,l1        # workloads by id or prefix: w1-forward w1-train l1 w2-encode w2-train logs
 *   npm run bench -- --peers wasm          # a subset of the peers (native-tfjs, wasm, cpu, layers-wasm, layers-cpu,
 *                                          # onnxruntime, torch) or none (default: all but layers-cpu)
 *   npm run bench -- --rounds 5            # rounds of native, onnxruntime and torch, interleaved (default 3)
 *   npm run bench -- --no-save             # do not write a results file
 *   DEEPSENTRY_THREADS=1 npm run bench     # the addon's thread pool size (default: the number of cores)
 *
 * native, onnxruntime and torch run interleaved: every round times each workload on each of them, in an order
 * rotated from round to round, and the medians pool the rounds' samples; the ratio to the best of those peers
 * is measured in the same run, on the same number of threads. onnxruntime (onnxruntime-node) and torch (python3
 * with PyTorch) are opt-in installs, never dependencies: a peer that is not installed is skipped with the reason
 * (bench/peers/onnx.ts, bench/peers/torch.ts say where they are looked for). The tfjs peers run after the
 * rounds, one after the other.
 *
 * Exit codes: 0 done (targets missed are reported, not failed), 1 a check or a workload failed, 2 bad options.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import type { NativeBinding } from '../lib/backend/binding';
import { describeNativeFailure, loadNative, nativeStatus } from '../lib/backend/native';
import { DeepSentryError } from '../lib/errors';
import { cudaAdapter, cudaSkipReason } from './cuda';
import type { W1Impl, W2Impl } from './impl';
import { machineInfo, type MachineInfo } from './machine';
import { NativeW1, NativeW2 } from './native';
import type { OrtW1, OrtW2Encoder } from './peers/onnx';
import {
  caseResult,
  footnotes,
  formatBestPeerTable,
  formatCase,
  formatTable,
  type AgreementResult,
  type CaseResult,
  type ImplId,
  type WorkloadDef,
  type WorkloadId,
} from './report';
import { median, timeFunction, type Timing, type TimingBudget } from './timing';
import {
  FLOP_FORMULAS,
  initW1Params,
  initW2Params,
  L1_REFERENCE,
  makeW1Batch,
  makeW2Batch,
  W1_REFERENCE,
  w1ForwardFlops,
  w1TrainFlops,
  W2_REFERENCE,
  w2EncodeFlops,
  w2TrainFlops,
  type NamedArrays,
  type W1Shape,
  type W2Shape,
} from './workloads';

type PeerId = Exclude<ImplId, 'native' | 'cuda'>;
/** everything that can be compared with the direct native calls, in run order */
const PEERS: PeerId[] = ['onnxruntime', 'torch', 'native-tfjs', 'tfjs-wasm', 'tfjs-cpu', 'layers-wasm', 'layers-cpu'];
/** the peers timed in the same rounds as native (out-of-tree installs, multi-threaded like native) */
const ROUND_PEERS: PeerId[] = ['onnxruntime', 'torch'];
/** what --peers accepts besides the ids themselves */
const PEER_ALIASES: Record<string, PeerId> = { ort: 'onnxruntime', 'onnxruntime-node': 'onnxruntime', pytorch: 'torch', wasm: 'tfjs-wasm', cpu: 'tfjs-cpu' };
/**
 * what runs without --peers: layers-cpu only when asked for (tfjs-layers on the cpu kernels is as slow as
 * tfjs-cpu and shows nothing new: the layers-vs-ops difference is measured on wasm); onnxruntime and torch
 * are skipped, with the reason, where they are not installed
 */
const DEFAULT_PEERS: PeerId[] = ['onnxruntime', 'torch', 'native-tfjs', 'tfjs-wasm', 'tfjs-cpu', 'layers-wasm'];
const DEFAULT_ROUNDS = 3;
const WORKLOAD_IDS: WorkloadId[] = ['w1-forward', 'w1-train', 'l1', 'w2-encode', 'w2-train'];
const LOGS_ID = 'logs';
/** the seeds of parameters and batches: every run, every implementation starts from the same numbers */
const SEED = { w1Params: 11, w1Batch: 12, w2Params: 21, w2Batch: 22 };

/** Agreement tolerances: outputs are O(0.1–1) in float32; gradients are compared relative to their largest entry. */
const TOL = { output: 1e-4, gradientRel: 1e-3, lossRel: 1e-4 };
/**
 * The bf16 tier against fp32 native: its contract is 1e-2 relative per output (test/unit/native-bf16.test.ts);
 * the predictions here are O(1), and a training step's loss and gradients move by about as much.
 */
const TOL_BF16 = { output: 2e-2, gradientRel: 5e-2, lossRel: 1e-2 };

/**
 * Time budgets: tfjs-cpu is 30–50× slower than wasm (a W2 training step takes ~25 s there), so it gets the
 * fewest samples; each sample of a slow workload is a single call.
 */
function budget(impl: ImplId, quick: boolean, rounds = 1): TimingBudget {
  if (impl === 'native' || impl === 'native-bf16' || impl === 'native-tfjs' || impl === 'cuda' || impl === 'onnxruntime' || impl === 'torch') {
    // the rounds share the budget of one sequential run: 10 samples / 3 s in all
    return quick ? { minSamples: 3, maxTime: 0.3 / rounds } : { minSamples: Math.ceil(10 / rounds), maxTime: 3 / rounds };
  }
  if (impl === 'tfjs-wasm' || impl === 'layers-wasm') return quick ? { minSamples: 2, maxTime: 0.2 } : { minSamples: 5, maxTime: 3 };
  return quick ? { minSamples: 1, maxTime: 0 } : { minSamples: 2, maxTime: 1 };
}

function shapeText(s: W1Shape | W2Shape): string {
  if ('input' in s) return `BiLSTM I=${s.input} H=${s.hidden}×2, T=${s.steps}, B=${s.batch}, Dense ${2 * s.hidden}→${s.out}, MSE`;
  return `V=${s.vocab} E=${s.embedding} H=${s.hidden} T=${s.steps} B=${s.batch}`;
}

const WORKLOADS: WorkloadDef[] = [
  { id: 'w1-forward', title: 'W1 detector forward', shape: shapeText(W1_REFERENCE), item: 'windows', itemsPerCall: W1_REFERENCE.batch, flopsPerCall: w1ForwardFlops(W1_REFERENCE), latency: false, target: 30 },
  { id: 'w1-train', title: 'W1 detector training step (Adam)', shape: shapeText(W1_REFERENCE), item: 'windows', itemsPerCall: W1_REFERENCE.batch, flopsPerCall: w1TrainFlops(W1_REFERENCE), latency: false, target: 80 },
  { id: 'l1', title: 'L1 W1 forward latency', shape: 'W1 with B=1', item: 'windows', itemsPerCall: 1, flopsPerCall: w1ForwardFlops(L1_REFERENCE), latency: true, target: 60 },
  { id: 'w2-encode', title: 'W2 encoder forward (batched encoding)', shape: `encoder only, ${shapeText(W2_REFERENCE)}`, item: 'sentences', itemsPerCall: W2_REFERENCE.batch, flopsPerCall: w2EncodeFlops(W2_REFERENCE), latency: false, target: 30 },
  { id: 'w2-train', title: 'W2 text autoencoder training step (Adam)', shape: `enc+dec LSTM, Dense ${W2_REFERENCE.hidden}→${W2_REFERENCE.vocab}, softmax CE, ${shapeText(W2_REFERENCE)}`, item: 'sentences', itemsPerCall: W2_REFERENCE.batch, flopsPerCall: w2TrainFlops(W2_REFERENCE), latency: false },
];

interface Options {
  quick: boolean;
  workloads: WorkloadId[];
  logs: boolean;
  peers: PeerId[];
  /** rounds of native and the round peers (onnxruntime, torch) */
  rounds: number;
  save: boolean;
  out: string;
}

function usageError(message: string): DeepSentryError {
  return new DeepSentryError('DS_INVALID_ARGUMENT', `${message}\nusage: npm run bench -- [--quick] [--filter ${[...WORKLOAD_IDS, LOGS_ID].join(',')}] [--peers ${PEERS.join(',')}|none] [--rounds N] [--out DIR] [--no-save]`);
}

function listValues(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
}

export function parseOptions(argv: string[]): Options {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        filter: { type: 'string', multiple: true },
        peers: { type: 'string', multiple: true },
        rounds: { type: 'string' },
        out: { type: 'string' },
        'no-save': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw usageError(`bench: ${(err as Error).message}`);
  }
  if (values.help) throw usageError('bench: help');
  const all = [...WORKLOAD_IDS, LOGS_ID];
  const filters = listValues(values.filter as string[] | undefined);
  const chosen = new Set<string>();
  for (const f of filters) {
    const hits = all.filter((id) => id === f || id.startsWith(f));
    if (hits.length === 0) throw usageError(`bench: --filter ${JSON.stringify(f)} matches no workload (workloads: ${all.join(', ')})`);
    hits.forEach((h) => chosen.add(h));
  }
  const pick = filters.length === 0 ? new Set(all) : chosen;
  const peerNames = listValues(values.peers as string[] | undefined);
  let peers: PeerId[] = DEFAULT_PEERS;
  if (peerNames.length > 0) {
    peers = [];
    for (const p of peerNames) {
      if (p === 'none') continue;
      const id = PEER_ALIASES[p] ?? (p as PeerId);
      if (!PEERS.includes(id)) throw usageError(`bench: --peers ${JSON.stringify(p)} is not a peer (peers: ${PEERS.join(', ')}, or wasm, cpu, ort, pytorch, none)`);
      if (!peers.includes(id)) peers.push(id);
    }
    peers = PEERS.filter((p) => peers.includes(p)); // fixed order
  }
  const quick = values.quick as boolean;
  let rounds = quick ? 1 : DEFAULT_ROUNDS;
  if (values.rounds !== undefined) {
    rounds = Number(values.rounds);
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw usageError(`bench: --rounds ${JSON.stringify(values.rounds)} is not a whole number of rounds from 1 to 100`);
  }
  return {
    quick,
    workloads: WORKLOAD_IDS.filter((id) => pick.has(id)),
    logs: pick.has(LOGS_ID),
    peers,
    rounds,
    save: !(values['no-save'] as boolean),
    out: path.resolve((values.out as string | undefined) ?? path.join(__dirname, 'results')),
  };
}

// ---- agreement ---------------------------------------------------------------------------------------

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** max over the compared parameters of max|Δ| / max|g_native|; the worst parameter's name */
function gradientDiff(reference: NamedArrays, peer: NamedArrays): { value: number; worst: string } {
  let value = 0;
  let worst = '';
  for (const [name, g] of peer) {
    const ref = reference.find(([n]) => n === name);
    if (!ref) return { value: Infinity, worst: `${name} (missing in native)` };
    let scale = 0;
    for (const v of ref[1]) scale = Math.max(scale, Math.abs(v));
    const d = maxAbsDiff(ref[1], g) / Math.max(scale, 1e-12);
    if (!(d <= value)) {
      value = d;
      worst = name;
    }
  }
  return { value, worst };
}

/** What the native implementation produced for a workload, before any timing; peers are compared to it. */
type Reference =
  | { kind: 'output'; what: string; data: Float32Array }
  | { kind: 'gradients'; loss: number; grads: NamedArrays };

function agree(workload: WorkloadId, impl: ImplId, what: string, value: number, tolerance: number): AgreementResult {
  return { workload, impl, what, value, tolerance, ok: value <= tolerance };
}

// ---- the run -----------------------------------------------------------------------------------------

interface Instances {
  w1?: W1Impl;
  l1?: W1Impl;
  w2?: W2Impl;
}

type Factory = {
  w1(s: W1Shape): W1Impl;
  w2(s: W2Shape): W2Impl;
  /** a note for the table when this implementation's variant differs */
  w2TrainNote?: string;
};

/**
 * One implementation as the harness drives it: its output on a workload once (the agreement check, and the
 * warm-up), then any number of timings. A workload it cannot run has a reason instead (reported, not failed).
 */
interface Runner {
  impl: ImplId;
  unsupported(id: WorkloadId): string | null;
  output(id: WorkloadId): Promise<Reference>;
  time(id: WorkloadId, budget: TimingBudget): Promise<Timing>;
  /** releases what only this workload used, once it is not timed any more */
  release(id: WorkloadId): Promise<void>;
  dispose(): Promise<void>;
  /** a note for the table when this implementation's W2 training differs */
  w2TrainNote?: string;
}

function outputWhat(id: 'w1-forward' | 'l1' | 'w2-encode'): string {
  if (id === 'w2-encode') return `encoder h [${W2_REFERENCE.batch},${W2_REFERENCE.hidden}]`;
  return `pred [${id === 'l1' ? 1 : W1_REFERENCE.batch},${W1_REFERENCE.out}]`;
}

/** A runner over the in-process W1Impl / W2Impl implementations (native, cuda, the tfjs peers). */
function factoryRunner(impl: ImplId, factory: Factory): Runner {
  const inst: Instances = {};
  const fns = new Map<WorkloadId, () => unknown>();
  return {
    impl,
    w2TrainNote: factory.w2TrainNote,
    unsupported: () => null,
    async output(id) {
      if (id === 'w1-forward' || id === 'l1') {
        const m = id === 'l1' ? (inst.l1 ??= factory.w1(L1_REFERENCE)) : (inst.w1 ??= factory.w1(W1_REFERENCE));
        // timed into the outputs it keeps where it can (W1Impl.forwardInto), as onnxruntime's run below
        const into = m.forwardInto?.bind(m);
        fns.set(id, into ?? (() => m.forward()));
        return { kind: 'output', what: outputWhat(id), data: m.forward().pred };
      }
      if (id === 'w1-train') {
        const m = (inst.w1 ??= factory.w1(W1_REFERENCE));
        fns.set(id, () => m.trainStep());
        return { kind: 'gradients', ...m.gradients() };
      }
      const m = (inst.w2 ??= factory.w2(W2_REFERENCE));
      if (id === 'w2-encode') {
        fns.set(id, () => m.encode());
        return { kind: 'output', what: outputWhat(id), data: m.encode() };
      }
      fns.set(id, () => m.trainStep());
      return { kind: 'gradients', ...m.gradients() };
    },
    time: (id, b) => timeFunction(`${id} ${impl}`, fns.get(id) as () => unknown, b),
    async release(id) {
      if (id === 'l1') {
        inst.l1?.dispose();
        inst.l1 = undefined;
      }
    },
    async dispose() {
      inst.w1?.dispose();
      inst.l1?.dispose();
      inst.w2?.dispose();
    },
  };
}

function nativeFactory(nb: NativeBinding): Factory {
  return {
    w1: (s) => new NativeW1(nb, s, initW1Params(s, SEED.w1Params), makeW1Batch(s, SEED.w1Batch)),
    w2: (s) => new NativeW2(nb, s, initW2Params(s, SEED.w2Params), makeW2Batch(s, SEED.w2Batch)),
  };
}

/** native-bf16: native's runner with the addon's products in bf16 (setPrecision) during its own calls only. */
function bf16Runner(nb: NativeBinding): Runner {
  const r = factoryRunner('native-bf16', nativeFactory(nb));
  const atBf16 = async <T>(f: () => Promise<T>): Promise<T> => {
    nb.setPrecision('bf16');
    try {
      return await f();
    } finally {
      nb.setPrecision('fp32');
    }
  };
  return { ...r, output: (id) => atBf16(() => r.output(id)), time: (id, b) => atBf16(() => r.time(id, b)) };
}

/** The onnxruntime peer (bench/peers/onnx.ts): the forward workloads; the reason instead when not installed. */
async function onnxRunner(threads: number): Promise<{ runner: Runner; info: object } | { skip: string }> {
  const onnx = await import('./peers/onnx');
  const loaded = onnx.loadOnnxRuntime();
  if ('skip' in loaded) return loaded;
  const { ort } = loaded;
  const w1 = new Map<'w1-forward' | 'l1', OrtW1>();
  let w2: OrtW2Encoder | undefined;
  const fns = new Map<WorkloadId, () => Promise<unknown>>();
  const runner: Runner = {
    impl: 'onnxruntime',
    unsupported: (id) => (id === 'w1-train' || id === 'w2-train' ? 'onnxruntime-node runs inference only (it has no training API)' : null),
    async output(id) {
      if (id === 'w1-forward' || id === 'l1') {
        const s = id === 'l1' ? L1_REFERENCE : W1_REFERENCE;
        const m = await onnx.OrtW1.create(ort, s, initW1Params(s, SEED.w1Params), makeW1Batch(s, SEED.w1Batch), threads);
        w1.set(id, m);
        fns.set(id, () => m.forwardInto()); // pre-allocated outputs, as native's forwardInto
        return { kind: 'output', what: outputWhat(id), data: (await m.forward()).pred };
      }
      if (id !== 'w2-encode') throw new DeepSentryError('DS_UNSUPPORTED', `onnxruntime: ${id} is not run`);
      const m = (w2 = await onnx.OrtW2Encoder.create(ort, W2_REFERENCE, initW2Params(W2_REFERENCE, SEED.w2Params), makeW2Batch(W2_REFERENCE, SEED.w2Batch), threads));
      fns.set(id, () => m.encode());
      return { kind: 'output', what: outputWhat(id), data: await m.encode() };
    },
    time: (id, b) => timeFunction(`${id} onnxruntime`, fns.get(id) as () => Promise<unknown>, b),
    async release(id) {
      if (id !== 'l1') return;
      await w1.get('l1')?.dispose();
      w1.delete('l1');
    },
    async dispose() {
      for (const m of w1.values()) await m.dispose();
      await w2?.dispose();
    },
  };
  return { runner, info: { package: 'onnxruntime-node', from: loaded.from, versions: ort.env.versions ?? {}, executionProvider: 'cpu', intraOpNumThreads: threads } };
}

/** The PyTorch peer (bench/peers/torch.ts): every workload, in a python3 child process. */
async function torchRunner(threads: number): Promise<{ runner: Runner; info: object } | { skip: string }> {
  const torch = await import('./peers/torch');
  const found = torch.findTorchPython(process.env);
  if ('skip' in found) return found;
  const started = await torch.TorchPeer.start(found.python, threads);
  const peer = started.peer;
  const loaded = new Set<string>();
  const load = async (model: 'w1' | 'l1' | 'w2') => {
    if (loaded.has(model)) return;
    if (model === 'w2') await peer.loadW2(W2_REFERENCE, initW2Params(W2_REFERENCE, SEED.w2Params), makeW2Batch(W2_REFERENCE, SEED.w2Batch));
    else {
      const s = model === 'l1' ? L1_REFERENCE : W1_REFERENCE;
      await peer.loadW1(model, s, initW1Params(s, SEED.w1Params), makeW1Batch(s, SEED.w1Batch));
    }
    loaded.add(model);
  };
  const runner: Runner = {
    impl: 'torch',
    unsupported: () => null,
    async output(id) {
      await load(id === 'l1' ? 'l1' : id.startsWith('w1') ? 'w1' : 'w2');
      if (id === 'w1-forward' || id === 'l1' || id === 'w2-encode') return { kind: 'output', what: outputWhat(id), data: await peer.output(id) };
      return { kind: 'gradients', ...(await peer.gradients(id)) };
    },
    time: (id, b) => peer.time(id, b),
    release: async () => undefined,
    dispose: () => peer.close(),
  };
  const ompWaitPolicy = torch.torchEnv(process.env).OMP_WAIT_POLICY;
  return { runner, info: { python: found.python, torch: started.torch, threads: started.threads, ompWaitPolicy, dtype: 'float32', optimizer: 'torch.optim.Adam (lr 1e-3, betas 0.9/0.999, eps 1e-7)' } };
}

async function peerFactory(peer: PeerId): Promise<{ factory: Factory; info: object }> {
  // loaded only when a peer runs: tfjs and the wasm binary cost a second or two to load
  const tfjs = await import('./peers/tfjs');
  const backend = peer.endsWith('-wasm') ? 'wasm' : peer.endsWith('-cpu') ? 'cpu' : 'deepsentry';
  const info = await tfjs.useTfjsBackend(backend, { benchmark: true });
  if (peer.startsWith('layers-')) {
    const layers = await import('./peers/layers');
    // the layers Embedding trains through tf.gather's gradient, UnsortedSegmentSum: wasm has none, and the cpu
    // kernels' takes ~2 min per lookup at this size (two per step), so this peer freezes the embedding on both
    const frozen = true;
    return {
      info: { ...info, layers: layers.tfjsLayersVersion },
      factory: {
        w1: (s) => new layers.LayersW1(s, initW1Params(s, SEED.w1Params), makeW1Batch(s, SEED.w1Batch)),
        w2: (s) => new layers.LayersW2(s, initW2Params(s, SEED.w2Params), makeW2Batch(s, SEED.w2Batch), frozen),
        w2TrainNote:
          backend === 'wasm'
            ? 'embedding frozen: tfjs-wasm has no UnsortedSegmentSum, so it cannot train an Embedding'
            : "embedding frozen: the Embedding layer's gradient (UnsortedSegmentSum) takes ~2 min per lookup on tfjs' cpu kernels at this size",
      },
    };
  }
  const lstm = backend === 'deepsentry' ? 'fused' : 'ops';
  const mode = backend === 'wasm' ? 'frozen' : 'onehot';
  return {
    info,
    factory: {
      w1: (s) => new tfjs.TfjsW1(s, initW1Params(s, SEED.w1Params), makeW1Batch(s, SEED.w1Batch), lstm),
      w2: (s) => new tfjs.TfjsW2(s, initW2Params(s, SEED.w2Params), makeW2Batch(s, SEED.w2Batch), mode, lstm),
      w2TrainNote:
        mode === 'frozen'
          ? 'embedding frozen: tfjs-wasm has no UnsortedSegmentSum, so it cannot train an Embedding'
          : "embedding trained as oneHot(ids)·E (same function): the gather gradient of tfjs' cpu kernels (UnsortedSegmentSum) takes ~2 min per lookup at this size, oneHot·E ~4 s",
    },
  };
}


/** Compares an implementation's output with native's reference; records and prints the agreement. */
function check(id: WorkloadId, impl: ImplId, ref: Reference | undefined, output: Reference, agreements: AgreementResult[]): void {
  const d = WORKLOADS.find((w) => w.id === id) as WorkloadDef;
  const tol = impl === 'native-bf16' ? TOL_BF16 : TOL;
  if (ref?.kind === 'output' && output.kind === 'output') {
    const a = agree(id, impl, `${ref.what} max |Δ| vs native`, maxAbsDiff(ref.data, output.data), tol.output);
    agreements.push(a);
    console.log(`  check ${impl} ${d.title}: ${a.what} = ${a.value.toExponential(2)} (tolerance ${a.tolerance}) ${a.ok ? 'ok' : 'DISAGREE'}`);
  } else if (ref?.kind === 'gradients' && output.kind === 'gradients') {
    const lossA = agree(id, impl, 'loss |Δ|/|loss| vs native', Math.abs(ref.loss - output.loss) / Math.abs(ref.loss), tol.lossRel);
    const g = gradientDiff(ref.grads, output.grads);
    const gradA = agree(id, impl, `gradients max |Δ|/max|g| vs native (worst: ${g.worst}; ${output.grads.length} of ${ref.grads.length} parameters)`, g.value, tol.gradientRel);
    agreements.push(lossA, gradA);
    for (const a of [lossA, gradA]) {
      console.log(`  check ${impl} ${d.title}: ${a.what} = ${a.value.toExponential(2)} (tolerance ${a.tolerance}) ${a.ok ? 'ok' : 'DISAGREE'}`);
    }
  } else {
    console.log(`  check ${impl} ${d.title}: not checked (no native reference)`);
  }
}

/** Its output on a workload: native's becomes the reference, any other's is checked against it. */
async function outputAndCheck(r: Runner, id: WorkloadId, references: Map<WorkloadId, Reference>, agreements: AgreementResult[]): Promise<void> {
  const output = await r.output(id);
  if (r.impl === 'native') references.set(id, output);
  else check(id, r.impl, references.get(id), output, agreements);
}

function noteFor(r: Runner, id: WorkloadId): string | undefined {
  return id === 'w2-train' ? r.w2TrainNote : undefined;
}

/** One implementation over the chosen workloads, one after the other (the tfjs peers, cuda). */
async function runSequential(r: Runner, opts: Options, references: Map<WorkloadId, Reference>, results: CaseResult[], agreements: AgreementResult[]): Promise<void> {
  const b = budget(r.impl, opts.quick);
  try {
    for (const id of opts.workloads) {
      const d = WORKLOADS.find((w) => w.id === id) as WorkloadDef;
      await outputAndCheck(r, id, references, agreements);
      const res = caseResult(d, r.impl, await r.time(id, b), noteFor(r, id));
      results.push(res);
      console.log(`  ${d.title.padEnd(42)} ${r.impl.padEnd(11)} ${formatCase(d, res)}`);
      await r.release(id);
    }
  } finally {
    await r.dispose();
  }
}

/** Pools the rounds' timings of one case: every sample, their median, and each round's median. */
export function poolRounds(timings: Timing[]): Timing & { roundMedians: number[] } {
  const samples = timings.flatMap((t) => t.samples);
  return {
    median: median(samples),
    samples,
    rme: median(timings.map((t) => t.rme)),
    callsPerSample: timings[timings.length - 1]?.callsPerSample ?? 0,
    calls: timings.reduce((a, t) => a + t.calls, 0),
    roundMedians: timings.map((t) => t.median),
  };
}

/** The order of the runners in a round: rotated by one per round and per workload, so none is always first. */
export function rotation<T>(items: T[], shift: number): T[] {
  const k = items.length === 0 ? 0 : shift % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/**
 * native and the round peers in the same rounds: first every output once (native's is the reference), then
 * `opts.rounds` rounds that time each workload on each runner, in a rotated order. A runner that fails is
 * dropped from the rest of the run (its failure recorded); native failing leaves the peers unchecked.
 */
async function runRounds(runners: Runner[], opts: Options, references: Map<WorkloadId, Reference>, results: CaseResult[], agreements: AgreementResult[], failures: string[]): Promise<void> {
  const live = new Set(runners);
  const fail = (r: Runner, err: unknown) => {
    failures.push(`${r.impl}: ${(err as Error).stack ?? String(err)}`);
    console.error(`  ${r.impl} failed: ${(err as Error).message}`);
    live.delete(r);
  };
  const runs = (r: Runner, id: WorkloadId) => live.has(r) && r.unsupported(id) === null;
  for (const r of runners) {
    for (const id of opts.workloads) {
      const why = r.unsupported(id);
      if (why !== null) console.log(`  ${r.impl} ${id}: not run — ${why}`);
    }
  }
  for (const id of opts.workloads) {
    for (const r of runners) {
      if (!runs(r, id)) continue;
      try {
        await outputAndCheck(r, id, references, agreements);
      } catch (err) {
        fail(r, err);
      }
    }
  }
  const timings = new Map<string, Timing[]>();
  for (let round = 0; round < opts.rounds; round++) {
    console.log(`  -- round ${round + 1} of ${opts.rounds} (load average ${os.loadavg()[0].toFixed(2)})`);
    for (const [w, id] of opts.workloads.entries()) {
      const d = WORKLOADS.find((x) => x.id === id) as WorkloadDef;
      for (const r of rotation(runners, round + w)) {
        if (!runs(r, id)) continue;
        try {
          const t = await r.time(id, budget(r.impl, opts.quick, opts.rounds));
          const key = `${r.impl} ${id}`;
          timings.set(key, [...(timings.get(key) ?? []), t]);
          console.log(`  ${d.title.padEnd(42)} ${r.impl.padEnd(11)} ${formatCase(d, caseResult(d, r.impl, t))}`);
        } catch (err) {
          fail(r, err);
        }
      }
    }
  }
  for (const id of opts.workloads) {
    const d = WORKLOADS.find((x) => x.id === id) as WorkloadDef;
    for (const r of runners) {
      const ts = timings.get(`${r.impl} ${id}`);
      if (!ts || !live.has(r)) continue;
      const pooled = poolRounds(ts);
      results.push({ ...caseResult(d, r.impl, pooled, noteFor(r, id)), roundMedianSeconds: pooled.roundMedians });
    }
  }
  for (const r of runners) {
    try {
      await r.dispose();
    } catch (err) {
      failures.push(`${r.impl} dispose: ${(err as Error).message}`);
    }
  }
}

/** The cuda row (bench/cuda.ts): runs when a device is usable, else prints and records why not. */
async function runCuda(
  nb: NativeBinding,
  opts: Options,
  references: Map<WorkloadId, Reference>,
  results: CaseResult[],
  agreements: AgreementResult[],
  peerInfo: Record<string, object>,
  failures: string[],
): Promise<boolean> {
  console.log('\n== cuda (as native, every LSTM call through CudaLstm with the weights resident on the device: bench/cuda.ts)');
  const skip = cudaSkipReason(nb);
  if (skip !== null) {
    console.log(`  skipped: ${skip}`);
    peerInfo.cuda = { skipped: skip };
    return false;
  }
  const adapter = cudaAdapter(nb);
  try {
    await runSequential(factoryRunner('cuda', nativeFactory(adapter)), opts, references, results, agreements);
    return true;
  } catch (err) {
    failures.push(`cuda: ${(err as Error).stack ?? String(err)}`);
    console.error(`  cuda failed: ${(err as Error).message}`);
    return false;
  } finally {
    adapter.dispose();
  }
}

/**
 * bench/logs.ts (the log-pipeline benchmark) is included when present. It is expected to export a function
 * `runLogsBench(options: { quick: boolean })` (or as its default export) returning its results (stored in the
 * JSON under "logs").
 */
async function runLogs(opts: Options): Promise<unknown> {
  const file = path.join(__dirname, 'logs.ts');
  if (!fs.existsSync(file)) {
    console.log('\n== logs pipeline: bench/logs.ts not present, skipped');
    return undefined;
  }
  console.log('\n== logs pipeline (bench/logs.ts)');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(file) as Record<string, unknown>;
  const fn = [mod.runLogsBench, mod.default].find((v) => typeof v === 'function') as
    | ((o: { quick: boolean }) => unknown)
    | undefined;
  if (!fn) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${file} exports no function to run (expected runLogsBench)`);
  return await fn({ quick: opts.quick });
}

function isoStamp(d: Date): string {
  // ISO 8601 with the colons of the time replaced, so the name is a valid file name everywhere
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

function writeResults(dir: string, data: object, date: Date): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${isoStamp(date)}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  fs.renameSync(tmp, file);
  return file;
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const started = new Date();
  const nb = loadNative();
  const status = nativeStatus();
  const machine: MachineInfo = machineInfo(
    nb && status.capabilities ? { capabilities: status.capabilities, path: status.path } : { reason: describeNativeFailure(status) },
  );
  console.log(`DeepSentry benchmark ${started.toISOString()}${opts.quick ? ' (--quick: few samples, numbers indicative only)' : ''}`);
  console.log(`machine: ${machine.cpuModel} (${machine.cpuSimd.join(' ') || 'SIMD flags unknown'}), ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.nodeVersion}, load average ${machine.loadAverage.start.toFixed(2)}`);
  if (machine.native.loaded) {
    console.log(`native: ${machine.native.simd} (supported: ${machine.native.simdSupported.join(', ')}), ${machine.native.threads} thread(s) (DEEPSENTRY_THREADS=${machine.deepsentryThreadsEnv ?? 'unset'}), CUDA ${machine.native.cuda}`);
  } else {
    console.log(`native: NOT LOADED — peers only, nothing checked against native.\n${machine.native.reason}`);
  }
  console.log('FLOPs counted:');
  for (const [k, v] of Object.entries(FLOP_FORMULAS)) console.log(`  ${k.padEnd(11)} ${v}`);

  const results: CaseResult[] = [];
  const agreements: AgreementResult[] = [];
  const references = new Map<WorkloadId, Reference>();
  const peerInfo: Record<string, object> = {};
  const failures: string[] = [];
  let cudaRan = false;

  const roundPeers = opts.peers.filter((p) => ROUND_PEERS.includes(p));
  const ranRoundPeers: PeerId[] = [];
  if (opts.workloads.length > 0) {
    // the round peers get the addon's thread count (DEEPSENTRY_THREADS or every core), so ratios compare equals
    const threads = machine.native.loaded ? machine.native.threads : os.cpus().length;
    const runners: Runner[] = [];
    if (nb) {
      runners.push(factoryRunner('native', nativeFactory(nb)), bf16Runner(nb));
      const c = nb.capabilities();
      // the bf16 tier: LSTM and Dense products with bf16 operands, fp32 accumulation
      peerInfo['native-bf16'] = { kernels: c.bf16Kernels, instructions: c.bf16Instructions };
    }
    for (const peer of roundPeers) {
      try {
        const r = peer === 'onnxruntime' ? await onnxRunner(threads) : await torchRunner(threads);
        if ('skip' in r) {
          console.log(`\n== ${peer}: skipped — ${r.skip}`);
          peerInfo[peer] = { skipped: r.skip };
          continue;
        }
        peerInfo[peer] = r.info;
        console.log(`\n== ${peer}: ${JSON.stringify(r.info)}`);
        runners.push(r.runner);
        ranRoundPeers.push(peer);
      } catch (err) {
        failures.push(`${peer}: ${(err as Error).stack ?? String(err)}`);
        console.error(`  ${peer} failed to start: ${(err as Error).message}`);
      }
    }
    if (runners.length > 0) {
      console.log(`\n== ${runners.map((r) => r.impl).join(', ')}: ${opts.rounds} round(s), interleaved`);
      await runRounds(runners, opts, references, results, agreements, failures);
    }
    if (nb) cudaRan = await runCuda(nb, opts, references, results, agreements, peerInfo, failures);
    for (const peer of opts.peers.filter((p) => !ROUND_PEERS.includes(p))) {
      console.log(`\n== ${peer}${peer === 'native-tfjs' ? ' (the native kernels through the deepsentry tfjs backend: fusedBiLstm, fusedLstm, softmaxCrossEntropy)' : ''}`);
      if (peer === 'native-tfjs' && !nb) {
        console.log('  skipped: the native addon is not loaded');
        continue;
      }
      try {
        const { factory, info } = await peerFactory(peer);
        peerInfo[peer] = info;
        console.log(`  ${JSON.stringify(info)}`);
        await runSequential(factoryRunner(peer, factory), opts, references, results, agreements);
      } catch (err) {
        failures.push(`${peer}: ${(err as Error).stack ?? String(err)}`);
        console.error(`  ${peer} failed: ${(err as Error).message}`);
      }
    }
  }

  let logs: unknown;
  if (opts.logs) {
    try {
      logs = await runLogs(opts);
    } catch (err) {
      failures.push(`logs: ${(err as Error).stack ?? String(err)}`);
      console.error(`  logs benchmark failed: ${(err as Error).message}`);
    }
  }

  machine.loadAverage.end = os.loadavg()[0];
  const defs = WORKLOADS.filter((w) => opts.workloads.includes(w.id));
  const notes = footnotes(results).map((f) => `${f.mark} ${f.impls.join(', ')}: ${f.note}`);
  if (defs.length > 0) {
    console.log('\n== results (medians; native ÷ peer = peer time ÷ native time)\n');
    const shown = opts.peers.filter((p) => !ROUND_PEERS.includes(p) || ranRoundPeers.includes(p));
    const bf16: ImplId[] = results.some((r) => r.impl === 'native-bf16') ? ['native-bf16'] : [];
    console.log(formatTable(defs, results, [...bf16, ...(cudaRan ? ['cuda' as const] : []), ...shown]));
    for (const n of notes) console.log(n);
    if (ranRoundPeers.length > 0) {
      console.log(`\n== native against the best of ${ranRoundPeers.join(', ')}, in the same ${opts.rounds} round(s) (medians of the pooled samples)\n`);
      console.log(formatBestPeerTable(defs, results, ranRoundPeers));
    }
    console.log(`GFLOP/s from the counts above. Load average ${machine.loadAverage.start.toFixed(2)} at the start, ${machine.loadAverage.end.toFixed(2)} at the end on ${machine.cores} cores: the machine is shared, numbers taken under load are noisy.`);
  }
  const disagreements = agreements.filter((a) => !a.ok);
  for (const a of disagreements) failures.push(`${a.impl} ${a.workload}: ${a.what} = ${a.value} > ${a.tolerance}`);

  if (opts.save) {
    const file = writeResults(
      opts.out,
      {
        date: started.toISOString(),
        quick: opts.quick,
        argv: process.argv.slice(2),
        machine,
        peers: peerInfo,
        rounds: opts.rounds,
        seeds: SEED,
        shapes: { W1: W1_REFERENCE, L1: L1_REFERENCE, W2: W2_REFERENCE },
        flopFormulas: FLOP_FORMULAS,
        workloads: defs,
        results,
        agreement: agreements,
        notes,
        logs,
        failures,
      },
      started,
    );
    console.log(`\nresults written to ${path.relative(process.cwd(), file)}`);
  }
  if (failures.length > 0) {
    console.error(`\n${failures.length} failure(s):\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
