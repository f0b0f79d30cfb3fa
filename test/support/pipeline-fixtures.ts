/**
 * Shared fixtures of the pipeline tests: a slice of the real hdfs-dev log (and its labels), a tiny
 * configuration that trains in seconds, and one model trained once per test run (in workDir(), test/support/tmp.ts).
 * The real logs are found where every suite finds them (test/support/data.ts: ../shared/data beside the
 * repository, or $DEEPSENTRY_DATA_DIR); a suite using them calls requireData first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { sha256Hex } from '../../lib/models/files';
import { resolvePipelineConfig, trainModel, type PipelineConfig } from '../../lib/pipeline';
import { HDFS_DEV_LOG } from './data';
import { workDir } from './tmp';


/** A small but real configuration: every stage runs, in a few seconds. */
export const TINY = {
  text: { model: { embeddingDim: 8, hiddenSize: 16, latentDim: 16 }, train: { epochs: 15, batchSize: 32 } },
  detector: { model: { hiddenSize: 8 }, train: { epochs: 2, batchSize: 256 } },
};

export function tinyConfig(extra: Record<string, unknown> = {}): PipelineConfig {
  return resolvePipelineConfig({ ...TINY, ...extra });
}

/** The first `lines` lines of hdfs-dev as a file. */
export function hdfsSlice(lines: number, name = `hdfs-${lines}.log`): string {
  const p = path.join(workDir(), name);
  if (!fs.existsSync(p)) {
    const text = fs.readFileSync(HDFS_DEV_LOG, 'utf8');
    let i = 0;
    for (let n = 0; n < lines && i >= 0; n++) i = text.indexOf('\n', i + 1);
    fs.writeFileSync(p, i < 0 ? text : text.slice(0, i + 1));
  }
  return p;
}

/** The tiny config as a file for --config. */
export function tinyConfigFile(): string {
  const p = path.join(workDir(), 'tiny.json');
  if (!fs.existsSync(p)) fs.writeFileSync(p, JSON.stringify(TINY));
  return p;
}

/**
 * Whole sessions: every line (in original order) of the blocks first named in the first `lines` lines of
 * hdfs-dev. A plain prefix would cut the last blocks short, and a block cut short looks (rightly) anomalous.
 */
export function hdfsBlocks(lines: number): string {
  const p = path.join(workDir(), `hdfs-blocks-${lines}.log`);
  if (!fs.existsSync(p)) {
    const all = fs.readFileSync(HDFS_DEV_LOG, 'utf8').split('\n');
    const keep = new Set<string>();
    for (const l of all.slice(0, lines)) for (const m of l.match(/blk_-?\d+/g) ?? []) keep.add(m);
    fs.writeFileSync(p, all.filter((l) => (l.match(/blk_-?\d+/g) ?? []).some((b) => keep.has(b))).join('\n') + '\n');
  }
  return p;
}

let trained: Promise<string> | null = null;
/** A tiny model trained once (in-process) on the first 20k lines of hdfs-dev. */
export function trainedModel(): Promise<string> {
  trained ??= (async () => {
    const dir = path.join(workDir(), 'model');
    await trainModel([hdfsSlice(20000)], dir, { config: tinyConfig() });
    return dir;
  })();
  return trained;
}

let perSession: Promise<string> | null = null;
/**
 * The tiny model trained the same way but with its count relations judged at each session's end
 * (scoring.countTimeoutMs 0) instead of once a block has been quiet for the count horizon: scenarios built on
 * a session end's own count alert (a block's write cut by the idle timeout, flagged at the cut).
 */
export function trainedModelCountsPerSession(): Promise<string> {
  perSession ??= (async () => {
    const dir = path.join(workDir(), 'model-counts-per-session');
    await trainModel([hdfsSlice(20000)], dir, { config: tinyConfig({ scoring: { countTimeoutMs: 0 } }) });
    return dir;
  })();
  return perSession;
}

/**
 * Damaged gzip copies of a real log (made once per run): `truncated` (the first half of the compressed
 * bytes), `crc` (one byte of the CRC-32 trailer flipped: every line decodes, the check fails at the end),
 * `garbage` (a valid gzip header followed by random bytes), and `whole`, the intact gzip.
 */
