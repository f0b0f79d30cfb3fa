/**
 * `npm run bench` — the native kernels against tfjs (cpu and wasm backends) on the reference workloads, all
 * in one run. Prints items/s, GFLOP/s and native ÷ peer for every workload, checks first
 * that native and each peer compute the same function, and writes bench/results/<date>.json.
 *
 *   npm run bench                          # everything (~5 minutes on the 2-core machine)
 *   npm run bench -- --quick               # fewer samples: a smoke run (~1–2 minutes)
 *   npm run bench -- --filter w1,l1        # workloads by id or prefix: w1-forward w1-train l1 w2-encode w2-train logs
 *   npm run bench -- --peers wasm          # a subset of the peers (native-tfjs, wasm, cpu, layers-wasm, layers-cpu) or none
 *                                          # (default: all but layers-cpu)
 *   npm run bench -- --no-save             # do not write a results file
 *   DEEPSENTRY_THREADS=1 npm run bench     # the addon's thread pool size (default: the number of cores)
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
import {
  caseResult,
  footnotes,
  formatCase,
  formatTable,
  type AgreementResult,
  type CaseResult,
  type ImplId,
  type WorkloadDef,
  type WorkloadId,
} from './report';
import { timeFunction, type TimingBudget } from './timing';
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

type PeerId = Exclude<ImplId, 'native'>;
/** everything that can be compared with the direct native calls, in run order */
const PEERS: PeerId[] = ['native-tfjs', 'tfjs-wasm', 'tfjs-cpu', 'layers-wasm', 'layers-cpu'];
/**
 * what runs without --peers: layers-cpu only when asked for (tfjs-layers on the cpu kernels is as slow as
 * tfjs-cpu and shows nothing new: the layers-vs-ops difference is measured on wasm)
 */
const DEFAULT_PEERS: PeerId[] = ['native-tfjs', 'tfjs-wasm', 'tfjs-cpu', 'layers-wasm'];
const WORKLOAD_IDS: WorkloadId[] = ['w1-forward', 'w1-train', 'l1', 'w2-encode', 'w2-train'];
const LOGS_ID = 'logs';
/** the seeds of parameters and batches: every run, every implementation starts from the same numbers */
const SEED = { w1Params: 11, w1Batch: 12, w2Params: 21, w2Batch: 22 };

/** Agreement tolerances: outputs are O(0.1–1) in float32; gradients are compared relative to their largest entry. */
const TOL = { output: 1e-4, gradientRel: 1e-3, lossRel: 1e-4 };

/**
 * Time budgets: tfjs-cpu is 30–50× slower than wasm (a W2 training step takes ~25 s there), so it gets the
 * fewest samples; each sample of a slow workload is a single call.
 */
function budget(impl: ImplId, quick: boolean): TimingBudget {
  if (impl === 'native' || impl === 'native-tfjs' || impl === 'cuda') return quick ? { minSamples: 3, maxTime: 0.3 } : { minSamples: 10, maxTime: 3 };
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
  save: boolean;
  out: string;
}

function usageError(message: string): DeepSentryError {
  return new DeepSentryError('DS_INVALID_ARGUMENT', `${message}\nusage: npm run bench -- [--quick] [--filter ${[...WORKLOAD_IDS, LOGS_ID].join(',')}] [--peers native-tfjs,wasm,cpu,layers-wasm,layers-cpu|none] [--out DIR] [--no-save]`);
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
      const id = (p === 'native-tfjs' || p.startsWith('tfjs-') || p.startsWith('layers-') ? p : `tfjs-${p}`) as PeerId;
      if (!PEERS.includes(id)) throw usageError(`bench: --peers ${JSON.stringify(p)} is not a peer (peers: native-tfjs, wasm, cpu, layers-wasm, layers-cpu, none)`);
      if (!peers.includes(id)) peers.push(id);
    }
    peers = PEERS.filter((p) => peers.includes(p)); // fixed order
  }
  return {
    quick: values.quick as boolean,
    workloads: WORKLOAD_IDS.filter((id) => pick.has(id)),
    logs: pick.has(LOGS_ID),
    peers,
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

function nativeFactory(nb: NativeBinding): Factory {
  return {
    w1: (s) => new NativeW1(nb, s, initW1Params(s, SEED.w1Params), makeW1Batch(s, SEED.w1Batch)),
    w2: (s) => new NativeW2(nb, s, initW2Params(s, SEED.w2Params), makeW2Batch(s, SEED.w2Batch)),
  };
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
    await runImpl('cuda', nativeFactory(adapter), opts, references, results, agreements);
    return true;
  } catch (err) {
    failures.push(`cuda: ${(err as Error).stack ?? String(err)}`);
    console.error(`  cuda failed: ${(err as Error).message}`);
    return false;
  } finally {
    adapter.dispose();
  }
}

