import { trainModel } from '../../pipeline/run';
import { setupPipeline, withSignals } from '../setup';
import type { TrainArgs } from './train';
import { reportOutput } from '../output';
import { sessionOverrides } from '../options';
import { flagWording } from '../flags';

export async function runTrain(a: TrainArgs): Promise<void> {
  const s = await setupPipeline({ ...a, session: sessionOverrides(a) });
  const r = await withSignals((signal) => trainModel(a.logs, a.out, { config: s.config, reporter: s.reporter, signal, force: a.force === true, acceptTruncated: a.acceptTruncated === true, ...(a.normalLabels !== undefined ? { normalLabels: a.normalLabels } : {}) }));
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
    /** compositions of sessions known normal the model remembers (normal-only training; lib/models/known_normal.ts) */
    knownNormal: m.knownNormal?.size ?? 0,
    backend: s.backend.backend,
    timings: r.timings,
    warnings: r.warnings.map(flagWording),
    replaced: r.replaced,
    /** the whole command, from process start (module loading and backend set-up included) */
    seconds: process.uptime(),
  };
  if (a.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else if (!a.quiet) {
    process.stdout.write(
      `trained ${summary.model}: ${summary.parsed} of ${summary.lines} lines, ${String(summary.sessions)} sessions, ${summary.distinctMessages} distinct messages\n` +
        `threshold ${m.threshold.toPrecision(6)} (${m.thresholds.session.method} ${m.thresholds.session.param} on ${m.thresholds.session.fittedOn} held-back sessions); ${summary.seconds.toFixed(1)} s in all\n` +
        (a.normalLabels !== undefined ? `normal-only: trained on the sessions ${a.normalLabels} labels normal; ${m.knownNormal?.size ?? 0} of their compositions (lines per message) remembered: a scored session holding exactly one scores 0\n` : ''),
    );
  }
  reportOutput(a, r.model.directory ?? a.out, r.replaced, summary.warnings);
}
