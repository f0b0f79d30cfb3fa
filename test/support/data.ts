/**
 * Where the tests find the real labelled logs: ../shared/data beside the repository (as on the developers'
 * machines and in CI), or $DEEPSENTRY_DATA_DIR. One place, so every suite agrees.
 *
 * `requireData(ctx)` skips a suite with a visible reason when the data is absent — except under CI=true,
 * where missing data is a failure: a CI run that silently checked nothing would be worse than a red one.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DATA_DIR = process.env.DEEPSENTRY_DATA_DIR ?? resolve(__dirname, '../../../shared/data');

export function dataPath(...parts: string[]): string {
  return join(DATA_DIR, ...parts);
}

export const HDFS_DEV_LOG = dataPath('hdfs-dev/HDFS.log');
export const HDFS_DEV_LABELS = dataPath('hdfs-dev/anomaly_label.csv');

export function hasData(): boolean {
  return existsSync(HDFS_DEV_LOG);
}

export function requireData(ctx: Mocha.Context): void {
  if (hasData()) return;
  const why = `real data not found at ${DATA_DIR} (set DEEPSENTRY_DATA_DIR)`;
  if (process.env.CI === 'true') throw new Error(why);
  ctx.skip();
}
