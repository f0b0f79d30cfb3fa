/**
 * Model directories: model.json — format and version, library version, the whole
 * config, vocabulary, thresholds, training metrics, a hash of the training data, and the weights in the tfjs
 * weights-manifest convention (`weightsManifest: [{paths, weights: [{name, shape, dtype}]}]`) — plus the
 * `.bin` shards. Written atomically: everything goes to a temporary sibling directory that is renamed into
 * place, so an interrupted save leaves the previous model (or nothing), never half a model. Checked on load:
 * format and version, a SHA-256 of model.json's own content and of every shard, shard sizes and weight shapes;
 * anything wrong is a DeepSentryError DS_MODEL naming the file.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { DeepSentryError } from '../errors';
import { packageRoot } from '../backend/native';
import type { NamedWeight } from './params';
import { createOutputDir, MODEL_FORMAT, MODEL_JSON } from '../outdir';

export { MODEL_FORMAT, MODEL_JSON };
export const MODEL_FORMAT_VERSION = 1;
/** tfjs' default shard size */
const SHARD_BYTES = 4 * 1024 * 1024;

export interface WeightsManifestEntry {
  paths: string[];
  weights: Array<{ name: string; shape: number[]; dtype: 'float32' }>;
}

/** What a caller stores besides weights. */
export interface ModelContent {
  config: unknown;
  vocabulary: unknown;
  thresholds: unknown;
  metrics: unknown;
  /** hash of the training data (e.g. sha256 of the prepared input) */
  dataHash: string;
  /** anything else the pipeline needs (e.g. the known masked messages) */
  extra?: Record<string, unknown>;
}

