/**
 * Every output location of every command is checked and created here, before the command does any work, so
 * that a bad --out fails in a second rather than after training, and nothing that is not DeepSentry's is
 * ever replaced. The policy:
 *
 * - A location that exists and is not a directory (a regular file, a FIFO, …) is never replaced: error.
 * - A results folder (prepare, score, eval, run, the stage directories) may hold other files: they are left
 *   alone. If it holds an earlier run's output — a file this command writes, or one derived from such a file
 *   that the new output would contradict (score's new sessions.csv beside an earlier report.html) — the command
 *   refuses, naming what the folder holds, unless `force`: then exactly those files are removed (and reported),
 *   never the command's own inputs.
 * - A model directory (train, train-detector, a stage's text-model/vectors, run's model/) is replaced as a
 *   whole, atomically, once the new model is complete (lib/models/files.ts). It may be absent or empty; an
 *   earlier DeepSentry model there needs `force`; a directory holding anything else is never replaced.
 *
 * Directories are created by hand rather than with `mkdir({ recursive: true })`: on Node 20 that never
 * returns for a directory under /proc (it retries the parent that exists forever), and a tool must fail
 * there, not hang.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from './errors';

/** The file of a model directory that describes it (lib/models/files.ts), and its `format` field. */
export const MODEL_JSON = 'model.json';
export const MODEL_FORMAT = 'deepsentry-model';
/** Weight shards beside model.json (tfjs naming). */
const SHARD_NAME = /^group\d+-shard\d+of\d+\.bin$/;

async function mkdirp(dir: string, depth: number): Promise<void> {
  try {
    await fsp.mkdir(dir);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await fsp.stat(dir)).isDirectory()) return;
      throw e;
    }
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir || depth > 256) throw e;
    await mkdirp(parent, depth + 1);
  }
  // The parent exists now: one more try, and whatever fails now is the answer (EEXIST: created meanwhile).
  try {
    await fsp.mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !(await fsp.stat(dir)).isDirectory()) throw e;
  }
}

/** How a command's output location is checked (see the policy above). */
export interface OutputPlan {
  /** what the location is, for messages (default 'output directory', or 'model directory') */
  what?: string;
  /** 'folder' (default): files written into a directory beside others; 'model': a model directory */
  kind?: 'folder' | 'model';
  /** folder: the names this command writes in it; a trailing '/' marks a model directory (run's `model/`) */
  writes?: readonly string[];
  /** folder: names of an earlier run's outputs that the new output makes stale (same notation) */
  stale?: readonly string[];
  /** replace an earlier run's output (the CLI's --force) */
  force?: boolean;
  /** the command's input paths: never removed; an output that is one of them is an error */
  inputs?: readonly string[];
  /** the option that names the location, for messages (default 'outDir') */
  option?: string;
}

/** What the location held and what was done about it. */
export interface OutputDirState {
  /** the location, resolved */
  dir: string;
  /** an earlier run's outputs found there (names inside `dir`; `model/` for a model directory) */
  earlier: string[];
  /** of those, removed now (folder with force; a model directory is replaced later, atomically) */
  removed: string[];
}

const ioError = (msg: string, cause?: unknown) => new DeepSentryError('DS_IO', msg, cause === undefined ? undefined : { cause });

async function statOrNull(p: string) {
  try {
    return await fsp.stat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(`Cannot inspect ${p}: ${(e as Error).message}`, e);
  }
}

/** True when `dir` holds a model.json whose format is a DeepSentry model's. */
export async function isModelDir(dir: string): Promise<boolean> {
  try {
    const j = JSON.parse(await fsp.readFile(path.join(dir, MODEL_JSON), 'utf8')) as { format?: unknown };
    return j !== null && typeof j === 'object' && j.format === MODEL_FORMAT;
  } catch {
    return false;
  }
}

/** "a, b, c and 4 more" */
function listNames(names: readonly string[], max = 6): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/** An input equal to `p` or inside it. */
function inputWithin(p: string, inputs: readonly string[]): string | undefined {
  return inputs.find((i) => {
    const r = path.relative(p, path.resolve(i));
    return r === '' || (!r.startsWith('..') && !path.isAbsolute(r));
  });
}

async function checkWritable(dir: string, what: string): Promise<void> {
  try {
    await fsp.access(dir, fsc.W_OK);
  } catch (e) {
    throw ioError(`Cannot write the ${what} ${dir}: ${(e as Error).message}`, e);
  }
}