async function runImpl(
  impl: ImplId,
  factory: Factory,
  opts: Options,
  references: Map<WorkloadId, Reference>,
  results: CaseResult[],
  agreements: AgreementResult[],
): Promise<void> {
  const inst: Instances = {};
  const b = budget(impl, opts.quick);
  const def = (id: WorkloadId) => WORKLOADS.find((w) => w.id === id) as WorkloadDef;
  try {
    for (const id of opts.workloads) {
      const d = def(id);
      let fn: () => unknown;
      // build the instance a workload needs, then check it against native once (this first call also warms up)
      let output: Reference;
      if (id === 'w1-forward' || id === 'l1') {
        const m = id === 'l1' ? (inst.l1 ??= factory.w1(L1_REFERENCE)) : (inst.w1 ??= factory.w1(W1_REFERENCE));
        output = { kind: 'output', what: `pred [${id === 'l1' ? 1 : W1_REFERENCE.batch},${W1_REFERENCE.out}]`, data: m.forward().pred };
        fn = () => m.forward();
      } else if (id === 'w1-train') {
        const m = (inst.w1 ??= factory.w1(W1_REFERENCE));
        output = { kind: 'gradients', ...m.gradients() };
        fn = () => m.trainStep();
      } else if (id === 'w2-encode') {
        const m = (inst.w2 ??= factory.w2(W2_REFERENCE));
        output = { kind: 'output', what: `encoder h [${W2_REFERENCE.batch},${W2_REFERENCE.hidden}]`, data: m.encode() };
        fn = () => m.encode();
      } else {
        const m = (inst.w2 ??= factory.w2(W2_REFERENCE));
        output = { kind: 'gradients', ...m.gradients() };
        fn = () => m.trainStep();
      }
      if (impl === 'native') {
        references.set(id, output);
      } else {
        const ref = references.get(id);
        if (ref?.kind === 'output' && output.kind === 'output') {
          const a = agree(id, impl, `${ref.what} max |Δ| vs native`, maxAbsDiff(ref.data, output.data), TOL.output);
          agreements.push(a);
          console.log(`  check ${d.title}: ${a.what} = ${a.value.toExponential(2)} (tolerance ${a.tolerance}) ${a.ok ? 'ok' : 'DISAGREE'}`);
        } else if (ref?.kind === 'gradients' && output.kind === 'gradients') {
          const lossA = agree(id, impl, 'loss |Δ|/|loss| vs native', Math.abs(ref.loss - output.loss) / Math.abs(ref.loss), TOL.lossRel);
          const g = gradientDiff(ref.grads, output.grads);
          const gradA = agree(id, impl, `gradients max |Δ|/max|g| vs native (worst: ${g.worst}; ${output.grads.length} of ${ref.grads.length} parameters)`, g.value, TOL.gradientRel);
          agreements.push(lossA, gradA);
          for (const a of [lossA, gradA]) {
            console.log(`  check ${d.title}: ${a.what} = ${a.value.toExponential(2)} (tolerance ${a.tolerance}) ${a.ok ? 'ok' : 'DISAGREE'}`);
          }
        } else {
          console.log(`  check ${d.title}: not checked (no native reference)`);
        }
      }
      const note = id === 'w2-train' ? factory.w2TrainNote : undefined;
      const t = await timeFunction(`${id} ${impl}`, fn, b);
      const r = caseResult(d, impl, t, note);
      results.push(r);
      console.log(`  ${d.title.padEnd(42)} ${impl.padEnd(9)} ${formatCase(d, r)}`);
      // the instance a workload no longer needs is released before the next one runs
      if (id === 'l1') {
        inst.l1?.dispose();
        inst.l1 = undefined;
      }
    }
  } finally {
    inst.w1?.dispose();
    inst.l1?.dispose();
    inst.w2?.dispose();
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

  if (opts.workloads.length > 0) {
    if (nb) {
      console.log('\n== native');
      try {
        await runImpl('native', nativeFactory(nb), opts, references, results, agreements);
      } catch (err) {
        failures.push(`native: ${(err as Error).stack ?? String(err)}`);
        console.error(`  native failed: ${(err as Error).message}`);
      }
    }
    if (nb) cudaRan = await runCuda(nb, opts, references, results, agreements, peerInfo, failures);
    for (const peer of opts.peers) {
      console.log(`\n== ${peer}${peer === 'native-tfjs' ? ' (the native kernels through the deepsentry tfjs backend: fusedBiLstm, fusedLstm, softmaxCrossEntropy)' : ''}`);
      if (peer === 'native-tfjs' && !nb) {
        console.log('  skipped: the native addon is not loaded');
        continue;
      }
      try {
        const { factory, info } = await peerFactory(peer);
        peerInfo[peer] = info;
        console.log(`  ${JSON.stringify(info)}`);
        await runImpl(peer, factory, opts, references, results, agreements);
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
    console.log(formatTable(defs, results, cudaRan ? ['cuda', ...opts.peers] : opts.peers));
    for (const n of notes) console.log(n);
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
