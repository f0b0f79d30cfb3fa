/**
 * Creating an output directory (and its missing parents), with one error for every way it can fail. Written
 * by hand rather than with `mkdir({ recursive: true })`: on Node 20 that never returns for a directory under
 * /proc (it retries the parent that exists forever), and a tool must fail there, not hang.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from './errors';

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

/** Creates `dir` and its missing parents; a DS_IO error naming it (and `what` it is for) when that fails. */
export async function createOutputDir(dir: string, what = 'output directory'): Promise<void> {
  try {
    await mkdirp(path.resolve(dir), 0);
  } catch (e) {
    throw new DeepSentryError('DS_IO', `Cannot create ${what} ${dir}: ${(e as Error).message}`, { cause: e });
  }
}
