/**
 * Scale-out benchmark: `npx tsx bench/scale.ts [--model DIR] [--log FILE] [--workers 1,2,4] [--runs N]`.
 * Needs nats-server on PATH (or /usr/sbin); everything on 127.0.0.1.
 *
 * For each worker count: a fresh nats-server (JetStream, temp store), 12 partitions. The whole log is
 * published first (lib/scale/publisher.ts, in this process: its rate is measured on its own) while this
 * process holds every partition's lease; then N `deepsentry live --nats` worker processes (the CLI, as an
 * operator runs them) join, and once they all have, the leases are released and the clock runs until every
 * partition's checkpoint has reached its last line: fetched → scored → alerts published → checkpointed →
 * acked. One publisher on 2 cores is slower than the workers, so publishing and scoring at once would
 * measure the publisher; a fleet has a publisher per host.
 * Measured: lines/s of the workers; the publisher's rate; CPU seconds of the workers, of nats-server and of
 * the publisher (from /proc, all threads); and, for the broker's cost per worker, the CPU of the same model
 * scorer alone in one process over the same lines (no broker): worker CPU − scorer CPU = what fetching,
 * acking, checkpointing and alert publishing cost.
 *
 * Without --model a tiny model is trained first on the first 20k lines (the test fixtures' configuration):
 * its scores cost little, so the numbers show the broker's share at its largest.
 *
 * Prints a table and writes bench/results/scale.json. Medians over --runs (default 3); the load average is
 * printed with them (the machine is shared).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { LineSplitter, type SourceLine } from '../lib/logs/lines';
import { createScorer } from '../lib/live/engine';
import { resolvePipelineConfig, trainModel } from '../lib/pipeline';
import { CheckpointStore } from '../lib/scale/checkpoints';
import { Publisher, publishLogConfig } from '../lib/scale/publisher';
import { Lease } from '../lib/scale/leases';
import { connectNats, openLeases, topology } from '../lib/scale/topology';

const ROOT = path.join(__dirname, '..');
const P = 12;

function arg(name: string, def?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

/** CPU seconds (user + system, all threads) of a process, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100 on Linux)
  } catch {
    return NaN;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function startServer(dir: string, port: number): Promise<ChildProcess> {
  const bin = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => fs.existsSync(p)) ?? 'nats-server';
  const p = spawn(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  process.on('exit', () => p.kill('SIGKILL'));
  children.push(p);
  for (let i = 0; i < 200; i++) {
    try {
      const nc = await connectNats(`nats://127.0.0.1:${port}`, 'bench-probe');
      await nc.close();
      return p;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error('nats-server did not start');
}

function startWorker(model: string, url: string, stream: string, errFile: string): ChildProcess {
  const p = spawn(process.execPath, ['--import', 'tsx', '-e', "require('./lib/cli/main').main(process.argv.slice(1)).then((c) => { process.exitCode = c; })", '--', 'live', '--model', model, '--nats', url, '--stream', stream, '--json', '--lease-ms', '5000', '--threads', '1'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', fs.openSync(errFile, 'a')],
  });
  process.on('exit', () => p.kill('SIGKILL'));
  children.push(p);
  return p;
}

interface Run {
  workers: number;
  /** draining the published backlog: from the release of the partitions to the last checkpoint */
  seconds: number;
  linesPerSec: number;
  publishPerSec: number;
  workerCpu: number;
  serverCpu: number;
  publishServerCpu: number;
  publisherCpu: number;
}

async function runOnce(model: string, lines: SourceLine[], n: number, port: number): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-nats-'));
  const server = await startServer(dir, port);
  const url = `nats://127.0.0.1:${port}`;
  const stream = 'BENCH';
  const topo = topology(stream);
  const pub = await Publisher.open({ nats: url, stream, partitions: P, logConfig: publishLogConfig({ model }), source: 'bench' });
  const nc = await connectNats(url, 'bench');
  const workers: ChildProcess[] = [];
  // The bench holds every partition's lease while it publishes and while the workers join, so that the
  // workers start together, on the whole backlog, with their final assignment (no rebalancing in the run).
  const { leases: kv } = await openLeases(nc, topo, 5000);
  const held: Lease[] = [];
  for (let p = 0; p < P; p++) held.push((await Lease.acquire(kv, p, 'bench'))!);
  const renew = setInterval(() => void Promise.all(held.map((l) => l.renew().catch(() => false))), 1000);
  try {
    const s0 = cpuSeconds(server.pid!);
    const p0 = process.cpuUsage();
    const tp = performance.now();
    await pub.publish(lines);
    await pub.finish();
    const publishSeconds = (performance.now() - tp) / 1000;
    const pCpu = process.cpuUsage(p0);
    const publishServerCpu = cpuSeconds(server.pid!) - s0;
    for (let i = 0; i < n; i++) workers.push(startWorker(model, url, stream, path.join(dir, `worker-${i}.log`)));
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      let members = 0;
      for await (const k of await kv.keys('m.*')) if (k) members++;
      if (members === n) break;
    }
    await new Promise((r) => setTimeout(r, 3000)); // every worker has seen every other one
    const jsm = await jetstreamManager(nc);
    const last: number[] = [];
    for (let p = 0; p < P; p++) last.push((await jsm.streams.getMessage(stream, { last_by_subj: topo.subject(p) }))!.seq);
    const ckpts = new CheckpointStore(await new Kvm(nc).open(topo.ckptBucket), 'bench');
    const cpu0 = workers.map((w) => cpuSeconds(w.pid!));
    const s1 = cpuSeconds(server.pid!);
    clearInterval(renew);
    const t0 = performance.now();
    await Promise.all(held.map((l) => l.release()));
    while (!(await ckpts.positions(P)).every((s, p) => s >= last[p]!)) await new Promise((r) => setTimeout(r, 50));
    const t1 = performance.now();
    const workerCpu = workers.reduce((a, w, i) => a + cpuSeconds(w.pid!) - cpu0[i]!, 0);
    workers.forEach((w, i) => {
      if (w.exitCode !== null) process.stderr.write(`worker ${i} exited (${w.exitCode}): ${fs.readFileSync(path.join(dir, `worker-${i}.log`), 'utf8').slice(-3000)}\n`);
    });
    const seconds = (t1 - t0) / 1000;
    return { workers: n, seconds, linesPerSec: lines.length / seconds, publishPerSec: lines.length / publishSeconds, workerCpu, serverCpu: cpuSeconds(server.pid!) - s1, publishServerCpu, publisherCpu: (pCpu.user + pCpu.system) / 1e6 };
  } finally {
    clearInterval(renew);
    await pub.close();
    await nc.close();
    for (const w of workers) w.kill('SIGKILL');
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Child processes to kill when the bench is interrupted (exit handlers do not run on a signal). */
const children: ChildProcess[] = [];
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });
}

