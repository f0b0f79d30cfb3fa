/**
 * Where the time of `deepsentry score` goes, on a log and a trained model (default: hdfs-dev and a model
 * trained on it). Each stage of the score path is timed on its own, with the project's own components, in the
 * order scoreLog (lib/pipeline/score.ts) runs them; then scoreLog end to end, and the CLI as a user runs it:
 *
 *   load      DeepSentry.load: model files, backend, message table
 *   read      openLogInput: file → line batches (I/O, line split, UTF-8 checks)
 *   parse     the format's parse of every line (timestamp, fields, message)
 *   mask      the masking rules on every parsed message
 *   sessions  the rest of LogProcessor: interning masked messages, session keys, open/close sessions
 *   ids       model.messageId of each distinct message (tokenize + encode the ones the model never saw)
 *   windows   collectWindows over each batch of 512 closed sessions (score's batch): distinct windows
 *   kernels   Detector.predict on the distinct windows (BiLSTM + Dense on the native backend)
 *   scoring   the rest of Detector.scoreWindows: every window's logits against the K known messages (TypeScript)
 *   combine   the rest of DeepSentry.scoreSessions: line scores per session, novelty, sequence and count terms
 *   explain   explainSessions of the flagged sessions
 *   lines.csv scoreLog minus scoreLog without lines.csv (`lines: false`): its rows' text, line bookkeeping, writes
 *   output    scoreLog end to end minus all of the above: sessions.csv, per-line records, bookkeeping (a
 *             remainder: under load the other stages' noise lands here, so it can come out as 0)
 *
 * Each stage runs `--reps` times (default 3) and the median is quoted; the window repetition (windows read vs
 * distinct windows scored per batch, and over the whole log) is printed, because it sets the kernels' share. The machine is shared: the load
 * average is printed at the start and the end.
 *
 *   npx tsx bench/score.ts [--model DIR] [--log FILE] [--reps N] [--cpu] [--no-cli] [--json FILE]
 *
 * --cpu times every stage by the process's CPU time instead of wall time (on a shared, busy machine CPU time
 * moves less; the kernels' CPU time counts all their threads).
 *
 * Without --model a model is trained first (`deepsentry train LOG --seed 1`, minutes) into a temporary folder.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { IssueLog } from '../lib/logs/issues';
import { LogProcessor, openLogInput } from '../lib/logs/pipeline';
import type { LineBatch } from '../lib/logs/lines';
import type { ClosedSession } from '../lib/logs/sessions';
import { collectWindows } from '../lib/models/detector';
import { DeepSentry } from '../lib/pipeline/model';
import { scoreLog } from '../lib/pipeline/score';
import { sessionEnded } from '../lib/pipeline/train';
import { median } from './timing';

const BATCH_SESSIONS = 512; // scoreLog's default batch

export interface ScoreBreakdown {
  log: string;
  model: string;
  lines: number;
  sessions: number;
  /** the model: window length, messages known to the detector, distinct messages in the model's table */
  modelShape: { window: number; known: number; messages: number };
  /** windows read, distinct per batch of 512 sessions (what score evaluates), distinct over the whole log */
  windows: { read: number; distinct: number; distinctInLog: number };
  /** median seconds of each stage */
  stages: Record<string, number>;
  /** every repetition's seconds of each stage */
  samples: Record<string, number[]>;
  /** scoreLog end to end, median lines/s */
  scoreLogLinesPerSecond: number;
  /** `deepsentry score` as a process (start, load, score, exit), median seconds, or null with --no-cli */
  cliSeconds: number | null;
  loadAverage: { start: number; end: number };
  /** what the stages were timed by */
  clock: 'wall' | 'cpu';
}

