/**
 * Test fixtures for the evaluation tests: real logs scored by a simple, honest, unsupervised baseline (not the
 * product's model), written as a scores directory in the on-disk format lib/eval/scores.ts reads.
 *
 * Baseline ("contains a rare event", the rule the data README mentions): each line's message is mapped to
 * its event template (the loghub templates file for HDFS; digits masked for BGL), event frequencies are
 * counted over the whole log WITHOUT labels, a line scores −log10(frequency of its event) and a session
 * scores the maximum over its lines; the decision flags events rarer than 0.1% (score ≥ 3).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BGL_LOG, HDFS_DEV_LOG, HDFS_TEMPLATES } from './data';
import { tempDir } from './tmp';

export const BASELINE_THRESHOLD = 3; // −log10(0.001)

interface ScoredLine {
  lineNo: number;
  session: string;
  event: string;
  ts: string;
}

/** Scores lines by the rarity of their event and writes sessions.csv + lines.csv into `dir`. */
function writeScores(dir: string, lines: ScoredLine[]): void {
  const freq = new Map<string, number>();
  for (const l of lines) freq.set(l.event, (freq.get(l.event) ?? 0) + 1);
  const n = lines.length;
  const score = (e: string) => -Math.log10(freq.get(e)! / n);
  const sessions = new Map<string, { score: number; lines: number; first: string; last: string }>();
  const out: string[] = ['line_no,session,score,anomaly'];
  for (const l of lines) {
    const s = score(l.event);
    out.push(`${l.lineNo},${l.session},${s},${s >= BASELINE_THRESHOLD ? 1 : 0}`);
    if (!l.session) continue;
    const cur = sessions.get(l.session);
    if (!cur) sessions.set(l.session, { score: s, lines: 1, first: l.ts, last: l.ts });
    else {
      cur.score = Math.max(cur.score, s);
      cur.lines++;
      cur.last = l.ts;
    }
  }
  const sOut = ['session,score,anomaly,lines,first_ts,last_ts'];
  for (const [id, v] of sessions) sOut.push(`${id},${v.score},${v.score >= BASELINE_THRESHOLD ? 1 : 0},${v.lines},${v.first},${v.last}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'lines.csv'), out.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'sessions.csv'), sOut.join('\n') + '\n');
}

/** HDFS templates as anchored regexes (`<*>` = any text), longest template first so specific ones win. */
function hdfsTemplates(): { id: string; re: RegExp }[] {
  const rows = fs.readFileSync(HDFS_TEMPLATES, 'utf8').trim().split('\n').slice(1);
  return rows
    .map((r) => {
      const c = r.indexOf(',');
      const tpl = r.slice(c + 1).replace(/^"|"$/g, '');
      const re = new RegExp('^' + tpl.split('<*>').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
      return { id: r.slice(0, c), re, len: tpl.length };
    })
    .sort((a, b) => b.len - a.len)
    .map(({ id, re }) => ({ id, re }));
}

let hdfsCache: string | null = null;

/** hdfs-dev/HDFS.log scored by the baseline; built once per test run. Returns the scores directory. */
export function hdfsBaselineScores(): string {
  if (hdfsCache) return hdfsCache;
  const tpls = hdfsTemplates();
  const text = fs.readFileSync(HDFS_DEV_LOG, 'utf8');
  const lines: ScoredLine[] = [];
  const seen = new Map<string, string>(); // masked content → event id
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    if (raw === '') continue;
    const m = /^(\d{6}) (\d{6}) \d+ \w+ [^:]+: (.*)$/.exec(raw);
    if (!m) throw new Error(`fixture: HDFS.log:${lineNo} does not parse`);
    const content = m[3]!;
    const key = content.replace(/blk_-?\d+/g, 'B').replace(/\d+/g, '0');
    let event = seen.get(key);
    if (event === undefined) {
      event = tpls.find((t) => t.re.test(content))?.id ?? `?${key}`;
      seen.set(key, event);
    }
    const blk = /blk_-?\d+/.exec(content);
    lines.push({ lineNo, session: blk ? blk[0] : '', event, ts: `${m[1]} ${m[2]}` });
  }
  const dir = tempDir('hdfs-scores');
  writeScores(dir, lines);
  hdfsCache = dir;
  // shared by several test files in one run; removed when the run ends
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** BGL_2k.log scored by the baseline, sessions = node (field 4); labels stay in the log's first field. */
export function bglBaselineScores(): string {
  const text = fs.readFileSync(BGL_LOG, 'utf8');
  const lines: ScoredLine[] = [];
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    if (raw.trim() === '') continue;
    const f = raw.split(/\s+/);
    const content = f.slice(9).join(' ');
    lines.push({ lineNo, session: f[3]!, event: content.replace(/0x[0-9a-f]+/gi, 'H').replace(/\d+/g, '0'), ts: f[4]! });
  }
  const dir = tempDir('bgl-scores');
  writeScores(dir, lines);
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Reads a CSV written above into rows of fields (header dropped). */
export function readCsvRows(file: string): string[][] {
  return fs.readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
}