export interface ModelJson extends ModelContent {
  format: typeof MODEL_FORMAT;
  formatVersion: number;
  libraryVersion: string;
  weightsManifest: WeightsManifestEntry[];
  /** sha256 of each shard, by file name */
  shardSha256: Record<string, string>;
  /** sha256 of this JSON without this field (canonical JSON.stringify) */
  contentSha256: string;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

let libVersion: string | null = null;
export function libraryVersion(): string {
  if (libVersion === null) {
    try {
      libVersion = String(JSON.parse(require('fs').readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version);
    } catch {
      libVersion = 'unknown';
    }
  }
  return libVersion;
}

function contentHash(j: Omit<ModelJson, 'contentSha256'>): string {
  return sha256Hex(JSON.stringify(j));
}

/** The first non-finite value of a weight (NaN or ±Infinity), or -1: such a model scores nothing meaningful. */
function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return i;
  return -1;
}

/**
 * Writes a model directory atomically (replacing an existing model only once the new one is complete). A
 * location holding anything but a DeepSentry model (a file, another directory's content) is never replaced
 * (lib/outdir.ts); neither is a model written with non-finite weights (training diverged).
 */
export async function saveModelDir(dir: string, content: ModelContent, weights: NamedWeight[]): Promise<void> {
  const target = path.resolve(dir);
  for (const w of weights) {
    const i = firstNonFinite(w.values);
    if (i >= 0) throw new DeepSentryError('DS_MODEL', `cannot write model ${target}: weight ${w.name} holds a non-finite value (${w.values[i]} at index ${i}): training diverged`);
  }
  await createOutputDir(target, { kind: 'model', force: true });
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const io = (what: string, e: unknown) => new DeepSentryError('DS_IO', `cannot write model ${target}: ${what}: ${(e as Error).message}`, { cause: e });
  // Concatenate all weights, then cut into shards.
  let total = 0;
  for (const w of weights) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (size !== w.values.length) throw new DeepSentryError('DS_SHAPE_MISMATCH', `weight ${w.name}: shape [${w.shape}] does not match ${w.values.length} values`);
    total += w.values.length * 4;
  }
  const all = Buffer.alloc(total);
  let off = 0;
  for (const w of weights) {
    Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength).copy(all, off);
    off += w.values.byteLength;
  }
  const nShards = Math.max(1, Math.ceil(total / SHARD_BYTES));
  const paths = Array.from({ length: nShards }, (_, i) => `group1-shard${i + 1}of${nShards}.bin`);
  const shardSha256: Record<string, string> = {};
  const body: Omit<ModelJson, 'contentSha256'> = {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    libraryVersion: libraryVersion(),
    config: content.config,
    vocabulary: content.vocabulary,
    thresholds: content.thresholds,
    metrics: content.metrics,
    dataHash: content.dataHash,
    ...(content.extra ? { extra: content.extra } : {}),
    weightsManifest: [{ paths, weights: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' as const })) }],
    shardSha256,
  };
  try {
    await createOutputDir(tmp, { what: 'model directory (being written)' });
    for (let i = 0; i < nShards; i++) {
      const shard = all.subarray(i * SHARD_BYTES, Math.min(total, (i + 1) * SHARD_BYTES));
      shardSha256[paths[i]] = sha256Hex(shard);
      await fsp.writeFile(path.join(tmp, paths[i]), shard);
    }
    const json: ModelJson = { ...body, contentSha256: contentHash(body) };
    await fsp.writeFile(path.join(tmp, MODEL_JSON), JSON.stringify(json, null, 1) + '\n');
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw io('writing the temporary directory', e);
  }
  const old = `${target}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
  let moved = false;
  try {
    try {
      await fsp.rename(target, old);
      moved = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    await fsp.rename(tmp, target);
  } catch (e) {
    if (moved) await fsp.rename(old, target).catch(() => undefined);
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw io('moving it into place', e);
  }
  if (moved) await fsp.rm(old, { recursive: true, force: true }).catch(() => undefined);
}

/** Reads and checks a model directory. */
export async function loadModelDir(dir: string): Promise<{ json: ModelJson; weights: NamedWeight[] }> {
  const target = path.resolve(dir);
  const jsonPath = path.join(target, MODEL_JSON);
  const bad = (file: string, what: string) => new DeepSentryError('DS_MODEL', `${file}: ${what}`);
  let text: string;
  try {
    text = await fsp.readFile(jsonPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw bad(jsonPath, code === 'ENOENT' ? `not found (is ${target} a DeepSentry model directory?)` : (e as Error).message);
  }
  let json: ModelJson;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(jsonPath, `not valid JSON (truncated or edited?): ${(e as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || json.format !== MODEL_FORMAT) throw bad(jsonPath, `not a DeepSentry model (format field is ${JSON.stringify((json as { format?: unknown })?.format)})`);
  if (json.formatVersion !== MODEL_FORMAT_VERSION) throw bad(jsonPath, `format version ${String(json.formatVersion)} is not supported (this library reads ${MODEL_FORMAT_VERSION})`);
  const { contentSha256, ...body } = json;
  if (contentHash(body) !== contentSha256) throw bad(jsonPath, 'content checksum mismatch: the file was modified after it was written');
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw bad(jsonPath, 'weightsManifest missing');
  const weights: NamedWeight[] = [];
  for (const group of manifest) {
    const bufs: Buffer[] = [];
    for (const p of group.paths) {
      if (typeof p !== 'string' || p.includes('/') || p.includes('\\')) throw bad(jsonPath, `invalid shard path ${JSON.stringify(p)}`);
      const file = path.join(target, p);
      let b: Buffer;
      try {
        b = await fsp.readFile(file);
      } catch (e) {
        throw bad(file, `cannot read weight shard: ${(e as Error).message}`);
      }
      if (sha256Hex(b) !== json.shardSha256?.[p]) throw bad(file, 'checksum mismatch: the weight shard is truncated or corrupt');
      bufs.push(b);
    }
    const data = Buffer.concat(bufs);
    let off = 0;
    for (const w of group.weights) {
      if (w.dtype !== 'float32' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw bad(jsonPath, `weight ${w.name}: unsupported dtype or shape`);
      }
      const n = w.shape.reduce((a, b) => a * b, 1);
      if (off + n * 4 > data.length) throw bad(path.join(target, group.paths[group.paths.length - 1] ?? ''), `weight ${w.name} runs past the end of the shards`);
      const values = new Float32Array(n);
      Buffer.from(values.buffer).set(data.subarray(off, off + n * 4));
      const at = firstNonFinite(values);
      if (at >= 0) {
        // the shard holding that value
        let byte = off + at * 4;
        let k = 0;
        while (k < bufs.length - 1 && byte >= bufs[k].length) byte -= bufs[k++].length;
        throw bad(path.join(target, group.paths[k] ?? ''), `weight ${w.name} holds a non-finite value (${values[at]} at index ${at}): such a model cannot score; train it again`);
      }
      off += n * 4;
      weights.push({ name: w.name, shape: w.shape, values });
    }
    if (off !== data.length) throw bad(jsonPath, `the shards hold ${data.length} bytes but the manifest describes ${off}`);
  }
  return { json, weights };
}