function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Seconds by the chosen clock: wall time, or this process's CPU time (user + system, all its threads). */
function clockSeconds(clock: 'wall' | 'cpu'): number {
  if (clock === 'wall') return Number(process.hrtime.bigint()) / 1e9;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

let clock: 'wall' | 'cpu' = 'wall';

async function time<T>(fn: () => Promise<T> | T): Promise<{ s: number; value: T }> {
  const t0 = clockSeconds(clock);
  const value = await fn();
  return { s: clockSeconds(clock) - t0, value };
}

/** One repetition of every stage; returns seconds per stage and the counts. */
async function repetition(modelDir: string, log: string): Promise<{ s: Record<string, number>; lines: number; sessions: number; windows: ScoreBreakdown['windows']; modelShape: ScoreBreakdown['modelShape'] }> {
  const s: Record<string, number> = {};
  const load = await time(() => DeepSentry.load(modelDir));
  s.load = load.s;
  const model = load.value;
  const config = model.logConfig;
  const batches: LineBatch[] = [];
  const read = await time(async () => {
    const input = await openLogInput(log, config, new IssueLog(false, 0));
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
      for (const m of messages) model.masker.mask(m);
    })
  ).s;
  const closed: ClosedSession[] = [];
  const proc = new LogProcessor(config, { issues: new IssueLog(false, 0), onSession: (x) => closed.push(x) });
  const process_ = await time(() => {
    for (const b of batches) proc.processBatch(b, log, format);
    proc.finish();
  });
  s.sessions = Math.max(0, process_.s - s.parse - s.mask);
  const toModel: number[] = [];
  s.ids = (
    await time(() => {
      for (const m of proc.messages.entries) toModel[m.id] = model.messageId(m.text);
    })
  ).s;
  const idle = config.session.idleTimeoutMs;
  const inputs = closed.map((x) => ({ messageIds: x.messageIds.map((pid) => toModel[pid]), ended: sessionEnded(x.reason, idle, x.lastTs) }));
  const W = model.detector.config.window;
  const table = model.messageTable();
  let windows = 0;
  let distinct = 0;
  s.windows = 0;
  s.kernels = 0;
  s.scoring = 0;
  s.combine = 0;
  s.explain = 0;
  for (let i = 0; i < inputs.length; i += BATCH_SESSIONS) {
    const batch = inputs.slice(i, i + BATCH_SESSIONS);
    const ws = await time(() => collectWindows(batch.map((x) => x.messageIds), W, batch.map((x) => x.ended)));
    s.windows += ws.s;
    distinct += ws.value.counts.length;
    for (const c of ws.value.counts) windows += c;
    s.kernels += (await time(() => model.detector.predict(table, ws.value.ids, ws.value.counts.length))).s;
    const sw = await time(() => model.detector.scoreWindows(table, ws.value.ids, ws.value.counts.length));
    const all = await time(() => model.scoreSessions(batch));
    const predicted = (await time(() => model.detector.predict(table, ws.value.ids, ws.value.counts.length))).s;
    s.scoring += Math.max(0, sw.s - predicted);
    s.combine += Math.max(0, all.s - sw.s - ws.s);
    const flagged = batch.map((x, k) => ({ messageIds: x.messageIds, lineScores: all.value.lineScores[k], score: all.value.sessionScores[k] })).filter((x) => x.score >= model.threshold);
    s.explain += (await time(() => model.explainSessions(flagged))).s;
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-score-'));
  try {
    const fresh = await DeepSentry.load(modelDir); // as score sees it: no message met before
    s.scoreLog = (await time(() => scoreLog(fresh, log, out, { force: true }))).s;
    const noLines = await DeepSentry.load(modelDir);
    s.linesCsv = Math.max(0, s.scoreLog - (await time(() => scoreLog(noLines, log, out, { force: true, lines: false }))).s);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  const inside = ['read', 'parse', 'mask', 'sessions', 'ids', 'windows', 'kernels', 'scoring', 'combine', 'explain'];
  s.output = Math.max(0, s.scoreLog - inside.reduce((a, k) => a + s[k], 0) - s.linesCsv);
  const distinctInLog = collectWindows(inputs.map((x) => x.messageIds), W, inputs.map((x) => x.ended)).counts.length;
  const modelShape = { window: W, known: model.detector.knownCount, messages: model.tableSize };
  return { s, lines, sessions: inputs.length, windows: { read: windows, distinct, distinctInLog }, modelShape };
}

function cliSeconds(modelDir: string, log: string): number {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-score-cli-'));
  try {
    const bin = path.join(__dirname, '..', 'bin', 'deepsentry.js');
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, [bin, 'score', log, '--model', modelDir, '--out', out, '--force', '-q'], { stdio: 'inherit' });
    return seconds(t0);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

export async function runScoreBench(o: { model?: string; log?: string; reps?: number; cli?: boolean; cpu?: boolean }): Promise<ScoreBreakdown> {
  clock = o.cpu ? 'cpu' : 'wall';
  const data = process.env.DEEPSENTRY_DATA_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'data');
  const log = o.log ?? path.join(data, 'hdfs-dev', 'HDFS.log');
  const start = os.loadavg()[0];
  let modelDir = o.model;
  if (modelDir === undefined) {
    modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-score-model-'));
    console.log(`training a model on ${log} (deepsentry train --seed 1) into ${modelDir} …`);
    execFileSync(process.execPath, [path.join(__dirname, '..', 'bin', 'deepsentry.js'), 'train', log, '--seed', '1', '--out', modelDir, '--force', '-q'], { stdio: 'inherit' });
  }
  const reps = o.reps ?? 3;
  const samples: Record<string, number[]> = {};
  let counts: Omit<Awaited<ReturnType<typeof repetition>>, 's'> = { lines: 0, sessions: 0, windows: { read: 0, distinct: 0, distinctInLog: 0 }, modelShape: { window: 0, known: 0, messages: 0 } };
  for (let r = 0; r < reps; r++) {
    const x = await repetition(modelDir, log);
    counts = x;
    for (const [k, v] of Object.entries(x.s)) (samples[k] ??= []).push(v);
    console.log(`  repetition ${r + 1}/${reps}: scoreLog ${x.s.scoreLog.toFixed(2)} s (load average ${os.loadavg()[0].toFixed(2)})`);
  }
  const cli: number[] = [];
  if (o.cli !== false) for (let r = 0; r < reps; r++) cli.push(cliSeconds(modelDir, log));
  const stages = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  return {
    log,
    model: modelDir,
    lines: counts.lines,
    sessions: counts.sessions,
    modelShape: counts.modelShape,
    windows: counts.windows,
    stages,
    samples,
    scoreLogLinesPerSecond: counts.lines / stages.scoreLog,
    cliSeconds: cli.length > 0 ? median(cli) : null,
    loadAverage: { start, end: os.loadavg()[0] },
    clock,
  };
}

/** The breakdown as a Markdown table: median ms per stage, its share of scoreLog, and lines/s if it ran alone. */
export function formatBreakdown(b: ScoreBreakdown): string {
  const order = ['read', 'parse', 'mask', 'sessions', 'ids', 'windows', 'kernels', 'scoring', 'combine', 'explain', 'linesCsv', 'output'];
  const rows = order.map((k) => {
    const s = b.stages[k];
    return `| ${k} | ${(s * 1000).toFixed(0)} | ${((100 * s) / b.stages.scoreLog).toFixed(1)} % | ${s > 0 ? Math.round(b.lines / s).toLocaleString('en-US') : '—'} |`;
  });
  const lines = [
    `| stage | median ms (${b.clock === 'cpu' ? 'CPU' : 'wall'}) | share of scoreLog | lines/s alone |`,
    '|---|---|---|---|',
    ...rows,
    `| **scoreLog end to end** | ${(b.stages.scoreLog * 1000).toFixed(0)} | 100 % | ${Math.round(b.scoreLogLinesPerSecond).toLocaleString('en-US')} |`,
    `| (load the model, before scoring) | ${(b.stages.load * 1000).toFixed(0)} | — | — |`,
  ];
  if (b.cliSeconds !== null) lines.push(`| **\`deepsentry score\` process** (wall) | ${(b.cliSeconds * 1000).toFixed(0)} | — | ${Math.round(b.lines / b.cliSeconds).toLocaleString('en-US')} |`);
  return lines.join('\n');
}

if (require.main === module) {
  const { values } = parseArgs({
    options: { model: { type: 'string' }, log: { type: 'string' }, reps: { type: 'string' }, cpu: { type: 'boolean', default: false }, 'no-cli': { type: 'boolean', default: false }, json: { type: 'string' } },
    strict: true,
  });
  const reps = values.reps === undefined ? 3 : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) {
    console.error(`bench/score.ts: --reps ${JSON.stringify(values.reps)} is not a positive whole number`);
    process.exit(2);
  }
  runScoreBench({ model: values.model, log: values.log, reps, cli: !values['no-cli'], cpu: values.cpu }).then(
    (b) => {
      console.log(`\n${b.log}: ${b.lines} lines, ${b.sessions} sessions, ${b.windows.read} windows read, ${b.windows.distinct} distinct (scored) in batches of ${BATCH_SESSIONS} sessions: each distinct window stands for ${(b.windows.read / Math.max(1, b.windows.distinct)).toFixed(1)}; ${b.windows.distinctInLog} distinct over the whole log`);
      console.log(`model: window ${b.modelShape.window}, ${b.modelShape.known} messages known to the detector, ${b.modelShape.messages} ids in its table`);
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
