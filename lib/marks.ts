/**
 * Moments of a run as performance marks named `deepsentry:<moment>`: `deepsentry score` marks its start-up and
 * its scoring (bin/deepsentry.js, lib/cli/main.ts, lib/cli/commands/score-impl.ts, lib/pipeline/score.ts) and
 * bench/score.ts reads them from the process to say where the time went. A name keeps only its latest moment,
 * so a long-running process holds a bounded set.
 */
export function mark(moment: string, detail?: Record<string, number>): void {
  const name = `deepsentry:${moment}`;
  performance.clearMarks(name);
  performance.mark(name, detail ? { detail } : undefined);
}
