/**
 * Streaming memory check of `prepare`: generates (or reuses) a synthetic HDFS-format file of SIZE_MB, prepares
 * it with an idle timeout so sessions keep closing, and samples the process RSS while it runs.
 *
 *   npx tsx scripts/logs-memory.ts SIZE_MB [FILE] [--gzip]
 *
 * Prints one JSON object: file size, lines, sessions, seconds, lines/s, RSS at start, peak RSS, and the peak
 * RSS over each quarter of the run (flat quarters = memory does not grow with the file).
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareLogs, type LogConfigOverrides, type PrepareSummary } from '../lib/logs';
import { writeHdfsLike } from './gen-hdfs-like';

export interface MemoryRun {
  summary: PrepareSummary;
  seconds: number;
  /** RSS (bytes) sampled every `intervalMs`, in order. */
  rss: number[];
  rssStart: number;
  rssPeak: number;
  /** Peak RSS within each quarter of the samples. */
  quarterPeaks: number[];
}

/** Runs prepareLogs on `file` while sampling RSS. */
export async function measurePrepare(file: string, outDir: string, overrides: LogConfigOverrides, intervalMs = 50): Promise<MemoryRun> {
  const rssStart = process.memoryUsage.rss();
  const rss: number[] = [rssStart];
  const timer = setInterval(() => rss.push(process.memoryUsage.rss()), intervalMs);
  const t0 = process.hrtime.bigint();
  let summary: PrepareSummary;
  try {
    summary = await prepareLogs([file], outDir, overrides);
  } finally {
    clearInterval(timer);
  }
  rss.push(process.memoryUsage.rss());
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const q = Math.max(1, Math.floor(rss.length / 4));
  const quarterPeaks = [0, 1, 2, 3].map((i) => Math.max(...rss.slice(i * q, i === 3 ? rss.length : (i + 1) * q)));
  return { summary, seconds, rss, rssStart, rssPeak: Math.max(...rss), quarterPeaks };
}

/** Settings for a streaming run over the synthetic file: blocks close one minute (log time) after their last line. */
export const STREAMING_OVERRIDES: LogConfigOverrides = { format: 'hdfs', session: { idleTimeoutMs: 60_000 } };

if (require.main === module) {
  (async () => {
    const args = process.argv.slice(2);
    const mb = Number(args[0]);
    if (!(mb > 0)) {
      process.stderr.write('usage: npx tsx scripts/logs-memory.ts SIZE_MB [FILE]\n');
      process.exit(2);
    }
    const file = args[1] ?? join(tmpdir(), `deepsentry-hdfs-like-${mb}mb.log`);
    if (!existsSync(file) || statSync(file).size < mb * 1024 * 1024) await writeHdfsLike(file, mb * 1024 * 1024);
    const out = mkdtempSync(join(tmpdir(), 'ds-prep-mem-'));
    try {
      const r = await measurePrepare(file, out, STREAMING_OVERRIDES, 100);
      const MB = (b: number) => Math.round(b / 1048576);
      process.stdout.write(
        JSON.stringify({
          file,
          fileMB: MB(statSync(file).size),
          lines: r.summary.lines,
          sessions: r.summary.sessions,
          evicted: r.summary.evictedSessions,
          seconds: Number(r.seconds.toFixed(1)),
          linesPerSecond: Math.round(r.summary.lines / r.seconds),
          rssStartMB: MB(r.rssStart),
          rssPeakMB: MB(r.rssPeak),
          rssQuarterPeaksMB: r.quarterPeaks.map(MB),
        }) + '\n',
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  })();
}
