/**
 * W1 forward and L1 per core and on the pool, away from the machine's other load: `NativeW1.forwardInto` (native and
 * native-bf16) and `OrtW1.forwardInto` (bench/peers/onnx.ts, when installed; both write into outputs they keep,
 * as bench/index.ts times them) called back to back, interleaved over rounds, each sample a block of calls. Per
 * sample it records
 *   - wall µs per call;
 *   - CPU µs per call of the whole process (process.cpuUsage: every thread, spinning included);
 *   - with --l1, the 10th percentile and the median of the calls' own wall times (the fastest tenth: calls
 *     that found both cores free);
 *   - per thread of the process, from /proc/self/task/<tid>/schedstat (Linux): the time it ran and the time it
 *     waited runnable for a core (run-queue wait: other processes had the cores).
 * With --threads 1 (the addon's pool and intraOpNumThreads) the process CPU time per call is the per-core cost:
 * what a quiet core would take, whatever the load. On two threads "busiest" is the thread that ran longest
 * (the calling thread: it does a direction, its share of the Dense head, the call's boundary), which bounds the
 * wall time of a quiet machine from below; "rq wait" is what the load added.
 *
 *   npx tsx bench/forward-cores.ts [--threads N] [--rounds R] [--calls C] [--l1] [--old DIR] [--old-addon FILE] [--bf16] [--no-ort]
 *
 * --old DIR adds `native@old` rows: NativeW1 from DIR/bench/native.ts (another checkout, e.g. the code before a
 * change) run on this addon, so one process compares the two call paths on the same kernels.
 * --bf16 times only the bf16 tier's rows (native-bf16, …) and onnxruntime.
 * --old-addon FILE adds `native@old-addon` rows: this NativeW1 on another build of the addon (a copy of
 * build/Release/deepsentry.node made before a change, at a path of its own so that it loads as a second
 * module, with its own thread pool), so one process compares the two builds' kernels, interleaved round by
 * round, under the same load.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadNative, loadNativeFile } from '../lib/backend/native';
import type { NativeBinding } from '../lib/backend/binding';
import { DeepSentryError } from '../lib/errors';
import { NativeW1 } from './native';
import { initW1Params, L1_REFERENCE, makeW1Batch, W1_REFERENCE, type W1Shape } from './workloads';
import type { W1Impl } from './impl';

interface Opts {
  threads: number;
  rounds: number;
  calls: number;
  l1: boolean;
  old: string | null;
  oldAddon: string | null;
  bf16Only: boolean;
  ort: boolean;
}

function parse(argv: string[]): Opts {
  const o: Opts = { threads: 1, rounds: 5, calls: 0, l1: false, old: null, oldAddon: null, bf16Only: false, ort: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new DeepSentryError('DS_INVALID_ARGUMENT', `${a} expects a positive integer, got ${argv[i]}`);
      return v;
    };
    if (a === '--threads') o.threads = num();
    else if (a === '--rounds') o.rounds = num();
    else if (a === '--calls') o.calls = num();
    else if (a === '--l1') o.l1 = true;
    else if (a === '--no-ort') o.ort = false;
    else if (a === '--bf16') o.bf16Only = true;
    else if (a === '--old') o.old = path.resolve(argv[++i] ?? '');
    else if (a === '--old-addon') o.oldAddon = path.resolve(argv[++i] ?? '');
    else throw new DeepSentryError('DS_INVALID_ARGUMENT', `unknown option ${a}`);
  }
  if (o.calls === 0) o.calls = o.l1 ? 20000 : 100;
  return o;
}

type Sched = Map<string, [number, number]>; // tid → [ran ns, run-queue wait ns]

function sched(): Sched {
  const m: Sched = new Map();
  let tids: string[] = [];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return m; // not Linux: no per-thread figures
  }
  for (const t of tids) {
    try {
      const [run, wait] = fs.readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').trim().split(' ').map(Number);
      m.set(t, [run, wait]);
    } catch {
      // the thread ended
    }
  }
  return m;
}

interface Sample {
  /** per-call wall µs (--l1 only: 10th percentile and median of the sample's calls) */
  p10: number;
  p50: number;
  wall: number;
  cpu: number;
  busiest: number;
  rqWait: number;
}

