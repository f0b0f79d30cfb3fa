/**
 * Child process of test/e2e/native-boundary-child.test.ts ("arrays detached and collected while async jobs run"): run
 * as `node --expose-gc --import tsx async-detach-child.ts ADDON` with UV_THREADPOOL_SIZE=1 and glibc's
 * malloc serving every block of 4 KiB or more with its own mmap (so that freeing one unmaps it, and a read
 * of it afterwards faults instead of silently reading stale bytes).
 *
 * For every entry point and every typed array of its arguments (nested weights included), one case: the sync
 * result on a copy of the arguments is computed first; then, with the libuv pool's only thread busy with a
 * long matMulAsync, every case's async job is queued, the one array of each case is transferred away
 * (structuredClone with a transfer list, the clone dropped at once) and garbage is collected — so the memory
 * the caller passed is freed before any job starts. Prints one JSON line: the outcome of every case. A crash
 * (the addon reading or writing freed memory) kills this process, which is what the parent test checks first.
 */
import * as path from 'path';
import type { NativeBinding } from '../../lib/backend/binding';
import { loadNativeFile } from '../../lib/backend/native';
import { entryPoints, updatedInPlace, type Args, type EntrySizes } from './native-entry-points';
import { firstDifference, rngFor } from './native-helpers';

/** Arrays of 4 KiB and more (mmap'd under the parent's malloc setting), small enough to run in milliseconds. */
const SIZES: EntrySizes = { batch: [4, 6], steps: [8, 12], inputSize: [24, 40], hiddenSize: [24, 40], matMul: [48, 64], adam: [3000, 5000] };

export interface DetachOutcome {
  fn: string;
  /** the detached array, e.g. "weights.kernel" */
  array: string;
  status: 'resolved' | 'rejected';
  code?: string;
  message?: string;
  /** resolved: the first difference from the sync result (null: bitwise equal) */
  difference?: string | null;
  /** adamUpdate(Many): the first in-place array that differs from what it should hold now (null: all as expected) */
  inPlace?: string | null;
}

/** Where a typed array sits in the arguments: its keys from the top (an array's elements by index). */
type Path = string[];

function typedPaths(args: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [];
  for (const [k, v] of Object.entries(args as Args)) {
    if (v instanceof Float32Array || v instanceof Int32Array) out.push([...prefix, k]);
    else if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) out.push(...typedPaths(v, [...prefix, k]));
  }
  return out;
}

function at(args: Args, path: Path): Float32Array | Int32Array {
  let v: unknown = args;
  for (const k of path) v = (v as Args)[k];
  return v as Float32Array;
}

/** A deep copy: every typed array and nested object new. */
function cloneArgs(args: Args): Args {
  const out: Args = Array.isArray(args) ? ([] as unknown as Args) : {};
  for (const [k, v] of Object.entries(args)) {
    if (ArrayBuffer.isView(v)) out[k] = (v as Float32Array).slice();
    else if (v !== null && typeof v === 'object') out[k] = cloneArgs(v as Args);
    else out[k] = v;
  }
  return out;
}

/**
 * The first difference between two results (a Float32Array or objects of them, nested), or null. `detached`:
 * the array the case took away, left out (adamUpdateMany resolves to the caller's params, which hold it).
 */
function resultDifference(got: unknown, want: unknown, detached: unknown, where = 'result'): string | null {
  if (got === detached) return null;
  if (want instanceof Float32Array) {
    if (!(got instanceof Float32Array)) return `${where}: not a Float32Array`;
    const d = firstDifference(got, want);
    return d === null ? null : `${where}: ${d}`;
  }
  for (const k of Object.keys(want as Args)) {
    const d = resultDifference((got as Args)[k], (want as Args)[k], detached, `${where}.${k}`);
    if (d !== null) return d;
  }
  return null;
}

async function main(): Promise<void> {
  const native = loadNativeFile(path.resolve(process.argv[2]));
  native.setThreads(1);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const rng = rngFor(20261206);
  const cases: { fn: string; path: Path; args: Args; want: unknown; wantInPlace: Args; before: Args; inPlace: Path[] }[] = [];
  const eps = entryPoints(native, SIZES).map((ep) => ({ name: ep.name as string, valid: ep.valid }));
  // adamUpdateMany: two parameter arrays of adamUpdate's shapes under one step's settings
  const adam = eps.find((e) => e.name === 'adamUpdate')!;
  eps.push({
    name: 'adamUpdateMany',
    valid: (r) => {
      const [a, b] = [adam.valid(r), adam.valid(r)];
      const tensor = (t: Args): Args => ({ size: t.size, weights: t.weights, gradients: t.gradients, m: t.m, v: t.v });
      return { params: [tensor(a), tensor(b)] as unknown as Args[keyof Args], alpha: a.alpha, beta1: a.beta1, beta2: a.beta2, epsilon: a.epsilon };
    },
  });
  for (const ep of eps) {
    for (const path of typedPaths(ep.valid(rng))) {
      const args = ep.valid(rng);
      const before = cloneArgs(args);
      const copy = cloneArgs(args);
      const want = (native[ep.name as keyof NativeBinding] as unknown as (a: Args) => unknown)(copy);
      const inPlace = typedPaths(args).filter((p) => updatedInPlace(ep.name, p.join('.')));
      cases.push({ fn: `${ep.name}Async`, path, args, want, wantInPlace: copy, before, inPlace });
    }
  }
  // Occupies the pool's only thread: the jobs below start after it, by when their callers' memory is freed.
  const k = 1024;
  const blocker = native.matMulAsync({ a: new Float32Array(k * k).fill(0.5), b: new Float32Array(k * 3 * k).fill(0.25), m: k, k, n: 3 * k });
  const jobs = cases.map((c) => (native[c.fn as keyof NativeBinding] as unknown as (a: Args) => Promise<unknown>)(c.args));
  for (const c of cases) {
    const a = at(c.args, c.path);
    if (a.buffer.byteLength > 0) structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] }); // (h0Fw and h0Bw may share one)
  }
  for (let i = 0; i < 3; i++) gc();
  const settled = await Promise.allSettled(jobs);
  await blocker;
  const outcomes: DetachOutcome[] = settled.map((s, i) => {
    const c = cases[i];
    const o: DetachOutcome = { fn: c.fn, array: c.path.join('.'), status: s.status === 'fulfilled' ? 'resolved' : 'rejected' };
    if (s.status === 'fulfilled') o.difference = resultDifference(s.value, c.want, at(c.args, c.path));
    else {
      const e = s.reason as { code?: string; message?: string };
      o.code = e.code;
      o.message = e.message;
    }
    if (c.inPlace.length > 0) {
      // resolved: every in-place array holds the sync update; rejected: every one still attached is unchanged
      o.inPlace = null;
      for (const p of c.inPlace) {
        const a = at(c.args, p) as Float32Array;
        if (a.buffer.byteLength === 0) continue;
        const want = at(o.status === 'resolved' ? c.wantInPlace : c.before, p) as Float32Array;
        const d = firstDifference(a, want);
        if (d !== null && o.inPlace === null) o.inPlace = `${p.join('.')}: ${d}`;
      }
    }
    return o;
  });
  process.stdout.write(JSON.stringify(outcomes) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