async function modelLocation(dir: string, plan: OutputPlan, what: string, option: string): Promise<OutputDirState> {
  const st = await statOrNull(dir);
  if (st === null) {
    // Created (atomically, by rename) once the model is complete; its parent must be there and writable now.
    const parent = path.dirname(dir);
    try {
      await mkdirp(parent, 0);
    } catch (e) {
      throw ioError(`Cannot create the directory of the ${what} ${dir}: ${(e as Error).message}`, e);
    }
    await checkWritable(parent, `directory of the ${what}`);
    return { dir, earlier: [], removed: [] };
  }
  if (!st.isDirectory()) throw ioError(`${dir} exists and is not a directory: a ${what} never replaces it (DeepSentry did not write it); choose another ${option}`);
  const entries = (await fsp.readdir(dir)).sort();
  if (entries.length === 0) {
    await checkWritable(path.dirname(dir), `directory of the ${what}`);
    return { dir, earlier: [], removed: [] };
  }
  const foreign = entries.filter((e) => e !== MODEL_JSON && !SHARD_NAME.test(e));
  if (foreign.length > 0 || !(await isModelDir(dir))) {
    const shown = foreign.length > 0 ? foreign : entries;
    throw ioError(`${dir} is a directory that does not hold a DeepSentry model (it holds ${listNames(shown)}): a ${what} would replace it whole, so it is left as is; choose another ${option}`);
  }
  const input = inputWithin(dir, plan.inputs ?? []);
  if (input !== undefined) throw ioError(`${dir} is an input of this command (${input}): it cannot also be its ${what}`);
  if (!plan.force) {
    throw ioError(`${dir} holds a DeepSentry model from an earlier run (${listNames(entries)}): pass force: true to replace it (the old model stays until the new one is complete), or choose another ${option}`);
  }
  await checkWritable(path.dirname(dir), `directory of the ${what}`);
  return { dir, earlier: entries, removed: [] };
}

async function folderLocation(dir: string, plan: OutputPlan, what: string, option: string): Promise<OutputDirState> {
  const st = await statOrNull(dir);
  if (st !== null && !st.isDirectory()) throw ioError(`${dir} exists and is not a directory: the ${what} cannot be there and DeepSentry leaves it as is; choose another ${option}`);
  if (st === null) {
    try {
      await mkdirp(dir, 0);
    } catch (e) {
      throw ioError(`Cannot create ${what} ${dir}: ${(e as Error).message}`, e);
    }
    return { dir, earlier: [], removed: [] };
  }
  await checkWritable(dir, what);
  const writes = new Set(plan.writes ?? []);
  const earlier: string[] = [];
  for (const name of new Set([...(plan.writes ?? []), ...(plan.stale ?? [])])) {
    const isDirName = name.endsWith('/');
    const p = path.join(dir, isDirName ? name.slice(0, -1) : name);
    const s = await statOrNull(p);
    if (s === null) continue;
    const ours = isDirName ? s.isDirectory() && (await isModelDir(p)) : s.isFile();
    if (ours) earlier.push(name);
    else if (writes.has(name)) throw ioError(`${p} exists and is not ${isDirName ? 'a DeepSentry model directory' : 'a regular file'}: DeepSentry will not replace it; choose another ${option}`);
    // else: a foreign entry of the name of a stale output: not ours, left alone
  }
  if (earlier.length === 0) return { dir, earlier, removed: [] };
  const others = (await fsp.readdir(dir)).filter((e) => !earlier.some((n) => n.replace(/\/$/, '') === e));
  if (!plan.force) {
    throw ioError(
      `${dir} holds an earlier run's output (${listNames(earlier)}${others.length > 0 ? `; and ${others.length} other entr${others.length === 1 ? 'y' : 'ies'}, which DeepSentry leaves alone` : ''}): ` +
        `pass force: true to replace it (only those files are removed), or choose another ${option}`,
    );
  }
  for (const name of earlier) {
    const p = path.join(dir, name.replace(/\/$/, ''));
    const input = inputWithin(p, plan.inputs ?? []);
    if (input !== undefined) throw ioError(`${p} is an input of this command (${input}): force: true will not remove it; choose another ${option}`);
  }
  for (const name of earlier) {
    const p = path.join(dir, name.replace(/\/$/, ''));
    try {
      await fsp.rm(p, { recursive: true, force: true });
    } catch (e) {
      throw ioError(`Cannot remove the earlier ${p} from ${dir}: ${(e as Error).message}`, e);
    }
  }
  return { dir, earlier, removed: earlier };
}

/**
 * Checks an output location against the policy above and creates it (a folder) or its parent (a model
 * directory). A DS_IO error names the location and what is wrong with it.
 */
export async function createOutputDir(dir: string, plan: OutputPlan = {}): Promise<OutputDirState> {
  const target = path.resolve(dir);
  const kind = plan.kind ?? 'folder';
  const what = plan.what ?? (kind === 'model' ? 'model directory' : 'output directory');
  const option = plan.option ?? 'outDir';
  return kind === 'model' ? modelLocation(target, plan, what, option) : folderLocation(target, plan, what, option);
}

/** One line for an operator: what --force replaced at an output location (empty when nothing was there). */
export function describeReplaced(dir: string, earlier: readonly string[]): string {
  return earlier.length === 0 ? '' : `replaced an earlier run's output in ${dir}: ${listNames(earlier, 12)}`;
}
