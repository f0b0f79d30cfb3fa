/** The HDFS input of the live and API benchmarks (bench/live.ts, bench/api.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

/** Input: $DEEPSENTRY_HDFS (a plain HDFS log), else the sample the package ships (data/sample/HDFS.log.gz). */
export function readInput(): string[] {
  const file = process.env.DEEPSENTRY_HDFS;
  const text = file ? fs.readFileSync(file, 'utf8') : zlib.gunzipSync(fs.readFileSync(path.resolve(__dirname, '../data/sample/HDFS.log.gz'))).toString('utf8');
  return text.split('\n').filter((l) => l !== '');
}