export function damagedGzips(log: string): { whole: string; truncated: string; crc: string; garbage: string } {
  const base = path.join(workDir(), path.basename(log));
  const out = { whole: `${base}.gz`, truncated: `${base}.truncated.gz`, crc: `${base}.crc.gz`, garbage: `${base}.garbage.gz` };
  if (!fs.existsSync(out.whole)) {
    const gz = zlib.gzipSync(fs.readFileSync(log));
    fs.writeFileSync(out.whole, gz);
    fs.writeFileSync(out.truncated, gz.subarray(0, gz.length >> 1));
    const crc = Buffer.from(gz);
    crc[crc.length - 8] ^= 0xff; // the trailer is CRC-32 then ISIZE, 4 bytes each
    fs.writeFileSync(out.crc, crc);
    let seed = 12345;
    const garbage = Buffer.alloc(64 * 1024, 0).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
    fs.writeFileSync(out.garbage, Buffer.concat([gz.subarray(0, 10), garbage]));
  }
  return out;
}

/**
 * A copy of a model directory whose weights hold NaN (one value of the first shard), with checksums that
 * match: what a diverged training saved by an older version, or a bit-rotted model re-hashed, looks like.
 */
export function modelWithNaN(model: string, name: string): string {
  const dir = path.join(workDir(), name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(model, dir, { recursive: true });
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const shard = json.weightsManifest[0].paths[0] as string;
  const b = fs.readFileSync(path.join(dir, shard));
  b.writeFloatLE(NaN, 4 * 100);
  fs.writeFileSync(path.join(dir, shard), b);
  json.shardSha256[shard] = sha256Hex(b);
  const { contentSha256: _, ...body } = json;
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ ...body, contentSha256: sha256Hex(JSON.stringify(body)) }, null, 1) + '\n');
  return dir;
}

/** The time of an HDFS line (`yymmdd HHMMSS` at its start) in ms, read as UTC. */
export function hdfsTimeOf(line: string): number {
  const m = /^(\d\d)(\d\d)(\d\d) (\d\d)(\d\d)(\d\d) /.exec(line);
  if (m === null) throw new Error(`not an HDFS line with a timestamp: ${line.slice(0, 40)}`);
  return Date.UTC(2000 + Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** The HDFS line with its timestamp set to `ms` (UTC). */
export function withHdfsTime(line: string, ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())} ${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}${line.slice(13)}`;
}

/** The message `driftLog` inserts, masked: one the tiny model (trainedModel) never saw. */
export const DRIFT_MESSAGE = 'Reported block <BLK> to namenode with checksum';

/**
 * A log that changed since the model was trained (made once per run): the first 20k lines of hdfs-dev with a
 * line of DRIFT_MESSAGE inserted after the first line of every third block (its time: inside the block's
 * session), and a line of another block 20 minutes on (every session has ended when the input does).
 * `blanked` is the same file with the inserted lines blank (the same line numbers, without them); `inserted`
 * are their line numbers and blocks.
 */
export function driftLog(): { file: string; blanked: string; inserted: Array<[number, string]>; blocks: number } {
  const file = path.join(workDir(), 'drift.log');
  const blanked = path.join(workDir(), 'drift-blanked.log');
  const lines = fs.readFileSync(hdfsSlice(20000), 'utf8').split('\n').filter(Boolean);
  const out: string[] = [];
  const inserted: Array<[number, string]> = [];
  const seen = new Set<string>();
  for (const l of lines) {
    out.push(l);
    const b = /blk_-?\d+/.exec(l)?.[0];
    if (b === undefined || seen.has(b)) continue;
    if (seen.size % 3 === 0) {
      out.push(withHdfsTime(`081109 000000 1 INFO dfs.DataNode$BlockReporter: Reported block ${b} to namenode with checksum`, hdfsTimeOf(l)));
      inserted.push([out.length, b]);
    }
    seen.add(b);
  }
  out.push(withHdfsTime(lines[0]!.replace(/blk_-?\d+/g, 'blk_424242'), hdfsTimeOf(lines[lines.length - 1]!) + 20 * 60_000));
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, out.join('\n') + '\n');
    const at = new Set(inserted.map(([n]) => n));
    fs.writeFileSync(blanked, out.map((l, i) => (at.has(i + 1) ? '' : l)).join('\n') + '\n');
  }
  return { file, blanked, inserted, blocks: inserted.length };
}
