/**
 * Accuracy by protocols that cannot be tuned to one split (`npm run bench:accuracy`). Each protocol trains a
 * model on one part of a labelled log WITHOUT its labels (lib/pipeline's trainFromPrepared, exactly as
 * `deepsentry train` does), scores the other part with scoreLog (as `deepsentry score` does) and measures the
 * scored sessions against the labels with lib/eval's metrics:
 *
 *   hdfs-time-fwd   hdfs-dev: the earlier half of the blocks (by first line) trains, the later half is scored
 *   hdfs-time-rev   hdfs-dev: the later half trains, the earlier half is scored
 *   hdfs-fold-0..4  hdfs-dev: blocks split in 5 folds by a hash of the block id; 4 folds train, the fifth is scored
 *   render-time     hdfs-render-dev: the earlier half trains, the later half is scored
 *
 * Per protocol and seed: F1 (P, R, TP/FP/FN) at the model's saved threshold, the best F1 over all thresholds,
 * ROC-AUC and AP; per metric the mean and the worst over every protocol and seed; and the false alarms of all
 * runs grouped by the event that flagged them (a message, or a session's end and the count relation it broke). Results go to
 * bench/results/accuracy-<tag>.json and .md; the raw scores (held-back training scores, scored sessions and
 * labels) to --raw DIR, from which `--rethreshold` compares threshold rules without training again.
 *
 *   npx tsx bench/accuracy.ts [--protocols hdfs-time-fwd,hdfs-fold] [--seeds 1,7,42] [--tag NAME]
 *                             [--set threshold.method=spot --set scoring.counts=false ...] [--normal-only]
 *                             [--raw DIR] [--out DIR] [--keep DIR] [--reuse DIR/TAG] [--feedback N]
 *                             [--set-aside-new false]
 *
 * The scored half is scored as `deepsentry score` scores a file, with its common new messages set aside
 * (scoreLog's setAsideNew, lib/pipeline/score.ts); `--set-aside-new false` scores them as any line.
 *
 * --feedback N then plays an operator who marks the N highest-scoring false alarms of each run normal: they are
 * learnt with `deepsentry feedback`'s code (lib/pipeline/feedback.ts learnNormal, default options, on the log
 * they came from) and the scored sessions are measured again at the same threshold: F1 and AP after, how many
 * other false alarms cleared, anomalies lost and sessions newly flagged. `--feedback-set seen=10` (epochs,
 * learningRate, weight, seen, replay) changes one of learnNormal's options.
 *
 * --reuse scores with the models a `--keep DIR --tag TAG` run kept instead of training them again: only
 * settings that act after training (`--set` of scoring.*, threshold.*, detector.model.temperature /
 * rarityWeight / score) make sense there; scoring.countTimeoutMs and countConfidence mine the count relations
 * again as training does. The threshold is fitted again on the held-back keys (the last
 * threshold.holdout of the training keys by first line, as training holds them back), scored as
 * `deepsentry score` scores them.
 *   npx tsx bench/accuracy.ts --rethreshold --raw DIR --tag NAME --thresholds 'mean-std:3,mean-std:3+gap,spot:1e-3:0.9,...'
 *   npx tsx bench/accuracy.ts --table --tag NAME      (the markdown again from accuracy-NAME.json)
 *   npx tsx bench/accuracy.ts --read-alike            (per protocol, the F1 where the labels' disagreement on
 *                                                      blocks that read alike leaves a detector: readAlike)
 *
 * The labels are read only to select normal training sessions under --normal-only (`--normal-labels`, the
 * protocol of DeepLog and LogAnomaly) and to measure; the data folder is ../shared/data or $DEEPSENTRY_DATA_DIR.
 */
import { promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { useBackend } from '../lib/backend/select';
import { averagePrecision, bestF1Threshold, confusionAt, rates, rocAuc, sweep } from '../lib/eval/metrics';
import { loadSessionLabels } from '../lib/eval/labels';
import { readSessionScores, type SessionWhy } from '../lib/eval/scores';
import { prepareLogs, readPreparedMessages, type PreparedSession } from '../lib/logs/prepared';
import { sessionEnded } from '../lib/logs/sessions';
import { fitThreshold, type ThresholdSpec } from '../lib/models/threshold';
import { resolvePipelineConfig, thresholdSpec, type PipelineConfig } from '../lib/pipeline/config';
import { DeepSentry } from '../lib/pipeline/model';
import { normalOnlySelection } from '../lib/pipeline/run';
import { scoreLog } from '../lib/pipeline/score';
import { learnNormal, type FeedbackOptions } from '../lib/pipeline/feedback';
import { groupByKey, loadSessions, mineCountRelations, rememberNormal, trainFromPrepared } from '../lib/pipeline/train';
import type { CountModel } from '../lib/models/counts';

const DATA = process.env.DEEPSENTRY_DATA_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'data');

interface Protocol {
  name: string;
  dataset: 'hdfs-dev' | 'hdfs-render-dev';
  /** which session keys train (the rest is scored), given all keys in time order of their first line */
  split(keys: string[]): { train: Set<string>; test: Set<string> };
}

