/**
 * For the live tests: real HDFS lines from the sample the package ships (data/sample/HDFS.log.gz, the
 * hdfs-dev split), so the tests need nothing outside the repository; and a follower driven by hand.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import type { FileFollower, TailLine } from '../../lib/live/tail';
import { SAMPLE_LOG } from './data';

let cache: string[] | null = null;

/** The first `n` lines of the HDFS sample (non-empty, in file order). */
export function hdfsLines(n: number): string[] {
  cache ??= zlib.gunzipSync(fs.readFileSync(SAMPLE_LOG)).toString('utf8').split('\n').filter((l) => l !== '');
  if (n > cache.length) throw new Error(`the HDFS sample has ${cache.length} lines, not ${n}`);
  return cache.slice(0, n);
}

/** Drives a follower by hand: poll() until it returns nothing new (bounded). */
export function drain(f: FileFollower): TailLine[] {
  const out: TailLine[] = [];
  for (let i = 0; i < 100; i++) {
    const got = f.poll();
    if (got.length === 0) return out;
    out.push(...got);
  }
  throw new Error('follower kept producing lines');
}
