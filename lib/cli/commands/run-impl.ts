import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../errors';
import { packageRoot } from '../../backend/native';
import { summaryTable } from '../../eval/summary';
import { runPipeline } from '../../pipeline/run';
import { setupPipeline, withSignals } from '../setup';
import type { RunArgs } from './run';
import { reportOutput } from '../output';
import { sessionOverrides } from '../options';
import { flagWording } from '../flags';

/** The embedded sample shipped in the package: hdfs-dev (real HDFS_v1 lines) and its block labels, gzipped. */
export function sampleFiles(): { log: string; labels: string } {
  const dir = path.join(packageRoot(), 'data', 'sample');
  const log = path.join(dir, 'HDFS.log.gz');
  const labels = path.join(dir, 'anomaly_label.csv.gz');
  if (!fs.existsSync(log) || !fs.existsSync(labels)) throw new DeepSentryError('DS_IO', `the embedded sample is missing (${log}, ${labels}): reinstall the package or pass a log`);
  return { log, labels };
}

export async function runRun(a: RunArgs): Promise<void> {
  let log = a.log;
  let labels = a.labels;
  if (log === undefined) {
    const s = sampleFiles();
    log = s.log;
    labels ??= s.labels;
  }
  const s = await setupPipeline({ ...a, session: sessionOverrides(a) });
  const r = await withSignals((signal) => runPipeline(log, a.out, { config: s.config, reporter: s.reporter, signal, force: a.force === true, acceptTruncated: a.acceptTruncated === true, withText: a.withText === true, setAsideNew: a.setAsideNew !== false, ...(labels !== undefined ? { labels } : {}), ...(a.normalLabels !== undefined ? { normalLabels: a.normalLabels } : {}) }));
  const out = {
    log,
    labels: labels ?? (r.evaluation ? `${log} (its per-line labels)` : null),
    outDir: r.outDir,
    modelDir: r.modelDir,
    trainSessions: r.trainSessions,
    testSessions: r.testSessions,
    threshold: r.threshold,
    score: r.score,
    metrics: r.evaluation?.result.metrics ?? null,
    files: r.evaluation?.files ?? null,
    // once each: the input's warnings come from training's read of the log and from scoring's
    warnings: [...new Set([...r.warnings, ...r.score.warnings, ...(r.evaluation?.warnings ?? [])].map(flagWording))],
    backend: s.backend.backend,
    timings: r.timings,
    /** the whole command, from process start (module loading and backend set-up included) */
    seconds: process.uptime(),
    replaced: r.replaced,
  };
  reportOutput(a, r.outDir, r.replaced, out.warnings);
  if (a.json) {
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  if (a.quiet) return;
  process.stdout.write(`trained on ${r.trainSessions} sessions, scored ${r.testSessions} (${r.score.anomalies} anomalous at threshold ${r.threshold.toPrecision(6)}) in ${out.seconds.toFixed(1)} s\n`);
  if (r.evaluation) {
    process.stdout.write('\n' + summaryTable(r.evaluation.result.metrics));
    process.stdout.write(`\nwrote ${r.evaluation.files.metrics}\n      ${r.evaluation.files.report}\n`);
  }
  process.stdout.write(`      ${r.score.files.sessions}\n      model: ${r.modelDir}\n`);
}