/** FNV-1a (32 bit) of a string: a fixed, seed-free hash for the folds. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const half = (keys: string[], later: boolean) => {
  const n = Math.round(keys.length / 2);
  const a = new Set(keys.slice(0, n));
  const b = new Set(keys.slice(n));
  return later ? { train: b, test: a } : { train: a, test: b };
};

export const PROTOCOLS: Protocol[] = [
  { name: 'hdfs-time-fwd', dataset: 'hdfs-dev', split: (k) => half(k, false) },
  { name: 'hdfs-time-rev', dataset: 'hdfs-dev', split: (k) => half(k, true) },
  ...[0, 1, 2, 3, 4].map(
    (f): Protocol => ({
      name: `hdfs-fold-${f}`,
      dataset: 'hdfs-dev',
      split: (keys) => {
        const train = new Set<string>();
        const test = new Set<string>();
        for (const k of keys) (fnv1a(k) % 5 === f ? test : train).add(k);
        return { train, test };
      },
    }),
  ),
  { name: 'render-time', dataset: 'hdfs-render-dev', split: (k) => half(k, false) },
];

/** One protocol × seed. */
/** What `measure` gives: F1, precision, recall and the confusion at a threshold; best F1, ROC-AUC, AP. */
export type Measured = ReturnType<typeof measure>;

export interface AccuracyRow extends Measured {
  protocol: string;
  seed: number;
  trainSessions: number;
  testSessions: number;
  anomalies: number;
  threshold: number;
  thresholdMethod: string;
  trainSeconds: number;
  scoreSeconds: number;
  /**
   * the false alarms (normal sessions flagged at the saved threshold), counted by the event that scored each
   * session highest (alarmEvent); absent in results written before it was recorded
   */
  falseAlarms?: Record<string, number>;
  /** with --feedback N: the run again after an operator marked its N highest-scoring false alarms normal */
  feedback?: FeedbackRow;
}

/**
 * What `deepsentry feedback` did to one run (bench --feedback N): the N highest-scoring false alarms of the scored
 * sessions marked normal (as an operator reviewing the top alerts would), learnt with learnNormal on the log they
 * came from, and the scored sessions measured again at the same threshold.
 */
export interface FeedbackRow extends Measured {
  marked: number;
  /** other false alarms no longer flagged */
  cleared: number;
  /** anomalies no longer flagged */
  lost: number;
  /** the marked sessions and the anomalies lost, counted by the event that flagged them before (alarmEvent) */
  markedBy: Record<string, number>;
  lostBy: Record<string, number>;
  /** the sessions newly flagged, by the event that flags them after */
  raisedBy?: Record<string, number>;
  /** normal sessions newly flagged */
  raised: number;
  seconds: number;
  /**
   * the scored sessions after, judged without the memory of compositions known normal, as `deepsentry live` and
   * the streaming API judge them (they do not apply it): F1, and the marked sessions still flagged
   */
  withoutMemory?: { f1: number; markedFlagged: number };
}

interface Raw {
  protocol: string;
  seed: number;
  ids?: string[];
  held: number[];
  scores: number[];
  labels: number[];
}

