/**
 * End-to-end `deepsentry run` timing: hdfs-dev (the embedded sample when the data folder is
 * absent) with its labels, on the native backend, defaults. Reports wall time and lines/s per stage, the total
 * wall time against the 3-minute target, process CPU time (the machine is shared: wall time under load is
 * noisy, CPU time less so), and the accuracy the run reached. Runs alone:
 *
 *   npx tsx bench/pipeline.ts [--backend native|cpu|auto] [--out DIR] [--json]
 *
 * One run, not a benchmark.js loop: a run takes minutes. Results go to bench/results/pipeline-<time>.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { useBackend, type BackendChoice } from '../lib/backend/select';
import { resolvePipelineConfig, runPipeline, type StageTiming } from '../lib/pipeline';

/** What one end-to-end run measured. */
export interface PipelineBenchResult {
  log: string;
  lines: number;
  backend: string;
  backendReason: string;
  stages: Array<StageTiming & { itemsPerSecond: number }>;
  wallSeconds: number;
  cpuSeconds: number;
  /** end-to-end lines (of the whole log) per wall second */
  linesPerSecond: number;
  targetSeconds: number;
  targetMet: boolean;
  loadAverage: number[];
  accuracy: { sessionRocAuc: number | null; sessionF1AtSaved: number | null; sessionBestF1: number | null; lineRocAuc: number | null } | null;
}

export async function runPipelineBench(o: { backend?: BackendChoice; out?: string } = {}): Promise<PipelineBenchResult> {
  // The real data beside the repository (../shared/data) or $DEEPSENTRY_DATA_DIR, as the tests find it.
  const dev = path.join(process.env.DEEPSENTRY_DATA_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'data'), 'hdfs-dev');
  const sample = path.join(__dirname, '..', 'data', 'sample');
  const [log, labels] = fs.existsSync(path.join(dev, 'HDFS.log'))
    ? [path.join(dev, 'HDFS.log'), path.join(dev, 'anomaly_label.csv')]
    : [path.join(sample, 'HDFS.log.gz'), path.join(sample, 'anomaly_label.csv.gz')];
  const sel = useBackend(o.backend ?? 'native');
  const out = o.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-pipeline-'));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = await runPipeline(log, out, { config: resolvePipelineConfig({}), labels });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const m = r.evaluation?.result.metrics ?? null;
  if (o.out === undefined) fs.rmSync(out, { recursive: true, force: true });
  return {
    log,
    lines: r.score.lines,
    backend: sel.backend,
    backendReason: sel.reason,
    stages: r.timings.map((t) => ({ ...t, itemsPerSecond: t.items / Math.max(t.seconds, 1e-9) })),
    wallSeconds: wall,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    linesPerSecond: r.score.lines / wall,
    targetSeconds: 180,
    targetMet: wall < 180,
    loadAverage: os.loadavg(),
    accuracy: m
      ? { sessionRocAuc: m.session.rocAuc, sessionF1AtSaved: m.session.saved?.f1 ?? null, sessionBestF1: m.session.best?.f1 ?? null, lineRocAuc: m.line?.rocAuc ?? null }
      : null,
  };
}

function table(r: PipelineBenchResult): string {
  const rows = r.stages.map((s) => `  ${s.stage.padEnd(16)} ${s.seconds.toFixed(2).padStart(8)} s  ${s.items.toLocaleString('en-US').padStart(10)} ${s.unit.padEnd(9)} ${s.itemsPerSecond.toFixed(0).padStart(9)} ${s.unit}/s`);
  const a = r.accuracy;
  return [
    `deepsentry run on ${r.log} (${r.lines.toLocaleString('en-US')} lines), backend ${r.backend}: ${r.backendReason}`,
    ...rows,
    `  total            ${r.wallSeconds.toFixed(1).padStart(8)} s wall (target < ${r.targetSeconds} s: ${r.targetMet ? 'met' : 'NOT met'}), ${r.cpuSeconds.toFixed(1)} s CPU, ${r.linesPerSecond.toFixed(0)} lines/s end to end`,
    `  load average     ${r.loadAverage.map((x) => x.toFixed(1)).join(' ')} (2 cores, shared: wall times are noisy)`,
    ...(a ? [`  accuracy         session ROC-AUC ${a.sessionRocAuc?.toFixed(4)}, F1 at saved threshold ${a.sessionF1AtSaved?.toFixed(4)}, best F1 ${a.sessionBestF1?.toFixed(4)}, line ROC-AUC ${a.lineRocAuc?.toFixed(4)}`] : []),
  ].join('\n');
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  runPipelineBench({ backend: (arg('--backend') as BackendChoice | undefined) ?? 'native', ...(arg('--out') ? { out: arg('--out') as string } : {}) })
    .then((r) => {
      const dir = path.join(__dirname, 'results');
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `pipeline-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      fs.writeFileSync(file, JSON.stringify(r, null, 1) + '\n');
      process.stdout.write(args.includes('--json') ? JSON.stringify(r) + '\n' : `${table(r)}\n  results: ${file}\n`);
    })
    .catch((e) => {
      process.stderr.write(`bench/pipeline: ${(e as Error).message}\n`);
      process.exitCode = 1;
    });
}
