/**
 * Live-monitor benchmark. Runs alone: `npx tsx bench/live.ts [--quick] [--model DIR]
 * [--only model|novelty] [--precision fp32|bf16] [--long K] [--out NAME] [--latency-only] [--runs N]
 * [--scenarios A,B]` (bf16: the model scorer's products in the bf16
 * tier; results go to bench/results/live-bf16.json instead of live.json; --long K: `--follow` also over K copies
 * of the input, where a fresh worker's JIT warm-up weighs K times less; --out NAME: written to
 * bench/results/NAME.json instead; --latency-only: only the line-to-alert latency runs, for repeating them;
 * --runs N: N repetitions of each (default 3); --scenarios: only these, named as in the results file, e.g.
 * `followWorkerLong,latencyAt10kPerSecWorker`, for many short runs alternating two builds on a busy machine).
 *
 * Everything on loopback (127.0.0.1), HDFS-like input (the real hdfs-dev lines). Each scenario runs with the
 * model-free NoveltyScorer and, given `--model DIR` (a directory written by `deepsentry train`), with the
 * trained model's ModelScorer (lib/live/model_scorer.ts) — the real engine behind `deepsentry live --model`.
 * A load generator runs as a separate process (this file with `--loadgen`) so it does not
 * share the monitor's event loop. Measured:
 *
 * 1. sustained throughput, end to end, lines/s: (a) HTTP ingest — the generator POSTs 2,000-line bodies on 4
 *    keep-alive connections as fast as the monitor accepts them (a 503 is retried); (b) `--follow` — the file
 *    tail reads the whole file; (c) the scorer alone, in-process, for scale. Time runs from the first line
 *    accepted to the last line judged.
 * 2. line-to-alert latency at 10k lines/s (scorer in a worker, and on the main thread): the generator sends 100 lines every 10 ms over one connection and
 *    records when it sent each request; the monitor records when each alert was raised; latency = alert time
 *    − send time of the alerted line (both clocks are performance.timeOrigin + now(), same machine).
 *    Session-end alerts are left out (their line was sent long before the session ended).
 * 3. event-loop delay of the monitor process (perf_hooks.monitorEventLoopDelay) during each run, and its CPU
 *    time (process.cpuUsage: all threads of the monitor process, not the generator): lines per CPU-second is
 *    what the pipeline costs, which a shared, oversubscribed machine distorts far less than wall-clock lines/s.
 *
 * What the model path cost before it was fixed (node --cpu-prof, hdfs-dev): tfjs's tidy walking a returned
 * typed array element by element (40%, Detector.predict), one BiLSTM call for every line's window although
 * hdfs-dev has ~900 distinct windows in 38k events (ModelScorer now scores each distinct window once and
 * caches it), and one prediction per alert for its `expected` message (a third of the monitor's time; now one
 * batched call per scorer call through LineScorer.context). Scorer alone went from ~15k to ~200k lines/s.
 * The BiLSTM runs on the native backend in the worker too (FusedBiLstm, one native call per batch).
 *
 * Medians of `runs` repetitions after one untimed warm-up; the machine is shared, so numbers are noisy (the
 * load average is printed). Each run starts a fresh monitor (and scorer worker), so its JIT warm-up is in
 * the numbers: they are what a monitor achieves over its first ~100k lines.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createScorer } from '../lib/live/engine';
import { LiveMonitor } from '../lib/live/monitor';
import { LiveServer } from '../lib/live/server';
import { FileFollower } from '../lib/live/tail';
import { readInput } from './input';

const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------- load generator
interface LoadgenArgs {
  mode: 'flood' | 'paced';
  port: number;
  file: string;
  lines: number;
  rate: number; // lines/s (paced)
  perRequest: number;
  connections: number;
}

async function loadgen(a: LoadgenArgs): Promise<void> {
  const all = fs.readFileSync(a.file, 'utf8').split('\n').filter((l) => l !== '').slice(0, a.lines);
  // Bodies are built before the clock starts: the generator should cost as little as possible.
  const bodies: Buffer[] = [];
  for (let i = 0; i < all.length; i += a.perRequest) bodies.push(Buffer.from(all.slice(i, i + a.perRequest).join('\n')));
  const agent = new http.Agent({ keepAlive: true, maxSockets: a.connections });
  const post = (body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: a.port, method: 'POST', path: '/ingest', agent, headers: { 'content-type': 'text/plain' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(body);
    });
  const sent: [number, number][] = []; // [first line index, send time]
  let retries = 0;
  if (a.mode === 'flood') {
    let next = 0;
    const worker = async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        for (let attempt = 0; attempt < 10_000; attempt++) {
          const st = await post(body);
          if (st === 202) break;
          if (st !== 503) throw new Error(`ingest answered ${st}`);
          retries++;
          await new Promise((r) => setTimeout(r, 2));
        }
      }
    };
    await Promise.all(Array.from({ length: a.connections }, worker));
  } else {
    // Paced: one request every perRequest/rate seconds, on schedule (no drift), one at a time so that lines
    // arrive in order and the k-th line sent is the k-th line the monitor numbers.
    const interval = (1000 * a.perRequest) / a.rate;
    const t0 = performance.now();
    for (let i = 0, k = 0; i < all.length; i += a.perRequest, k++) {
      const due = t0 + k * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      sent.push([i, now()]);
      const st = await post(bodies[k]!);
      if (st !== 202) throw new Error(`ingest answered ${st} at line ${i}`);
    }
  }
  agent.destroy();
  process.stdout.write(JSON.stringify({ sent, retries }) + '\n');
}

function runLoadgen(a: LoadgenArgs): Promise<{ sent: [number, number][]; retries: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', __filename, '--loadgen', JSON.stringify(a)], { cwd: path.resolve(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load generator exited with ${code}`))));
  });
}

// ---------------------------------------------------------------------------------------------- measurements
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
const median = (xs: number[]) => quantile(xs, 0.5);

interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}
/** Event-loop delay and CPU time of this process (all its threads) over a run. */
function loopProbe() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const c0 = process.cpuUsage();
  return (): LoopDelay & { cpuSec: number } => {
    h.disable();
    const c = process.cpuUsage(c0);
    return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, cpuSec: (c.user + c.system) / 1e6 };
  };
}