function parseArgs(argv: string[]) {
  const o = {
    protocols: null as string[] | null,
    seeds: [1, 7, 42],
    tag: 'default',
    sets: [] as string[],
    normalOnly: false,
    raw: path.join(os.tmpdir(), 'deepsentry-accuracy-raw'),
    out: path.join(__dirname, 'results'),
    rethreshold: false,
    thresholds: 'mean-std:3',
    table: false,
    /** keep each run's model and sessions.csv here (KEEP/<tag>--<protocol>--<seed>/), to read its alarms */
    keep: null as string | null,
    /** score with the models an earlier `--keep DIR --tag FROM` run kept, instead of training (`--reuse DIR/FROM`) */
    reuse: null as string | null,
    fitTemperature: false,
    /** print each protocol's read-alike F1 (readAlike) instead of running */
    readAlike: false,
    /** after scoring, mark the N highest-scoring false alarms normal (learnNormal) and measure again */
    feedback: 0,
    /** score the scored half with its common new messages set aside, as `deepsentry score` does a file */
    setAsideNew: true,
    /** feedback options other than the defaults (`--feedback-set seen=10`): epochs, learningRate, weight, seen, replay */
    feedbackSets: {} as Record<string, number>,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--protocols') o.protocols = v().split(',');
    else if (a === '--seeds') o.seeds = v().split(',').map(Number);
    else if (a === '--tag') o.tag = v();
    else if (a === '--set') o.sets.push(v());
    else if (a === '--normal-only') o.normalOnly = true;
    else if (a === '--keep') o.keep = v();
    else if (a === '--reuse') o.reuse = v();
    else if (a === '--fit-temperature') o.fitTemperature = true;
    else if (a === '--feedback') o.feedback = Number(v());
    else if (a === '--feedback-set') {
      const [k, x] = v().split('=');
      if (!['epochs', 'learningRate', 'weight', 'seen', 'replay'].includes(k as string) || !Number.isFinite(Number(x))) throw new Error(`--feedback-set takes epochs|learningRate|weight|seen|replay=NUMBER, not ${k}=${x}`);
      o.feedbackSets[k as string] = Number(x);
    }
    else if (a === '--raw') o.raw = v();
    else if (a === '--out') o.out = v();
    else if (a === '--rethreshold') o.rethreshold = true;
    else if (a === '--set-aside-new') o.setAsideNew = v() !== 'false';
    else if (a === '--thresholds') o.thresholds = v();
    else if (a === '--table') o.table = true;
    else if (a === '--read-alike') o.readAlike = true;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

/** `a.b.c=value` → { a: { b: { c: value } } } merged into doc (value parsed as JSON when it parses). */
function setPath(doc: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq < 0) throw new Error(`--set ${assignment}: expected key=value`);
  const keys = assignment.slice(0, eq).split('.');
  const raw = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  let node = doc;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
  node[keys[keys.length - 1]] = value;
}

function selected(names: string[] | null): Protocol[] {
  if (!names) return PROTOCOLS;
  const out = PROTOCOLS.filter((p) => names.some((n) => p.name === n || p.name.startsWith(n)));
  if (out.length === 0) throw new Error(`no protocol matches ${names.join(',')} (known: ${PROTOCOLS.map((p) => p.name).join(', ')})`);
  return out;
}

/** Metrics of scores against labels at `threshold`. */
export function measure(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number) {
  const sw = sweep(scores, labels, 'accuracy');
  const c = confusionAt(sw, threshold);
  const r = rates(c, 1);
  const best = bestF1Threshold(sw);
  const bc = best ? rates(best.confusion, 1).f1 : 0;
  return { f1: r.f1, precision: r.precision, recall: r.recall, tp: c.tp, fp: c.fp, fn: c.fn, bestF1: bc, rocAuc: rocAuc(sw) ?? NaN, ap: averagePrecision(sw) ?? NaN };
}

const METRICS = ['f1', 'bestF1', 'rocAuc', 'ap'] as const;

/** The markdown table: one row per protocol × seed, then mean and worst of each metric. */
export function markdownTable(rows: AccuracyRow[], title: string): string {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '—');
  const lines = [
    `### ${title}`,
    '',
    '| protocol | seed | F1 at saved threshold (P / R; TP FP FN) | best F1 | ROC-AUC | AP |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.protocol} | ${r.seed} | ${f(r.f1)} (${f(r.precision)} / ${f(r.recall)}; ${r.tp} ${r.fp} ${r.fn}) | ${f(r.bestF1)} | ${f(r.rocAuc)} | ${f(r.ap)} |`),
  ];
  const agg = summary(rows);
  lines.push(`| **mean** | | **${f(agg.mean.f1)}** | ${f(agg.mean.bestF1)} | ${f(agg.mean.rocAuc)} | ${f(agg.mean.ap)} |`);
  lines.push(`| **worst** | | **${f(agg.worst.f1)}** | ${f(agg.worst.bestF1)} | ${f(agg.worst.rocAuc)} | ${f(agg.worst.ap)} |`);
  // Per protocol over its seeds: mean (worst)
  const names = [...new Set(rows.map((r) => r.protocol))];
  lines.push('', '| protocol | seeds | F1 at saved threshold | best F1 | ROC-AUC | AP |', '|---|---|---|---|---|---|');
  for (const n of names) {
    const rs = rows.filter((r) => r.protocol === n);
    const a = summary(rs);
    const cell = (m: (typeof METRICS)[number]) => `${f(a.mean[m])} (${f(a.worst[m])})`;
    lines.push(`| ${n} | ${rs.map((r) => r.seed).join(', ')} | ${cell('f1')} | ${cell('bestF1')} | ${cell('rocAuc')} | ${cell('ap')} |`);
  }
  lines.push('', 'per protocol: mean over the seeds (worst in brackets)');
  return lines.join('\n') + '\n' + feedbackTable(rows);
}

/** Anomalies lost whose flagging event (alarmEvent) also flagged a marked false alarm: the labels disagree on them. */
function lostAsMarked(x: FeedbackRow): number {
  return Object.entries(x.lostBy).reduce((a, [k, n]) => a + (x.markedBy[k] ? n : 0), 0);
}

