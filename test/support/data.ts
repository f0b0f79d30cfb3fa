/**
 * Where the tests find the real labelled logs: ../shared/data beside the repository (as on the developers'
 * machines and in CI), or $DEEPSENTRY_DATA_DIR. One place, so every suite agrees.
 *
 * `requireData(ctx)` skips a suite with the reason in the output when the data is absent — except under CI=true,
 * where missing data is a failure: a CI run that silently checked nothing would be worse than a red one.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { skipUnlessCI } from './skip';

export const DATA_DIR = process.env.DEEPSENTRY_DATA_DIR ?? resolve(__dirname, '../../../shared/data');

export function dataPath(...parts: string[]): string {
  return join(DATA_DIR, ...parts);
}

export const HDFS_DEV_LOG = dataPath('hdfs-dev/HDFS.log');
export const HDFS_DEV_LABELS = dataPath('hdfs-dev/anomaly_label.csv');
/** The loghub HDFS event templates (ground truth for the events of hdfs-dev lines). */
export const HDFS_TEMPLATES = dataPath('loghub/HDFS/HDFS_templates.csv');
export const BGL_LOG = dataPath('loghub/BGL/BGL_2k.log');

/** The sample the package ships (the hdfs-dev split, gzipped): in the repository, so never skipped. */
export const SAMPLE_LOG = resolve(__dirname, '../../data/sample/HDFS.log.gz');
export const SAMPLE_LABELS = resolve(__dirname, '../../data/sample/anomaly_label.csv.gz');

export function hasData(): boolean {
  return existsSync(HDFS_DEV_LOG);
}

export function requireData(ctx: Mocha.Context): void {
  if (hasData()) return;
  skipUnlessCI(ctx, `real data not found at ${DATA_DIR} (set DEEPSENTRY_DATA_DIR)`);
}