async function main(): Promise<void> {
  const logFile = arg('log', path.resolve(ROOT, '../shared/data/hdfs-dev/HDFS.log'))!;
  const counts = arg('workers', '1,2,4')!.split(',').map(Number);
  const runs = Number(arg('runs', '3'));
  let model = arg('model');
  const text = fs.readFileSync(logFile);
  const lines = new LineSplitter().push(text);
  if (model === undefined) {
    model = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-model-'));
    const head = path.join(model, 'train.log');
    fs.writeFileSync(head, lines.slice(0, 20000).map((l) => l.text).join('\n') + '\n');
    process.stderr.write('training a tiny model on the first 20k lines…\n');
    await trainModel([head], path.join(model, 'm'), {
      config: resolvePipelineConfig({ text: { model: { embeddingDim: 8, hiddenSize: 16, latentDim: 16 }, train: { epochs: 15, batchSize: 32 } }, detector: { model: { hiddenSize: 8 }, train: { epochs: 2, batchSize: 256 } } }),
    });
    model = path.join(model, 'm');
  }
  // the scorer alone, in this process, over the same lines: its CPU is what a worker spends on scoring
  const scorer = await createScorer(model, { worker: false });
  const c0 = process.cpuUsage();
  const a0 = performance.now();
  for (let i = 0; i < lines.length; i += 1000) await scorer.scoreLines(lines.slice(i, i + 1000).map((l, k) => ({ seq: i + k + 1, lineNo: l.lineNo, offset: l.offset, text: l.text })));
  const alone = { cpu: (process.cpuUsage(c0).user + process.cpuUsage(c0).system) / 1e6, seconds: (performance.now() - a0) / 1000 };
  await scorer.close();
  const results: Run[][] = [];
  let port = 14300 + Math.floor(Math.random() * 500);
  for (const n of counts) {
    const rs: Run[] = [];
    for (let r = 0; r < runs; r++) {
      rs.push(await runOnce(model, lines, n, port++));
      process.stderr.write(`${n} worker(s), run ${r + 1}: ${Math.round(rs[r]!.linesPerSec)} lines/s (load ${os.loadavg()[0]!.toFixed(1)})\n`);
    }
    results.push(rs);
  }
  const rows = results.map((rs) => {
    const m = (f: (r: Run) => number) => median(rs.map(f));
    const workerCpuPerLineUs = m((r) => r.workerCpu) / lines.length * 1e6;
    return {
      workers: rs[0]!.workers,
      linesPerSec: Math.round(m((r) => r.linesPerSec)),
      seconds: +m((r) => r.seconds).toFixed(2),
      publishLinesPerSec: Math.round(m((r) => r.publishPerSec)),
      workerCpuUsPerLine: +workerCpuPerLineUs.toFixed(1),
      brokerOverheadUsPerLine: +(workerCpuPerLineUs - (alone.cpu / lines.length) * 1e6).toFixed(1),
      serverCpuUsPerLine: +((m((r) => r.serverCpu) / lines.length) * 1e6).toFixed(1),
      publisherCpuUsPerLine: +((m((r) => r.publisherCpu) / lines.length) * 1e6).toFixed(1),
      publishServerCpuUsPerLine: +((m((r) => r.publishServerCpu) / lines.length) * 1e6).toFixed(1),
    };
  });
  const out = {
    date: new Date().toISOString(),
    log: logFile,
    lines: lines.length,
    partitions: P,
    cores: os.cpus().length,
    loadAverage: os.loadavg(),
    scorerAlone: { linesPerSec: Math.round(lines.length / alone.seconds), cpuUsPerLine: +((alone.cpu / lines.length) * 1e6).toFixed(1) },
    rows,
  };
  console.table(rows);
  console.log(JSON.stringify(out, null, 2));
  fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'scale.json'), JSON.stringify(out, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