/** With --feedback: per run, before → after the operator's marks, and the totals (empty without). */
function feedbackTable(rows: AccuracyRow[]): string {
  const fb = rows.filter((r) => r.feedback);
  if (fb.length === 0) return '';
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '—');
  const n = Math.max(...fb.map((r) => (r.feedback as FeedbackRow).marked));
  const lines = [
    '',
    `After feedback: the ${n} highest-scoring false alarms of each run marked normal (learnNormal, \`deepsentry feedback\`'s defaults), the scored sessions measured again at the same threshold:`,
    '',
    '| protocol | seed | marked | F1 before → after (TP FP FN after) | AP before → after | other false alarms cleared | anomalies lost (of them flagged by the same event as a marked session) | newly flagged | without the memory (as live judges): F1 after, marked still flagged |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const plainOf = (x: FeedbackRow) => (x.withoutMemory ? `${f(x.withoutMemory.f1)}, ${x.withoutMemory.markedFlagged}` : '—');
  for (const r of fb) {
    const x = r.feedback as FeedbackRow;
    lines.push(`| ${r.protocol} | ${r.seed} | ${x.marked} | ${f(r.f1)} → ${f(x.f1)} (${x.tp} ${x.fp} ${x.fn}) | ${f(r.ap)} → ${f(x.ap)} | ${x.cleared} of ${Math.max(0, r.fp - x.marked)} | ${x.lost} (${lostAsMarked(x)}) | ${x.raised} | ${plainOf(x)} |`);
  }
  const sum = (g: (x: FeedbackRow) => number) => fb.reduce((a, r) => a + g(r.feedback as FeedbackRow), 0);
  const mean = (g: (r: AccuracyRow) => number) => fb.reduce((a, r) => a + g(r), 0) / fb.length;
  const worst = (g: (r: AccuracyRow) => number) => Math.min(...fb.map(g));
  const plainRows = fb.filter((r) => (r.feedback as FeedbackRow).withoutMemory !== undefined);
  const plainMean = plainRows.length === fb.length ? `${f(mean((r) => (r.feedback as FeedbackRow).withoutMemory?.f1 ?? NaN))} (${f(worst((r) => (r.feedback as FeedbackRow).withoutMemory?.f1 ?? NaN))}), ${sum((x) => x.withoutMemory?.markedFlagged ?? 0)}` : '—';
  lines.push(
    `| **mean (worst)** | | ${sum((x) => x.marked)} | ${f(mean((r) => r.f1))} (${f(worst((r) => r.f1))}) → **${f(mean((r) => (r.feedback as FeedbackRow).f1))}** (${f(worst((r) => (r.feedback as FeedbackRow).f1))}) | ${f(mean((r) => r.ap))} → ${f(mean((r) => (r.feedback as FeedbackRow).ap))} | ${sum((x) => x.cleared)} of ${fb.reduce((a, r) => a + Math.max(0, r.fp - (r.feedback as FeedbackRow).marked), 0)} | ${sum((x) => x.lost)} (${sum(lostAsMarked)}) | ${sum((x) => x.raised)} | ${plainMean} |`,
  );
  return lines.join('\n') + '\n';
}

export function summary(rows: AccuracyRow[]): { mean: Record<(typeof METRICS)[number], number>; worst: Record<(typeof METRICS)[number], number> } {
  const mean = {} as Record<(typeof METRICS)[number], number>;
  const worst = {} as Record<(typeof METRICS)[number], number>;
  for (const m of METRICS) {
    const v = rows.map((r) => r[m]);
    mean[m] = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
    worst[m] = Math.min(...v);
  }
  return { mean, worst };
}

/**
 * The event that scored a session highest, as sessions.csv explains it: the masked message of its top line, or
 * for its end the count relation it broke (the relation's left side: which count was off), or the end itself.
 * What the breakdown of false alarms and misses groups by.
 */
export function alarmEvent(why: SessionWhy | null): string {
  if (why === null) return '(no explanation)';
  if (why.message !== '<end of session>') return why.message;
  if (why.reason === '') return '<end of session>';
  return `<end of session>, count relation ${why.reason.split(' held in ')[0]}`;
}