async function sample(f: () => unknown, calls: number, perCall: boolean): Promise<Sample> {
  const each = perCall ? new Float64Array(calls) : null;
  const s0 = sched();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let last = t0;
  for (let i = 0; i < calls; i++) {
    const r = f();
    if (r instanceof Promise) await r;
    if (each) {
      const now = process.hrtime.bigint();
      each[i] = Number(now - last) / 1e3;
      last = now;
    }
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e3 / calls;
  const c = process.cpuUsage(c0);
  const s1 = sched();
  let busiest = 0;
  let rqWait = 0;
  for (const [tid, [run, wait]] of s1) {
    const [run0, wait0] = s0.get(tid) ?? [0, 0];
    const ran = (run - run0) / 1e3 / calls;
    if (ran > busiest) {
      busiest = ran;
      rqWait = (wait - wait0) / 1e3 / calls;
    }
  }
  const sorted = each ? each.sort() : null;
  const p10 = sorted ? sorted[Math.floor(calls / 10)] : NaN;
  const p50 = sorted ? sorted[calls >> 1] : NaN;
  return { p10, p50, wall, cpu: (c.user + c.system) / calls, busiest, rqWait };
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const nb = loadNative() as NativeBinding;
  if (!nb) throw new DeepSentryError('DS_UNSUPPORTED', 'the native addon did not load');
  nb.setThreads(o.threads);
  const s: W1Shape = o.l1 ? L1_REFERENCE : W1_REFERENCE;
  const params = () => initW1Params(s, 11);
  const batch = makeW1Batch(s, 12);
  const oldNb = o.oldAddon ? loadNativeFile(o.oldAddon) : null;
  oldNb?.setThreads(o.threads);
  const impls: Array<{ name: string; precision: 'fp32' | 'bf16'; nb: NativeBinding; m: W1Impl | { forward(): Promise<unknown> } }> = [];
  for (const precision of o.bf16Only ? (['bf16'] as const) : (['fp32', 'bf16'] as const)) {
    const tag = precision === 'bf16' ? 'native-bf16' : 'native';
    impls.push({ name: tag, precision, nb, m: new NativeW1(nb, s, params(), batch) });
    if (oldNb) impls.push({ name: `${tag}@old-addon`, precision, nb: oldNb, m: new NativeW1(oldNb, s, params(), batch) });
    if (o.old) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const Old = (require(path.join(o.old, 'bench', 'native.ts')) as { NativeW1: typeof NativeW1 }).NativeW1;
      impls.push({ name: `${tag}@old`, precision, nb, m: new Old(nb, s, params(), batch) });
    }
  }
  if (o.ort) {
    const onnx = await import('./peers/onnx');
    const loaded = onnx.loadOnnxRuntime();
    if ('ort' in loaded) impls.push({ name: 'onnxruntime', precision: 'fp32', nb, m: await onnx.OrtW1.create(loaded.ort, s, params(), batch, o.threads) });
    else console.log(`onnxruntime: ${loaded.skip}`);
  }
  const results = new Map<string, Sample[]>();
  const loads: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    loads.push(Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
    // rotate the order from round to round so that none always runs first
    const order = impls.map((_, i) => impls[(i + r) % impls.length]);
    for (const impl of order) {
      impl.nb.setPrecision(impl.precision);
      try {
        const m = impl.m as { forward(): unknown; forwardInto?(): unknown };
        const f = m.forwardInto ? () => m.forwardInto?.() : () => m.forward(); // the bench's call (bench/index.ts)
        await sample(f, Math.max(1, o.calls >> 3), false); // warm-up
        const got = await sample(f, o.calls, o.l1);
        results.set(impl.name, [...(results.get(impl.name) ?? []), got]);
      } finally {
        impl.nb.setPrecision('fp32');
      }
    }
  }
  console.log(`${o.l1 ? 'L1 (B=1)' : 'W1 forward (B=256)'}, ${o.threads} thread(s), ${o.rounds} rounds of ${o.calls} calls, load ${loads.map((l) => l.toFixed(1)).join(' ')}`);
  console.log('| implementation | wall µs/call | process CPU µs/call | busiest thread ran µs/call | its run-queue wait µs/call |' + (o.l1 ? ' per call: p10 / median µs |' : ' windows/s (wall) | windows/s at the busiest thread\'s run time |'));
  console.log('| --- | --- | --- | --- | --- |' + (o.l1 ? ' --- |' : ' --- | --- |'));
  for (const [name, v] of results) {
    const m = (k: keyof Sample) => median(v.map((x) => x[k]));
    const rate = (us: number) => Math.round((s.batch * 1e6) / us).toLocaleString('en-US');
    const row = [name, m('wall').toFixed(1), m('cpu').toFixed(1), m('busiest').toFixed(1), m('rqWait').toFixed(1)];
    if (o.l1) row.push(`${m('p10').toFixed(1)} / ${m('p50').toFixed(1)}`);
    else row.push(rate(m('wall')), rate(m('busiest')));
    console.log(`| ${row.join(' | ')} |`);
  }
  for (const impl of impls) {
    const d = (impl.m as { dispose?: () => unknown }).dispose;
    if (d) await d.call(impl.m);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
