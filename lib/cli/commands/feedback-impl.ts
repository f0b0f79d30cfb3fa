import * as path from 'node:path';
import { createOutputDir } from '../../outdir';
import { learnNormal, readFeedbackFile, summarizeFeedback } from '../../pipeline/feedback';
import { DeepSentry, pickLoadOptions } from '../../pipeline/model';
import { setupPipeline, withSignals } from '../setup';
import type { FeedbackArgs } from './feedback';
import { flagWording } from '../flags';

const num = (x: number) => x.toPrecision(6);

export async function runFeedback(a: FeedbackArgs): Promise<void> {
  const s = await setupPipeline(a);
  // The marks first (a wrong file fails before anything loads), then the model, then the output location.
  const keys = await readFeedbackFile(a.normal);
  const model = await DeepSentry.load(a.model, pickLoadOptions(a));
  const out = path.resolve(a.out ?? a.model);
  // Replacing --model in place with its new version is what feedback is for; another existing model needs --force.
  const replaced = out === model.directory ? [] : (await createOutputDir(out, { kind: 'model', ...(a.force ? { force: true } : {}) })).removed;
  const r = await withSignals((signal) =>
    learnNormal(model, {
      log: a.log,
      sessions: keys,
      source: a.normal,
      seed: a.seed,
      signal,
      reporter: s.reporter,
      acceptTruncated: a.acceptTruncated === true,
      setAsideNew: a.setAsideNew !== false,
      ...(a.epochs !== undefined ? { epochs: a.epochs } : {}),
      ...(a.learningRate !== undefined ? { learningRate: a.learningRate } : {}),
      ...(a.weight !== undefined ? { weight: a.weight } : {}),
      ...(a.seen !== undefined ? { seen: a.seen } : {}),
      ...(a.replay !== undefined ? { replay: a.replay } : {}),
    }),
  );
  await model.save(out);
  const { warnings: apiWarnings, ...summary } = summarizeFeedback(r, out);
  const warnings = apiWarnings.map(flagWording);
  if (a.json) {
    process.stdout.write(JSON.stringify({ ...summary, warnings, replaced }) + '\n');
    return;
  }
  if (!a.quiet) {
    const w = Math.max(...r.sessions.map((x) => x.session.length));
    process.stdout.write(
      `learnt ${r.sessions.length} sessions as normal (replay: ${r.replaySessions} sessions of ${a.log} below the threshold; ${r.newTargets} messages newly predicted, ${r.acceptedMessages} never seen before now known, ${r.countRelationsChanged} count relations changed, ${r.knownCompositions} compositions now known normal)\n` +
        r.sessions.map((x) => `  ${x.session.padEnd(w)}  ${num(x.before)} → ${num(x.after)}${x.after < r.threshold ? '' : '  (still flagged)'}\n`).join('') +
        `threshold ${num(r.threshold)} (kept as saved)\n` +
        `sessions of the log flagged: ${r.flaggedBefore} → ${r.flaggedAfter} (${r.cleared.length} others cleared, ${r.raised.length} newly flagged)\n` +
        `wrote ${out} (version ${r.lineage.version}, from version ${r.lineage.parent?.version ?? 1})\n`,
    );
  }
  for (const x of warnings) process.stderr.write(`deepsentry: warning: ${x}\n`);
}
