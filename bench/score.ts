/**
 * Where the time of `deepsentry score` goes, on a log and a trained model (default: hdfs-dev and a model
 * trained on it). scoreLog (lib/pipeline/score.ts) runs end to end through the one engine, the model scorer
 * (lib/live/model_scorer.ts), and its parts are timed inside that real run: timing wrappers around the
 * engine's own methods (nothing replaced, nothing re-implemented) attribute each moment to the innermost part
 * running. Parse and mask are timed apart, on the same lines with the same components, because they run per
 * line inside the scorer's line loop, where a timer per line would cost more than they do:
 *
 *   read      openLogInput: file → line batches (I/O, line split, UTF-8 checks), timed on its own
 *   parse     the format's parse of every line (timestamp, fields, message), timed on its own
 *   mask      the masking rules on every parsed message (Masker.maskText), timed on its own
 *   sessions  the rest of the scorer's line loop (ModelScorer.addLines): session keys, message ids, the
 *             Sessionizer (open, idle, close), each line's window and event
 *   windows   ModelScorer's finish less the detector: window keys, the window-score cache, events' scores
 *   kernels   Detector.predict for the windows not scored before (BiLSTM + Dense through the tfjs backend)
 *   scoring   the rest of ScoringModel.scoreWindows: logits against the known messages, novelty, sequence
 *   explain   the explanation of flagged sessions: expected messages (predicted once per window) and count relations
 *   lines.csv scoreLog minus scoreLog without lines.csv (`lines: false`), both run without the timers and in
 *             alternating order: its rows' text, line bookkeeping, writes
 *   output    the rest of the timed scoreLog: per-line records, sessions.csv, bookkeeping, and what the timers
 *             themselves cost (wrapping the engine's methods makes V8 drop the code optimised around them) — a
 *             remainder: under load the other stages' noise lands here, so it can come out as 0
 *
 * These stages time scoreLog reading in its own thread (`readerThread: false`). On a file of
 * READER_THREAD_BYTES and more `deepsentry score` reads, parses and masks in a reader thread
 * (lib/pipeline/score_reader.ts) beside the scoring: that run is timed too, end to end (with --cpu, the CPU
 * time of both threads).
 *
 * Besides: the process as a user runs it — `deepsentry --version` (Node, the CLI, yargs: the start alone) and
 * `deepsentry score`, its wall time cut at the moments it marks (lib/marks.ts; read from the child at its exit):
 *
 *   node          the process's start to bin/deepsentry.js (Node's own bootstrap)
 *   cli           the CLI's modules: yargs and the command list
 *   parse         parsing and checking the arguments, up to the command's handler
 *   modules       score's modules: tfjs-core, the kernels, the pipeline (the model's files are being read and the
 *                 reader thread starts meanwhile)
 *   model         --config, the backend, the model (weights checked, tensors made)
 *   first chunk   the output folder checked, the scorer made, and the wait for the reader thread's first chunk
 *   scoring       the chunks scored as they come and lines.csv written (the main thread's loop; reading,
 *                 parsing and masking run beside it in the reader thread), and of it the time the main thread
 *                 waited for the reader thread (ScoreReader.waitedMs: when it is large, reading is the limit)
 *   output        the sessions still open at the end, sessions.csv, the files moved into place
 *   exit          the summary, the threads' and the process's end, as the parent sees it
 *
 * and the window repetition:
 * windows read (one per line and session end) against windows the detector evaluated, since every distinct
 * window is evaluated once per model (the scorer's cache), which sets the kernels' share.
 *
 * Each run is repeated `--reps` times (default 3) and the median of each stage is quoted. The machine is
 * shared: the load average is printed at the start and the end.
 *
 *   npx tsx bench/score.ts [--model DIR] [--log FILE] [--reps N] [--cpu] [--precision fp32|bf16] [--no-cli] [--json FILE]
 *
 * --cpu times every stage by the process's CPU time instead of wall time (on a shared, busy machine CPU time
 * moves less; the kernels' CPU time counts all their threads). --precision loads the model in that precision
 * tier (the CLI runs get `--precision` too).
 *
 * Without --model a model is trained first (`deepsentry train LOG --seed 1`, minutes) into a temporary folder.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Precision } from '../lib/backend/binding';
import { IssueLog } from '../lib/logs/issues';
import { openLogInput } from '../lib/logs/pipeline';
import type { LineBatch } from '../lib/logs/lines';
import { ModelScorer } from '../lib/live/model_scorer';
import { SessionScorer } from '../lib/live/session_scorer';
import { Detector } from '../lib/models/detector';
import { ScoringModel } from '../lib/models/scoring';
import { DeepSentry } from '../lib/pipeline/model';
import { scoreLog } from '../lib/pipeline/score';
import { median } from './timing';

export interface ScoreBreakdown {
  log: string;
  model: string;
  precision: Precision;
  lines: number;
  /** sessions.csv rows (session keys) */
  sessions: number;
  /** the model: window length, messages known to the detector, distinct messages in the model's table */
  modelShape: { window: number; known: number; messages: number };
  /** windows read (one per line and scored session end), windows the detector evaluated, detector calls */
  windows: { read: number; evaluated: number; calls: number };
  /** median seconds of each stage */
  stages: Record<string, number>;
  /** every repetition's seconds of each stage */
  samples: Record<string, number[]>;
  /** scoreLog end to end, median lines/s */
  scoreLogLinesPerSecond: number;
  /** `deepsentry score` and `deepsentry --version` as processes, median wall seconds, or null with --no-cli */
  cliSeconds: number | null;
  startSeconds: number | null;
  /** `deepsentry score`'s wall time cut at its marks (PROCESS_PARTS), median seconds of each part; null with --no-cli */
  cliParts: Record<string, number> | null;
  cliPartSamples: Record<string, number[]> | null;
  loadAverage: { start: number; end: number };
  /** what the stages were timed by */
  clock: 'wall' | 'cpu';
}

