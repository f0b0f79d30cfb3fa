import { trainModel } from '../../pipeline/run';
import { setupPipeline, withSignals } from '../../pipeline/setup';
import type { TrainArgs } from './train';

export async function runTrain(a: TrainArgs): Promise<void> {
  const s = await setupPipeline(a);
  const r = await withSignals((signal) => trainModel(a.logs, a.out, { config: s.config, reporter: s.reporter, signal, ...(a.normalLabels !== undefined ? { normalLabels: a.normalLabels } : {}) }));
  const m = r.model;
  const data = (m.metrics as { data?: Record<string, unknown> }).data ?? {};
  const summary = {
    model: r.model.directory,
    threshold: m.thresholds.session,
    lines: r.prepare.lines,
    parsed: r.prepare.parsed,
    sessions: data.sessions,
    distinctMessages: m.knownCount,
    training: (m.metrics as { training?: unknown }).training,
    backend: s.backend.backend,
    timings: r.timings,
  };
  if (a.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else if (!a.quiet) {
    process.stdout.write(
      `trained ${summary.model}: ${summary.parsed} of ${summary.lines} lines, ${String(summary.sessions)} sessions, ${summary.distinctMessages} distinct messages\n` +
        `threshold ${m.threshold.toPrecision(6)} (${m.thresholds.session.method} ${m.thresholds.session.param} on ${m.thresholds.session.fittedOn} held-back sessions)\n` +
        (a.normalLabels !== undefined ? `normal-only: trained on the sessions ${a.normalLabels} labels normal\n` : ''),
    );
  }
}