/** Per event (alarmEvent): how many false alarms it flagged, summed over `rows`, and in which protocols. */
function tally(rows: AccuracyRow[]): Array<[string, number, Set<string>]> {
  const by = new Map<string, [number, Set<string>]>();
  for (const r of rows) {
    for (const [k, n] of Object.entries(r.falseAlarms ?? {})) {
      const e = by.get(k) ?? [0, new Set<string>()];
      e[0] += n;
      e[1].add(r.protocol);
      by.set(k, e);
    }
  }
  return [...by.entries()].map(([k, [n, ps]]): [string, number, Set<string>] => [k, n, ps]).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/**
 * What the false alarms of `rows` were, by the event that flagged them: where a default's errors come from,
 * across protocols and seeds, without opening every sessions.csv.
 */
export function alarmTable(rows: AccuracyRow[]): string {
  if (!rows.some((r) => r.falseAlarms !== undefined)) return '';
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const total = rows.reduce((a, r) => a + r.fp, 0);
  return [
    '',
    `False alarms (${total} over ${rows.length} runs), by the event that scored the session highest:`,
    '',
    '| event | false alarms | protocols |',
    '|---|---|---|',
    ...tally(rows).map(([k, n, ps]) => `| ${cell(k)} | ${n} | ${[...ps].join(', ')} |`),
  ].join('\n') + '\n';
}

function parseSpec(spec: string): ThresholdSpec {
  // a trailing `+gap` lifts the rule into the widest band of the held-back tail (lib/models/threshold.ts)
  const gap = spec.endsWith('+gap');
  const [method, p, l] = (gap ? spec.slice(0, -4) : spec).split(':');
  const x = Number(p);
  if (method === 'percentile') return { method, percentile: x, gap };
  if (method === 'mean-std' || method === 'mad') return { method, k: x, gap };
  if (method === 'spot') return { method, risk: x, level: l === undefined ? 0.9 : Number(l), gap };
  throw new Error(`threshold spec ${spec}: expected method:param[+gap]`);
}

/** Compares threshold rules on the raw scores of an earlier run (no training). */
async function rethreshold(o: ReturnType<typeof parseArgs>): Promise<void> {
  const files = (await fsp.readdir(o.raw)).filter((f) => f.startsWith(`${o.tag}--`) && f.endsWith('.json')).sort();
  if (files.length === 0) throw new Error(`no raw results of tag ${o.tag} in ${o.raw}`);
  const raws: Raw[] = await Promise.all(files.map(async (f) => JSON.parse(await fsp.readFile(path.join(o.raw, f), 'utf8')) as Raw));
  const md: string[] = [];
  for (const spec of o.thresholds.split(',')) {
    const rows: AccuracyRow[] = raws.map((r) => {
      const th = fitThreshold(r.held, parseSpec(spec));
      return { protocol: r.protocol, seed: r.seed, trainSeconds: 0, scoreSeconds: 0, trainSessions: 0, testSessions: r.scores.length, anomalies: r.labels.filter((x) => x).length, threshold: th.value, thresholdMethod: spec, ...measure(r.scores, r.labels, th.value) };
    });
    const s = summary(rows);
    // hdfs-time-rev is set apart too: its scored half holds message types its training half never shows (README "Accuracy")
    const x = summary(rows.filter((r) => r.protocol !== 'hdfs-time-rev'));
    md.push(`${spec.padEnd(16)} F1 mean ${s.mean.f1.toFixed(3)} worst ${s.worst.f1.toFixed(3)}; without hdfs-time-rev mean ${x.mean.f1.toFixed(3)} worst ${x.worst.f1.toFixed(3)}  | per run: ${rows.map((r) => `${r.protocol.replace('hdfs-', '')}/${r.seed} ${r.f1.toFixed(3)}(${r.fp}fp,${r.fn}fn)`).join(' ')}`);
  }
  process.stdout.write(md.join('\n') + '\n');
}

/** Rewrites the markdown table of an earlier run from its JSON (`--table --tag NAME`). */
async function rebuildTable(o: ReturnType<typeof parseArgs>): Promise<void> {
  const base = path.join(o.out, `accuracy-${o.tag}`);
  const r = JSON.parse(await fsp.readFile(`${base}.json`, 'utf8')) as { rows: AccuracyRow[]; sets: string[]; normalOnly: boolean; setAsideNew?: boolean; loadAverage: { start: number[]; end: number[] }; cores: number; backend: string };
  // results written before the set-aside scored every line
  const title = `${o.tag}${r.normalOnly ? ' (normal-only training)' : ''}${r.sets.length ? ` [${r.sets.join(' ')}]` : ''}${r.setAsideNew === true ? '' : ' (common new messages scored, not set aside)'}`;
  const md = markdownTable(r.rows, title) + alarmTable(r.rows) + `\nload average ${r.loadAverage.start.map((x) => x.toFixed(2)).join(' ')} at the start, ${r.loadAverage.end.map((x) => x.toFixed(2)).join(' ')} at the end (${r.cores} cores), backend ${r.backend}\n`;
  fs.writeFileSync(`${base}.md`, md);
  process.stdout.write(md);
}

/**
 * A kept model (`--keep`) with the settings of `--set` that act after training applied, and its threshold
 * fitted again on its held-back keys (`trainKeys` in order of their first line: the last threshold.holdout of them).
 */
async function reuseModel(from: string, protocol: string, seed: number, config: PipelineConfig, doc: Record<string, unknown>, trainKeys: string[], log: string, heldDir: string, normalOnly: boolean, prepDir: string, fitT: boolean): Promise<DeepSentry> {
  const dir = path.join(path.dirname(from), `${path.basename(from)}--${protocol}--${seed}`, 'model');
  const model = await DeepSentry.load(dir);
  const set = doc as { scoring?: object; threshold?: object; detector?: { model?: Record<string, unknown> } };
  if (set.scoring) Object.assign(model.config.scoring, config.scoring);
  if (set.threshold) Object.assign(model.config.threshold, config.threshold);
  for (const k of ['temperature', 'rarityWeight', 'score'] as const) {
    if (set.detector?.model?.[k] !== undefined) (model.detector.config as unknown as Record<string, unknown>)[k] = config.detector.model[k];
  }
  const nHold = trainKeys.length >= 2 ? Math.max(1, Math.round(trainKeys.length * config.threshold.holdout)) : 0;
  const held = new Set(trainKeys.slice(trainKeys.length - nHold));
  if ((set.scoring as { countTimeoutMs?: number; countConfidence?: number } | undefined)?.countTimeoutMs !== undefined || (set.scoring as { countConfidence?: number } | undefined)?.countConfidence !== undefined) {
    // The count relations are mined in training: mined again, as training mines them, on the training keys
    // that were not held back.
    const textOf = new Map((await readPreparedMessages(prepDir)).map((m) => [m.id, m.text]));
    const fit = new Set(trainKeys.slice(0, trainKeys.length - nHold));
    const sess = await loadSessions(prepDir, (s) => fit.has(s.key));
    const ids = (s: PreparedSession) => Int32Array.from(s.messages, (id) => model.messageId(textOf.get(id) as string));
    (model as { countModel: CountModel | null }).countModel = mineCountRelations(model.config, model.logConfig, groupByKey(sess).flat(), ids);
  }
  if (fitT) {
    const textOf = new Map((await readPreparedMessages(prepDir)).map((m) => [m.id, m.text]));
    const sess = await loadSessions(prepDir, (s) => held.has(s.key));
    const ids = sess.map((s) => Int32Array.from(s.messages, (id) => model.messageId(textOf.get(id) as string)));
    const T = model.detector.fitTemperature(model.messageTable(), ids, sess.map((s) => sessionEnded(s.end, model.logConfig.session.idleTimeoutMs, s.lastTs)));
    model.detector.config.temperature = T;
    process.stderr.write(`${protocol} seed ${seed}: temperature ${T.toFixed(3)}\n`);
  }
  // The threshold is fitted on what the detector and the count relations make of the held-back keys, as in
  // training: without the known-normal memory (they would all be known by it), which is built after it.
  model.knownNormal = null;
  await fsp.rm(heldDir, { recursive: true, force: true });
  await scoreLog(model, log, heldDir, { selectKey: (k) => held.has(k), lines: false });
  const scores = (await readSessionScores(heldDir)).scores;
  model.thresholds.session = fitThreshold(scores, thresholdSpec(model.config, normalOnly));
  model.heldBackScores = Float64Array.from(scores);
  if (normalOnly) {
    const textOf = new Map((await readPreparedMessages(prepDir)).map((m) => [m.id, m.text]));
    const all = new Set(trainKeys);
    const sess = groupByKey(await loadSessions(prepDir, (s) => all.has(s.key))).flat();
    model.knownNormal = rememberNormal(model, sess, (s) => Int32Array.from(s.messages, (id) => model.messageId(textOf.get(id) as string)), 'normal-labels');
  }
  return model;
}

/**
 * bench --feedback N: the N highest-scoring false alarms among the scored sessions (`ids`, `scores`, `labels`)
 * learnt as normal by learnNormal (`deepsentry feedback`'s code, default options) on the log they came from, the
 * scored sessions scored again and measured at the same threshold. Changes `model`.
 */
async function feedbackRun(model: DeepSentry, log: string, ids: string[], scores: number[], labels: number[], why: Map<string, SessionWhy | null>, n: number, options: Partial<FeedbackOptions>, dir: string, test: Set<string>, setAsideNew: boolean): Promise<FeedbackRow> {
  const t = model.threshold;
  const marked = ids
    .map((id, i) => ({ id, s: scores[i], normal: labels[i] === 0 }))
    .filter((x) => x.normal && x.s >= t)
    .sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : 1))
    .slice(0, n)
    .map((x) => x.id);
  const t0 = process.hrtime.bigint();
  if (marked.length > 0) await learnNormal(model, { ...options, log, sessions: marked });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await scoreLog(model, log, dir, { selectKey: (k) => test.has(k), lines: false, setAsideNew });
  const ss = await readSessionScores(dir);
  await fsp.rm(dir, { recursive: true, force: true });
  // the same, without the memory: what the marked patterns score where it does not apply (live)
  const scoring = model.config.scoring;
  const memory = scoring.knownNormal;
  scoring.knownNormal = false;
  await scoreLog(model, log, dir, { selectKey: (k) => test.has(k), lines: false, setAsideNew });
  scoring.knownNormal = memory;
  const unremembered = await readSessionScores(dir);
  await fsp.rm(dir, { recursive: true, force: true });
  const after = new Map(ss.ids.map((id, i) => [id, ss.scores[i]]));
  const afterPlain = new Map(unremembered.ids.map((id, i) => [id, unremembered.scores[i]]));
  const whyAfter = new Map(ss.ids.map((id, i) => [id, ss.explanation[i] ?? null]));
  const isMarked = new Set(marked);
  const s2 = ids.map((id) => after.get(id) as number);
  let cleared = 0;
  let lost = 0;
  let raised = 0;
  const markedBy: Record<string, number> = {};
  const lostBy: Record<string, number> = {};
  const raisedBy: Record<string, number> = {};
  const by = (o: Record<string, number>, id: string, w = why) => {
    const k = alarmEvent(w.get(id) ?? null);
    o[k] = (o[k] ?? 0) + 1;
  };
  ids.forEach((id, i) => {
    if (isMarked.has(id)) return by(markedBy, id);
    const was = scores[i] >= t;
    const now = s2[i] >= t;
    if (labels[i] === 0 && was && !now) cleared++;
    if (labels[i] === 0 && !was && now) {
      raised++;
      by(raisedBy, id, whyAfter);
    }
    if (labels[i] === 1 && was && !now) {
      lost++;
      by(lostBy, id);
    }
  });
  const withoutMemory = { f1: measure(ids.map((id) => afterPlain.get(id) as number), labels, t).f1, markedFlagged: marked.filter((id) => (afterPlain.get(id) as number) >= t).length };
  return { marked: marked.length, ...measure(s2, labels, t), cleared, lost, raised, markedBy, lostBy, raisedBy, seconds, withoutMemory };
}