function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

let clock: 'wall' | 'cpu' = 'wall';

/** Seconds by the chosen clock: wall time, or this process's CPU time (user + system, all its threads). */
function clockSeconds(): number {
  if (clock === 'wall') return Number(process.hrtime.bigint()) / 1e9;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function time<T>(fn: () => Promise<T> | T): Promise<{ s: number; value: T }> {
  const t0 = clockSeconds();
  const value = await fn();
  return { s: clockSeconds() - t0, value };
}

/**
 * Exclusive time per part of the engine: `wrap` puts a timer around a method (on a prototype, so every
 * instance the real run makes is timed); the time between two entries or exits goes to the part innermost at
 * that moment. The wrapped methods are synchronous, so the stack is always the call stack.
 */
class PartClock {
  readonly seconds: Record<string, number> = {};
  /** windows the detector evaluated (rows of Detector.predict), and its calls */
  evaluated = 0;
  calls = 0;
  /** windows read: events ModelScorer's finish handed out with a score */
  read = 0;
  private readonly stack: string[] = [];
  private last = 0;
  private readonly restore: (() => void)[] = [];

  private mark(): void {
    const t = clockSeconds();
    const top = this.stack[this.stack.length - 1];
    if (top !== undefined) this.seconds[top] = (this.seconds[top] ?? 0) + (t - this.last);
    this.last = t;
  }

  /** Times `proto[name]` as part `part` (a function of the part running when it is called, for nested uses). */
  wrap(proto: object, name: string, part: string | ((outer: string | undefined) => string), after?: (args: unknown[], result: unknown) => void): void {
    const target = proto as Record<string, unknown>;
    const original = target[name] as (...a: unknown[]) => unknown;
    if (typeof original !== 'function') throw new Error(`bench/score.ts: ${name} is not a method to time`);
    const self = this;
    target[name] = function (this: unknown, ...args: unknown[]) {
      self.mark();
      self.stack.push(typeof part === 'string' ? part : part(self.stack[self.stack.length - 1]));
      try {
        const r = original.apply(this, args);
        after?.(args, r);
        return r;
      } finally {
        self.mark();
        self.stack.pop();
      }
    };
    this.restore.push(() => (target[name] = original));
  }

  unwrap(): void {
    for (const r of this.restore.reverse()) r();
  }
}

/** scoreLog with the engine's parts timed (see PartClock); returns the parts' seconds and scoreLog's. */
async function timedScoreLog(modelDir: string, log: string, out: string, precision: Precision): Promise<{ parts: PartClock; total: number; sessions: number }> {
  const model = await DeepSentry.load(modelDir, { precision }); // as score sees it: no message met before
  const parts = new PartClock();
  parts.wrap(SessionScorer.prototype, 'addLines', 'sessions');
  parts.wrap(SessionScorer.prototype, 'endAll', 'sessions');
  parts.wrap(ModelScorer.prototype, 'finish', 'windows', (_a, r) => {
    for (const e of r as { unscored: boolean }[]) if (!e.unscored) parts.read++;
  });
  parts.wrap(ScoringModel.prototype, 'scoreWindows', 'scoring');
  parts.wrap(ScoringModel.prototype, 'explainWindows', 'explain');
  parts.wrap(ScoringModel.prototype, 'expectedMessages', 'explain');
  parts.wrap(Detector.prototype, 'predict', (outer) => (outer === 'explain' ? 'explain' : 'kernels'), (a) => {
    parts.evaluated += a[2] as number;
    parts.calls++;
  });
  try {
    const r = await time(() => scoreLog(model, log, out, { force: true, readerThread: false }));
    return { parts, total: r.s, sessions: r.value.sessions };
  } finally {
    parts.unwrap();
  }
}

interface Repetition {
  s: Record<string, number>;
  lines: number;
  sessions: number;
  windows: ScoreBreakdown['windows'];
  modelShape: ScoreBreakdown['modelShape'];
}

/** One repetition of every stage; returns seconds per stage and the counts. */
async function repetition(modelDir: string, log: string, precision: Precision, rep: number): Promise<Repetition> {
  const s: Record<string, number> = {};
  const load = await time(() => DeepSentry.load(modelDir, { precision }));
  s.load = load.s;
  const model = load.value;
  const batches: LineBatch[] = [];
  const read = await time(async () => {
    const input = await openLogInput(log, model.logConfig, new IssueLog(false, 0));
    for await (const b of input.batches) batches.push(b);
    return input;
  });
  s.read = read.s;
  const format = read.value.format;
  const lines = batches.reduce((a, b) => a + b.lines.length, 0);
  const messages: string[] = [];
  s.parse = (
    await time(() => {
      for (const b of batches) {
        for (const l of b.lines) {
          const p = format.parse(l);
          if ('message' in p) messages.push(p.message);
        }
      }
    })
  ).s;
  s.mask = (
    await time(() => {
      for (const m of messages) model.masker.maskText(m);
    })
  ).s;
  batches.length = 0;
  messages.length = 0;
  const modelShape = { window: model.detector.config.window, known: model.detector.knownCount, messages: model.tableSize };
  model.dispose();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-score-'));
  try {
    const run = await timedScoreLog(modelDir, log, out, precision);
    const p = run.parts.seconds;
    s.scoreLog = run.total;
    s.sessions = Math.max(0, (p.sessions ?? 0) - s.parse - s.mask);
    for (const k of ['windows', 'kernels', 'scoring', 'explain']) s[k] = p[k] ?? 0;
    // lines.csv: scoreLog with it against scoreLog without it, both without the timers (wrapping and unwrapping the
    // engine's methods makes V8 drop the code optimised around them: on hdfs-dev the timed run took up to ~0.15 s of
    // CPU more than the same run without them, which a difference to the timed run counted as lines.csv), in
    // alternating order (the first of two runs is the colder)
    const plain = async (lines: boolean) => {
      const m = await DeepSentry.load(modelDir, { precision });
      try {
        return (await time(() => scoreLog(m, log, out, { force: true, lines, readerThread: false }))).s;
      } finally {
        m.dispose();
      }
    };
    const [withLines, without] = rep % 2 === 0 ? [await plain(true), await plain(false)] : [await plain(false), await plain(true)].reverse();
    s.linesCsv = Math.max(0, withLines - without);
    s.scoreLogPlain = withLines;
    s.scoreLogNoLines = without;
    // the same scoreLog with reading, parsing and masking in its reader thread (what `deepsentry score` does on a file this size)
    const threaded = await DeepSentry.load(modelDir, { precision });
    s.readerThread = (await time(() => scoreLog(threaded, log, out, { force: true, readerThread: true }))).s;
    threaded.dispose();
    const inside = ['read', 'parse', 'mask', 'sessions', 'windows', 'kernels', 'scoring', 'explain', 'linesCsv'];
    s.output = Math.max(0, s.scoreLog - inside.reduce((a, k) => a + s[k], 0));
    return { s, lines, sessions: run.sessions, windows: { read: run.parts.read, evaluated: run.parts.evaluated, calls: run.parts.calls }, modelShape };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

const BIN = path.join(__dirname, '..', 'bin', 'deepsentry.js');

/** Wall seconds of `deepsentry ARGS` as a process. */
function processSeconds(args: string[]): number {
  const t0 = process.hrtime.bigint();
  execFileSync(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  return seconds(t0);
}

/** The parts of `deepsentry score`'s wall time: each ends at a mark (lib/marks.ts), the last at the process's end. */
export const PROCESS_PARTS: readonly [part: string, endsAt: string][] = [
  ['node', 'bin'],
  ['cli', 'cli'],
  ['parse', 'command'],
  ['modules', 'modules'],
  ['model', 'model'],
  ['first chunk', 'score:first-chunk'],
  ['scoring', 'score:input-end'],
  ['output', 'score:written'],
  ['exit', 'exit'],
];

/**
 * The CLI in a child that prints its marks at exit: `node -e` runs bin/deepsentry.js as `node BIN ARGS` would
 * (argv the same), with an exit hook writing `performance` marks (ms since the process's start) to stderr.
 */
const WITH_MARKS = `
const bin = ${JSON.stringify(BIN)};
process.argv.splice(1, 0, bin);
process.on('exit', () => {
  const marks = performance.getEntriesByType('mark');
  const m = Object.fromEntries(marks.map((e) => [e.name.replace(/^deepsentry:/, ''), e.startTime]));
  for (const e of marks) if (e.detail) Object.assign(m, e.detail);
  require('node:fs').writeSync(2, '\\nDEEPSENTRY_MARKS ' + JSON.stringify(m) + '\\n');
});
require(bin);`;

/** `deepsentry score` as a process: wall seconds of each PROCESS_PARTS part, and in all. */
function cliRun(modelDir: string, log: string, precision: Precision): Record<string, number> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-score-cli-'));
  try {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ['-e', WITH_MARKS, 'score', log, '--model', modelDir, '--out', out, '--force', '-q', '--precision', precision], { encoding: 'utf8' });
    const total = seconds(t0);
    const line = /DEEPSENTRY_MARKS (.*)/.exec(r.stderr ?? '');
    if (r.status !== 0 || !line) throw new Error(`deepsentry score failed (exit ${r.status}): ${r.stderr}`);
    const marks = JSON.parse(line[1]) as Record<string, number>;
    const parts: Record<string, number> = { total };
    let prev = 0;
    for (const [part, end] of PROCESS_PARTS) {
      const at = end === 'exit' ? total * 1000 : marks[end];
      if (at === undefined) throw new Error(`deepsentry score did not mark ${end} (a log under 4 MiB is read without the reader thread: no first chunk)`);
      parts[part] = (at - prev) / 1000;
      prev = at;
    }
    // of the scoring, the time the main thread waited for the reader thread's chunks
    parts.readerWait = (marks.readerWaitMs ?? 0) / 1000;
    return parts;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

export async function runScoreBench(o: { model?: string; log?: string; reps?: number; cli?: boolean; cpu?: boolean; precision?: Precision }): Promise<ScoreBreakdown> {
  clock = o.cpu ? 'cpu' : 'wall';
  const precision = o.precision ?? 'fp32';
  const data = process.env.DEEPSENTRY_DATA_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'data');
  const log = o.log ?? path.join(data, 'hdfs-dev', 'HDFS.log');
  const start = os.loadavg()[0];
  let modelDir = o.model;
  if (modelDir === undefined) {
    modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-score-model-'));
    console.log(`training a model on ${log} (deepsentry train --seed 1) into ${modelDir} …`);
    execFileSync(process.execPath, [BIN, 'train', log, '--seed', '1', '--out', modelDir, '--force', '-q'], { stdio: 'inherit' });
  }
  const reps = o.reps ?? 3;
  const samples: Record<string, number[]> = {};
  let counts: Omit<Repetition, 's'> = { lines: 0, sessions: 0, windows: { read: 0, evaluated: 0, calls: 0 }, modelShape: { window: 0, known: 0, messages: 0 } };
  for (let r = 0; r < reps; r++) {
    const x = await repetition(modelDir, log, precision, r);
    counts = x;
    for (const [k, v] of Object.entries(x.s)) (samples[k] ??= []).push(v);
    console.log(`  repetition ${r + 1}/${reps}: scoreLog ${x.s.scoreLog.toFixed(2)} s (load average ${os.loadavg()[0].toFixed(2)})`);
  }
  const cli: number[] = [];
  const startUp: number[] = [];
  const cliPartSamples: Record<string, number[]> = {};
  if (o.cli !== false) {
    for (let r = 0; r < reps; r++) {
      startUp.push(processSeconds(['--version']));
      const parts = cliRun(modelDir, log, precision);
      cli.push(parts.total);
      for (const [k, v] of Object.entries(parts)) if (k !== 'total') (cliPartSamples[k] ??= []).push(v);
    }
  }
  const stages = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  return {
    log,
    model: modelDir,
    precision,
    lines: counts.lines,
    sessions: counts.sessions,
    modelShape: counts.modelShape,
    windows: counts.windows,
    stages,
    samples,
    scoreLogLinesPerSecond: counts.lines / stages.scoreLog,
    cliSeconds: cli.length > 0 ? median(cli) : null,
    startSeconds: startUp.length > 0 ? median(startUp) : null,
    cliParts: cli.length > 0 ? Object.fromEntries(Object.entries(cliPartSamples).map(([k, v]) => [k, median(v)])) : null,
    cliPartSamples: cli.length > 0 ? cliPartSamples : null,
    loadAverage: { start, end: os.loadavg()[0] },
    clock,
  };
}

/** The breakdown as a Markdown table: median ms per stage, its share of scoreLog, and lines/s if it ran alone. */
export function formatBreakdown(b: ScoreBreakdown): string {
  const order = ['read', 'parse', 'mask', 'sessions', 'windows', 'kernels', 'scoring', 'explain', 'linesCsv', 'output'];
  const rows = order.map((k) => {
    const s = b.stages[k];
    return `| ${k === 'linesCsv' ? 'lines.csv' : k} | ${(s * 1000).toFixed(0)} | ${((100 * s) / b.stages.scoreLog).toFixed(1)} % | ${s > 0 ? Math.round(b.lines / s).toLocaleString('en-US') : '—'} |`;
  });
  const lines = [
    `| stage | median ms (${b.clock === 'cpu' ? 'CPU' : 'wall'}) | share of scoreLog | lines/s alone |`,
    '|---|---|---|---|',
    ...rows,
    `| **scoreLog end to end** | ${(b.stages.scoreLog * 1000).toFixed(0)} | 100 % | ${Math.round(b.scoreLogLinesPerSecond).toLocaleString('en-US')} |`,
    `| **scoreLog with the reader thread** | ${(b.stages.readerThread * 1000).toFixed(0)} | ${((100 * b.stages.readerThread) / b.stages.scoreLog).toFixed(0)} % | ${Math.round(b.lines / b.stages.readerThread).toLocaleString('en-US')} |`,
    `| (load the model, before scoring) | ${(b.stages.load * 1000).toFixed(0)} | — | — |`,
  ];
  if (b.startSeconds !== null) lines.push(`| \`deepsentry --version\` process (wall: the start alone) | ${(b.startSeconds * 1000).toFixed(0)} | — | — |`);
  if (b.cliSeconds !== null) lines.push(`| **\`deepsentry score\` process** (wall) | ${(b.cliSeconds * 1000).toFixed(0)} | — | ${Math.round(b.lines / b.cliSeconds).toLocaleString('en-US')} |`);
  if (b.cliParts !== null && b.cliSeconds !== null) {
    // the medians of the parts need not add up to the median of the whole
    lines.push('', `\`deepsentry score\` as a process, its wall time by part (medians; lib/marks.ts):`, '', '| part | median ms (wall) | share of the process |', '|---|---|---|');
    for (const [part] of PROCESS_PARTS) {
      lines.push(`| ${part} | ${(b.cliParts[part] * 1000).toFixed(0)} | ${((100 * b.cliParts[part]) / b.cliSeconds).toFixed(1)} % |`);
      if (part === 'scoring') lines.push(`| … of which waiting for the reader thread | ${(b.cliParts.readerWait * 1000).toFixed(0)} | ${((100 * b.cliParts.readerWait) / b.cliSeconds).toFixed(1)} % |`);
    }
    const before = ['node', 'cli', 'parse', 'modules', 'model', 'first chunk'].reduce((a, k) => a + (b.cliParts as Record<string, number>)[k], 0);
    lines.push(`| **before the first line is scored** | ${(before * 1000).toFixed(0)} | ${((100 * before) / b.cliSeconds).toFixed(1)} % |`);
  }
  return lines.join('\n');
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      log: { type: 'string' },
      reps: { type: 'string' },
      cpu: { type: 'boolean', default: false },
      precision: { type: 'string', default: 'fp32' },
      'no-cli': { type: 'boolean', default: false },
      json: { type: 'string' },
    },
    strict: true,
  });
  const reps = values.reps === undefined ? 3 : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) {
    console.error(`bench/score.ts: --reps ${JSON.stringify(values.reps)} is not a positive whole number`);
    process.exit(2);
  }
  if (values.precision !== 'fp32' && values.precision !== 'bf16') {
    console.error(`bench/score.ts: --precision ${JSON.stringify(values.precision)} is not fp32 or bf16`);
    process.exit(2);
  }
  runScoreBench({ model: values.model, log: values.log, reps, cli: !values['no-cli'], cpu: values.cpu, precision: values.precision }).then(
    (b) => {
      const w = b.windows;
      console.log(
        `\n${b.log}: ${b.lines} lines, ${b.sessions} session keys; ${w.read} windows read, ${w.evaluated} evaluated by the detector in ${w.calls} calls ` +
          `(each evaluation stands for ${(w.read / Math.max(1, w.evaluated)).toFixed(1)} windows: a distinct window is evaluated once per model)`,
      );
      console.log(`model: window ${b.modelShape.window}, ${b.modelShape.known} messages known to the detector, ${b.modelShape.messages} ids in its table; precision ${b.precision}`);
      console.log(`load average ${b.loadAverage.start.toFixed(2)} → ${b.loadAverage.end.toFixed(2)} on ${os.cpus().length} cores; medians of ${b.samples.scoreLog.length}\n`);
      console.log(formatBreakdown(b));
      if (values.json) fs.writeFileSync(values.json, JSON.stringify(b, null, 2) + '\n');
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
