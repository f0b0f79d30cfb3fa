/**
 * In-process API benchmark: how long the event loop of a service waits while the API scores a log. Runs alone:
 * `npx tsx bench/api.ts --model DIR [--lines N] [--runs R] [--quick]` (DIR: a model written by `deepsentry
 * train`; input as bench/live.ts: $DEEPSENTRY_HDFS, else data/sample/HDFS.log.gz; default all its lines).
 *
 * Each run scores the lines through one form of the API while perf_hooks.monitorEventLoopDelay (1 ms
 * resolution) samples the event loop, and a 5 ms interval timer records its largest gap (what a service's
 * own timers see):
 * - `session, worker`: `model.session()`, pushes of 1,000 lines, `end()` (a model loaded from a directory is
 *   scored in a worker thread);
 * - `scoreLines, worker`: the one-shot `model.scoreLines(lines)`;
 * - `session, this thread`: `model.session({ worker: false })`, scored in this thread in chunks of 256 lines
 *   with the event loop let run between them (what a model only in memory gets).
 * Reported: medians over the runs (after one untimed warm-up per form) of event-loop delay p50 / p99 / max,
 * the largest 5 ms timer gap, and lines per second; the load average before and after (the machine is shared).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { DeepSentry } from '../lib/pipeline';
import { readInput } from './input';

interface Run {
  p50: number;
  p99: number;
  max: number;
  timerGapMs: number;
  linesPerSec: number;
}

/** Measures one scoring of `lines` by `score`. */
async function measure(lines: string[], score: () => Promise<unknown>): Promise<Run> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let gap = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    gap = Math.max(gap, t - last);
    last = t;
  }, 5);
  h.enable();
  const t0 = performance.now();
  await score();
  const sec = (performance.now() - t0) / 1000;
  h.disable();
  clearInterval(timer);
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, timerGapMs: gap, linesPerSec: lines.length / sec };
}

const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const modelDir = opt('--model');
  if (modelDir === undefined) throw new Error('give --model DIR (a directory written by `deepsentry train`)');
  const quick = args.includes('--quick');
  const runs = Number(opt('--runs') ?? (quick ? 1 : 3));
  const all = readInput();
  const lines = all.slice(0, Number(opt('--lines') ?? all.length));
  const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
  const loadStart = load();
  const model = await DeepSentry.load(path.resolve(modelDir));
  const session = (worker: boolean) => async (xs: string[]) => {
    const s = model.session({ worker });
    for (let i = 0; i < xs.length; i += 1000) await s.push(xs.slice(i, i + 1000));
    await s.end();
  };
  const forms: [string, (xs: string[]) => Promise<unknown>][] = [
    ['session, worker', session(true)],
    ['scoreLines, worker', (xs) => model.scoreLines(xs)],
    ['session, this thread', session(false)],
  ];
  const out: string[] = [];
  for (const [name, score] of forms) {
    await measure(lines.slice(0, 5000), () => score(lines.slice(0, 5000))); // warm-up
    const rs: Run[] = [];
    for (let r = 0; r < runs; r++) rs.push(await measure(lines, () => score(lines)));
    const m = (k: keyof Run) => median(rs.map((x) => x[k]));
    out.push(`${name.padEnd(22)} event-loop delay p50 ${m('p50').toFixed(1)} ms, p99 ${m('p99').toFixed(1)} ms, max ${m('max').toFixed(1)} ms; 5 ms timer's largest gap ${m('timerGapMs').toFixed(1)} ms; ${Math.round(m('linesPerSec'))} lines/s`);
  }
  model.dispose();
  process.stdout.write(
    [`API benchmark: ${lines.length} HDFS lines, ${runs} run(s), median; ${os.cpus().length} cpus, load avg ${loadStart} → ${load()}`, ...out, ''].join('\n'),
  );
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