/**
 * CPU seconds of each thread of this process so far (Linux: /proc/self/task; elsewhere none), by thread id: where
 * a run's CPU goes — the main thread, the scorer worker, and the rest (V8's helper threads: concurrent garbage
 * collection and compilation).
 */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  const hz = 100; // USER_HZ: the unit of utime and stime
  for (const t of tids) {
    try {
      const st = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(t, (Number(f[11]) + Number(f[12])) / hz);
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/** CPU seconds since `before` (threadCpu): the main thread, the busiest other thread (the scorer worker, when there is one), the rest. */
function cpuByThread(before: Map<string, number>): { main: number; busiestOther: number; rest: number } {
  const after = threadCpu();
  const main = String(process.pid);
  let m = 0;
  let busiest = 0;
  let total = 0;
  for (const [t, sec] of after) {
    const d = sec - (before.get(t) ?? 0);
    total += d;
    if (t === main) m = d;
    else busiest = Math.max(busiest, d);
  }
  const r = (x: number) => Math.round(x * 100) / 100;
  return { main: r(m), busiestOther: r(busiest), rest: r(total - m - busiest) };
}

/** Which scorer a run uses: the model-free novelty scorer, or the trained model in `dir`. */
type Kind = { scorer: 'novelty' } | { scorer: 'model'; dir: string };

/** The model scorer's precision tier (`--precision`; default the library's, fp32). */
let precision: 'fp32' | 'bf16' | undefined;

function makeScorer(kind: Kind, worker: boolean) {
  return kind.scorer === 'novelty'
    ? createScorer(undefined, { scorer: 'novelty', worker, logs: { format: 'hdfs' }, idleTimeoutMs: 30_000 })
    : createScorer(kind.dir, { scorer: 'model', worker, idleTimeoutMs: 30_000, ...(precision ? { precision } : {}) });
}

async function newMonitor(kind: Kind, worker: boolean, source: string) {
  const scorer = await makeScorer(kind, worker);
  const m = new LiveMonitor(scorer, { threshold: { mode: 'rolling', window: 1000 }, source, tickMs: 1000, maxQueuedLines: 100_000 });
  await m.start();
  return m;
}

/** Waits until `n` lines have been judged. */
async function judged(m: LiveMonitor, n: number): Promise<number> {
  for (;;) {
    if (m.snapshot().lines >= n && m.queuedLines === 0) {
      await m.idle();
      return now();
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function httpThroughput(kind: Kind, lines: number, worker: boolean, input: string) {
  const m = await newMonitor(kind, worker, 'http');
  const server = new LiveServer(m, { port: 0, ingest: true, maxBodyBytes: 8 << 20 });
  const { port } = await server.listen();
  let first = 0;
  const origOffer = m.offer.bind(m);
  m.offer = (l) => {
    if (first === 0) first = now();
    return origOffer(l);
  };
  const probe = loopProbe();
  const gen = runLoadgen({ mode: 'flood', port, file: input, lines, rate: 0, perRequest: 2000, connections: 4 });
  const end = await judged(m, lines);
  const { retries } = await gen;
  const loop = probe();
  await server.close();
  await m.stop();
  return { linesPerSec: lines / ((end - first) / 1000), linesPerCpuSec: lines / loop.cpuSec, loop, retries503: retries };
}

async function followThroughput(kind: Kind, lines: number, worker: boolean, file: string) {
  const m = await newMonitor(kind, worker, file);
  const f = new FileFollower(file, { pollMs: 5 });
  const probe = loopProbe();
  const threads0 = threadCpu();
  const t0 = now();
  const run = f.run((ls) => m.push(ls));
  const end = await judged(m, lines);
  const loop = probe();
  const cpuSecByThread = cpuByThread(threads0);
  f.stop();
  await run;
  await m.stop();
  return { linesPerSec: lines / ((end - t0) / 1000), linesPerCpuSec: lines / loop.cpuSec, loop, cpuSecByThread };
}

async function scorerAlone(kind: Kind, all: string[]) {
  const s = await makeScorer(kind, false);
  const raw = all.map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 0, text }));
  const t0 = now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < raw.length; i += 4096) await s.scoreLines(raw.slice(i, i + 4096));
  const c = process.cpuUsage(c0);
  await s.close();
  return { linesPerSec: raw.length / ((now() - t0) / 1000), linesPerCpuSec: raw.length / ((c.user + c.system) / 1e6) };
}

async function latencyAt(kind: Kind, rate: number, lines: number, worker: boolean, input: string) {
  const m = await newMonitor(kind, worker, 'http');
  const server = new LiveServer(m, { port: 0, ingest: true });
  const { port } = await server.listen();
  const raised: [number, number][] = []; // [seq, time]
  m.on('anomaly', (a) => {
    if (!a.isSessionEnd) raised.push([a.seq, now()]);
  });
  const probe = loopProbe();
  const { sent } = await runLoadgen({ mode: 'paced', port, file: input, lines, rate, perRequest: 100, connections: 1 });
  await judged(m, lines);
  const loop = probe();
  await server.close();
  const internal = await m.metrics.latency.get();
  await m.stop();
  // seq k (1-based) is line index k-1; find the request that carried it.
  const lat = raised.map(([seq, t]) => {
    const idx = seq - 1;
    let lo = 0;
    let hi = sent.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (sent[mid]![0] <= idx) lo = mid;
      else hi = mid - 1;
    }
    return t - sent[lo]![1];
  });
  const count = internal.values.find((v) => v.metricName === 'deepsentry_line_latency_seconds_count')?.value ?? 0;
  return { alerts: lat.length, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: Math.max(...lat), loop, acceptedToJudged: count, latencies: lat };
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const runs = argValue('--runs') !== undefined ? Number(argValue('--runs')) : quick ? 1 : 3;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive whole number, not ${argValue('--runs')}`);
  const SCENARIOS = ['scorerAloneInProcess', 'followWorker', 'followMainThread', 'httpWorker', 'followWorkerLong', 'followMainThreadLong', 'latencyAt10kPerSecWorker', 'latencyAt10kPerSecMainThread'];
  const picked = argValue('--scenarios')?.split(',') ?? SCENARIOS;
  for (const x of picked) if (!SCENARIOS.includes(x)) throw new Error(`--scenarios: no scenario ${x} (${SCENARIOS.join(', ')})`);
  const want = (x: string) => picked.includes(x);
  const modelDir = argValue('--model');
  const only = argValue('--only');
  const p = argValue('--precision');
  if (p !== undefined && p !== 'fp32' && p !== 'bf16') throw new Error(`--precision must be fp32 or bf16, not ${p}`);
  precision = p;
  const kinds: [string, Kind][] = [];
  if (only !== 'model') kinds.push(['novelty', { scorer: 'novelty' }]);
  if (modelDir !== undefined && only !== 'novelty') kinds.push(['model', { scorer: 'model', dir: path.resolve(modelDir) }]);
  if (kinds.length === 0) throw new Error('--only model needs --model DIR');
  const all = readInput();
  const n = quick ? 30_000 : all.length;
  const long = Number(argValue('--long') ?? 0);
  const latencyOnly = process.argv.includes('--latency-only');
  const outName = argValue('--out');
  if (outName !== undefined && !/^[\w.-]+$/.test(outName)) throw new Error(`--out must be a file name (letters, digits, '.', '-', '_'), not ${outName}`);
  if (latencyOnly && outName === undefined && !quick) throw new Error('--latency-only writes only part of the results: name them with --out NAME');
  if (!Number.isInteger(long) || long < 0) throw new Error(`--long must be a whole number of copies, not ${argValue('--long')}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-live-'));
  const file = path.join(tmp, 'hdfs.log');
  fs.writeFileSync(file, all.slice(0, n).join('\n') + '\n');
  const longFile = path.join(tmp, 'hdfs-long.log');
  if (long > 0) fs.writeFileSync(longFile, (all.slice(0, n).join('\n') + '\n').repeat(long));
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const out: Record<string, unknown> = { date: new Date().toISOString(), cpus: os.cpus().length, lines: n, runs, precision: precision ?? 'fp32', loadAvgStart: load(), scorers: {} };
  const rep = async <T>(f: () => Promise<T>): Promise<T[]> => {
    const r: T[] = [];
    for (let i = 0; i < runs; i++) r.push(await f());
    return r;
  };
  const summary = (rs: { linesPerSec: number; linesPerCpuSec: number; loop?: LoopDelay; cpuSecByThread?: { main: number; busiestOther: number; rest: number } }[]) => ({
    linesPerSec: Math.round(median(rs.map((r) => r.linesPerSec))),
    linesPerCpuSec: Math.round(median(rs.map((r) => r.linesPerCpuSec))),
    all: rs.map((r) => Math.round(r.linesPerSec)),
    ...(rs[0]!.cpuSecByThread ? { cpuSecByThread: rs.map((r) => r.cpuSecByThread) } : {}),
    ...(rs[0]!.loop ? { eventLoopDelayMs: { p50: median(rs.map((r) => r.loop!.p50)), p99: median(rs.map((r) => r.loop!.p99)), max: Math.max(...rs.map((r) => r.loop!.max)) } } : {}),
  });
  type Lat = Awaited<ReturnType<typeof latencyAt>>;
  // A run raises ~130 line alerts, so its p99 is its second-worst alert: one stall (a collection, another
  // process on the core) decides it. The pooled p99 is over the alerts of all runs.
  const latSummary = (lat: Lat[]) => ({
    alerts: lat.map((l) => l.alerts),
    p50Ms: median(lat.map((l) => l.p50)),
    p99Ms: median(lat.map((l) => l.p99)),
    p99PerRunMs: lat.map((l) => Number(l.p99.toFixed(2))),
    p99PooledMs: quantile(lat.flatMap((l) => l.latencies), 0.99),
    maxMs: Math.max(...lat.map((l) => l.max)),
    eventLoopDelayMs: { p50: median(lat.map((l) => l.loop.p50)), p99: median(lat.map((l) => l.loop.p99)), max: Math.max(...lat.map((l) => l.loop.max)) },
  });
  const results = out.scorers as Record<string, Record<string, unknown>>;
  const text: string[] = [];
  const f = (x: number) => x.toLocaleString('en-US');
  for (const [name, kind] of kinds) {
    const o: Record<string, unknown> = { scorer: kind.scorer === 'novelty' ? 'novelty (model-free, lib/live/novelty.ts)' : `model (lib/live/model_scorer.ts ModelScorer, ${kind.dir})`, loadAvgStart: load() };
    results[name] = o;
    await scorerAlone(kind, all.slice(0, Math.min(n, 30_000))); // warm-up (JIT), not counted
    if (!latencyOnly) {
      if (want('scorerAloneInProcess')) o.scorerAloneInProcess = summary(await rep(() => scorerAlone(kind, all.slice(0, n))));
      if (want('followWorker')) o.followWorker = summary(await rep(() => followThroughput(kind, n, true, file)));
      if (want('followMainThread')) o.followMainThread = summary(await rep(() => followThroughput(kind, n, false, file)));
      if (want('httpWorker')) o.httpWorker = summary(await rep(() => httpThroughput(kind, n, true, file)));
    }
    if (long > 0 && !latencyOnly) {
      if (want('followWorkerLong')) o.followWorkerLong = { copies: long, ...summary(await rep(() => followThroughput(kind, n * long, true, longFile))) };
      if (want('followMainThreadLong')) o.followMainThreadLong = { copies: long, ...summary(await rep(() => followThroughput(kind, n * long, false, longFile))) };
    }
    const latN = quick ? 20_000 : 50_000;
    if (want('latencyAt10kPerSecWorker')) o.latencyAt10kPerSecWorker = latSummary(await rep(() => latencyAt(kind, 10_000, latN, true, file)));
    if (want('latencyAt10kPerSecMainThread')) o.latencyAt10kPerSecMainThread = latSummary(await rep(() => latencyAt(kind, 10_000, latN, false, file)));
    o.loadAvgEnd = load();
    const r = o as Record<string, { linesPerSec: number; linesPerCpuSec: number; eventLoopDelayMs?: LoopDelay }>;
    const row = (label: string, k: string) => !r[k] ? undefined : `| ${label} | ${f(r[k]!.linesPerSec)} | ${f(r[k]!.linesPerCpuSec)} | ${r[k]!.eventLoopDelayMs ? `${r[k]!.eventLoopDelayMs!.p50.toFixed(1)} / ${r[k]!.eventLoopDelayMs!.p99.toFixed(1)} / ${r[k]!.eventLoopDelayMs!.max.toFixed(1)}` : '—'} |`;
    const latLine = (label: string, L: ReturnType<typeof latSummary> | undefined) =>
      L === undefined ? undefined : `line-to-alert latency at 10,000 lines/s (HTTP, 100 lines / 10 ms, ${label}): p50 ${L.p50Ms.toFixed(1)} ms, p99 ${L.p99Ms.toFixed(1)} ms (runs ${L.p99PerRunMs.join(' / ')}, pooled ${L.p99PooledMs.toFixed(1)}), max ${L.maxMs.toFixed(1)} ms over ${L.alerts.join('/')} alerts; event-loop delay p50 ${L.eventLoopDelayMs.p50.toFixed(1)} / p99 ${L.eventLoopDelayMs.p99.toFixed(1)} / max ${L.eventLoopDelayMs.max.toFixed(1)} ms`;
    text.push(...[
      `scorer ${o.scorer}; load avg (1/5/15 min) ${o.loadAvgStart} → ${o.loadAvgEnd}`,
      '',
      ...(latencyOnly
        ? []
        : [
            '| path | lines/s (wall) | lines per CPU-second | event-loop delay ms p50 / p99 / max |',
            '|---|---:|---:|---:|',
            row('scorer alone (in-process, no monitor)', 'scorerAloneInProcess'),
            row('--follow FILE, scorer in a worker', 'followWorker'),
            row('--follow FILE, scorer on the main thread', 'followMainThread'),
            row('HTTP POST /ingest (4 conns × 2000-line bodies), worker', 'httpWorker'),
            ...(long > 0 ? [row(`--follow FILE × ${long} copies, scorer in a worker`, 'followWorkerLong'), row(`--follow FILE × ${long} copies, scorer on the main thread`, 'followMainThreadLong')] : []),
            '',
          ]),
      latLine('worker', o.latencyAt10kPerSecWorker as ReturnType<typeof latSummary> | undefined),
      latLine('main thread', o.latencyAt10kPerSecMainThread as ReturnType<typeof latSummary> | undefined),
      '',
    ].filter((x): x is string => x !== undefined));
  }
  out.loadAvgEnd = load();
  fs.rmSync(tmp, { recursive: true, force: true });
  const dest = path.join(__dirname, 'results', `${outName ?? (precision === 'bf16' ? 'live-bf16' : 'live')}.json`);
  if (!quick) {
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, JSON.stringify(out, null, 2) + '\n');
  }
  process.stdout.write(
    [
      `live benchmark: ${f(n)} HDFS lines, ${runs} run(s), median, ${out.precision}; ${os.cpus().length} cpus, load avg ${out.loadAvgStart} → ${out.loadAvgEnd}`,
      '',
      ...text,
      quick ? `(--quick: not written to ${path.relative(process.cwd(), dest)})` : `written to ${path.relative(process.cwd(), dest)}`,
      '',
    ].join('\n'),
  );
}

if (process.argv[2] === '--loadgen') {
  loadgen(JSON.parse(process.argv[3]!) as LoadgenArgs).catch((err) => {
    process.stderr.write(`loadgen: ${(err as Error).message}\n`);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