/**
 * The messages of HDFS a block's labels disagree on: re-replication (`ask … to replicate`, `Starting thread to
 * transfer`, `Transmitted block`, the copy's `Received block … src: … dest:`) and `Unexpected error trying to
 * delete block`: of the 88 blocks of hdfs-dev holding one, 71 are labelled anomalies and 17 normal. Those
 * messages are rare, which is what an unlabelled detector flags; what sets the normal re-replicated blocks apart
 * (they are not deleted later, the anomalous ones are) is nothing rare or inconsistent in itself.
 * As event ids of event_traces.csv (LogHub's HDFS templates).
 */
const READ_ALIKE_EVENTS = new Set(['E6', 'E16', 'E18', 'E25', 'E20']);

/**
 * `--read-alike`: per protocol, the F1 of flagging every anomaly of the scored half and every normal block that
 * holds a READ_ALIKE_EVENTS message, which a detector flagging what is rare in unlabelled logs cannot tell from
 * the anomalies holding it — where such a detector's F1 at the saved threshold ends up (README, Accuracy).
 */
async function readAlike(o: ReturnType<typeof parseArgs>): Promise<void> {
  const lines = ['| protocol | anomalies scored | normal blocks with a read-alike message | F1 of flagging those and every anomaly |', '|---|---|---|---|'];
  for (const p of selected(o.protocols)) {
    const traces = fs.readFileSync(path.join(DATA, p.dataset, 'event_traces.csv'), 'utf8').split('\n').slice(1).filter(Boolean);
    const byKey = new Map(traces.map((l) => {
      const [k, label, seq] = l.split(',');
      return [k as string, { anomaly: label === 'Anomaly', alike: (seq ?? '').split(' ').some((e) => READ_ALIKE_EVENTS.has(e)) }];
    }));
    const first = new Map<string, number>();
    fs.readFileSync(path.join(DATA, p.dataset, 'HDFS.log'), 'utf8').split('\n').forEach((l, i) => {
      for (const k of l.match(/blk_-?\d+/g) ?? []) if (!first.has(k)) first.set(k, i);
    });
    const keys = [...byKey.keys()].filter((k) => first.has(k)).sort((a, b) => (first.get(a) as number) - (first.get(b) as number));
    const { test } = p.split(keys);
    let tp = 0;
    let fp = 0;
    for (const k of test) {
      const b = byKey.get(k) as { anomaly: boolean; alike: boolean };
      if (b.anomaly) tp++;
      else if (b.alike) fp++;
    }
    lines.push(`| ${p.name} | ${tp} | ${fp} | ${((2 * tp) / (2 * tp + fp)).toFixed(3)} |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.rethreshold) return rethreshold(o);
  if (o.table) return rebuildTable(o);
  if (o.readAlike) return readAlike(o);
  const doc: Record<string, unknown> = {};
  for (const s of o.sets) setPath(doc, s);
  const protocols = selected(o.protocols);
  const sel = useBackend('auto');
  const load0 = os.loadavg();
  await fsp.mkdir(o.raw, { recursive: true });
  await fsp.mkdir(o.out, { recursive: true });
  const rows: AccuracyRow[] = [];
  const work = new Map<string, { dir: string; keys: string[]; labels: Map<string, boolean> }>();
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'deepsentry-accuracy-'));
  try {
    for (const p of protocols) {
      const log = path.join(DATA, p.dataset, 'HDFS.log');
      const labelFile = path.join(DATA, p.dataset, 'anomaly_label.csv');
      for (const seed of o.seeds) {
        const config: PipelineConfig = resolvePipelineConfig({ ...doc, seed }, 'bench --set');
        const wkey = `${p.dataset} ${JSON.stringify(config.logs)}`;
        let w = work.get(wkey);
        if (!w) {
          const dir = path.join(tmp, `prep-${work.size}`);
          await prepareLogs([log], dir, config.logs);
          const keys = groupByKey(await loadSessions(dir)).map((g) => g[0].key);
          w = { dir, keys, labels: (await loadSessionLabels(labelFile)).labels };
          work.set(wkey, w);
        }
        const { train, test } = p.split(w.keys);
        const labels = w.labels;
        const normal = o.normalOnly ? await normalOnlySelection(labelFile, [...train]) : null;
        const trainKeys = normal ? normal.keys : train;
        const t0 = process.hrtime.bigint();
        const model = o.reuse
          ? await reuseModel(o.reuse, p.name, seed, config, doc, w.keys.filter((k) => trainKeys.has(k)), log, path.join(tmp, 'held'), normal !== null, w.dir, o.fitTemperature)
          : await trainFromPrepared(w.dir, { config, select: (s) => trainKeys.has(s.key), ...(normal ? { training: normal.record } : {}) });
        const trainSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const outDir = path.join(tmp, `score-${p.name}-${seed}`);
        const sc = await scoreLog(model, log, outDir, { selectKey: (k) => test.has(k), lines: false, setAsideNew: o.setAsideNew });
        const ss = await readSessionScores(outDir);
        const scores: number[] = [];
        const lab: number[] = [];
        const ids: string[] = [];
        ss.ids.forEach((id, i) => {
          const l = labels.get(id);
          if (l === undefined) return;
          ids.push(id);
          scores.push(ss.scores[i]);
          lab.push(l ? 1 : 0);
        });
        const m = measure(scores, lab, model.threshold);
        // sessions.csv explains the flagged sessions only: the misses have no top event to group by.
        const falseAlarms: Record<string, number> = {};
        ss.ids.forEach((id, i) => {
          if (labels.get(id) !== false || ss.anomaly[i] !== 1) return;
          const k = alarmEvent(ss.explanation[i]);
          falseAlarms[k] = (falseAlarms[k] ?? 0) + 1;
        });
        const row: AccuracyRow = {
          protocol: p.name,
          seed,
          trainSessions: trainKeys.size,
          testSessions: scores.length,
          anomalies: lab.filter((x) => x).length,
          threshold: model.threshold,
          thresholdMethod: model.thresholds.session.method,
          ...m,
          trainSeconds,
          scoreSeconds: sc.seconds,
          falseAlarms,
        };
        if (o.feedback > 0) row.feedback = await feedbackRun(model, log, ids, scores, lab, new Map(ss.ids.map((id, i) => [id, ss.explanation[i] ?? null])), o.feedback, o.feedbackSets, path.join(tmp, `feedback-${p.name}-${seed}`), test, o.setAsideNew);
        rows.push(row);
        const raw: Raw = { protocol: p.name, seed, held: [...(model.heldBackScores ?? [])], ids, scores, labels: lab };
        await fsp.writeFile(path.join(o.raw, `${o.tag}--${p.name}--${seed}.json`), JSON.stringify(raw));
        if (o.keep) {
          const kept = path.join(o.keep, `${o.tag}--${p.name}--${seed}`);
          await fsp.rm(kept, { recursive: true, force: true });
          await model.save(path.join(kept, 'model'));
          await fsp.copyFile(path.join(outDir, 'sessions.csv'), path.join(kept, 'sessions.csv'));
        }
        model.dispose();
        await fsp.rm(outDir, { recursive: true, force: true });
        if (row.feedback) {
          const f = row.feedback;
          process.stderr.write(`${o.tag} ${p.name} seed ${seed}: after marking ${f.marked} false alarms normal: F1 ${f.f1.toFixed(3)} (${f.tp} ${f.fp} ${f.fn}), ${f.cleared} other false alarms cleared, ${f.lost} anomalies lost, ${f.raised} raised, ${f.seconds.toFixed(1)} s\n`);
        }
        process.stderr.write(
          `${o.tag} ${p.name} seed ${seed}: F1 ${m.f1.toFixed(3)} (P ${m.precision.toFixed(3)} R ${m.recall.toFixed(3)}; ${m.tp} ${m.fp} ${m.fn}) best ${m.bestF1.toFixed(3)} AUC ${m.rocAuc.toFixed(4)} AP ${m.ap.toFixed(3)} | train ${trainSeconds.toFixed(1)} s, load ${os.loadavg()[0].toFixed(2)}\n`,
        );
      }
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  const s = summary(rows);
  const title = `${o.tag}${o.normalOnly ? ' (normal-only training)' : ''}${o.sets.length ? ` [${o.sets.join(' ')}]` : ''}${o.setAsideNew ? '' : ' (common new messages scored, not set aside)'}`;
  const result = {
    tag: o.tag,
    sets: o.sets,
    normalOnly: o.normalOnly,
    setAsideNew: o.setAsideNew,
    seeds: o.seeds,
    backend: sel.backend,
    loadAverage: { start: load0, end: os.loadavg() },
    cores: os.cpus().length,
    date: new Date().toISOString(),
    summary: s,
    rows,
  };
  const base = path.join(o.out, `accuracy-${o.tag}`);
  fs.writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
  const md = markdownTable(rows, title) + alarmTable(rows) + `\nload average ${load0.map((x) => x.toFixed(2)).join(' ')} at the start, ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the end (${os.cpus().length} cores), backend ${sel.backend}\n`;
  fs.writeFileSync(`${base}.md`, md);
  process.stdout.write(md);
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
