import { DeepSentry, pickLoadOptions } from '../../pipeline/model';
import { checkScoreOutput, scoreLog } from '../../pipeline/score';
import { setupPipeline } from '../setup';
import type { ScoreArgs } from './score';
import { reportOutput } from '../output';
import { resolveLogConfig } from '../../logs/config';
import { sessionOverrides } from '../options';

export async function runScore(a: ScoreArgs): Promise<void> {
  const s = await setupPipeline(a);
  // The model first (a bad one is refused before --force touches the output), then the output, then the work.
  const model = await DeepSentry.load(a.model, pickLoadOptions(a));
  // Session flags override how the model cuts sessions (the model's own settings are its training's).
  const session = sessionOverrides(a);
  if (Object.keys(session).length > 0) {
    Object.assign(model.logConfig, resolveLogConfig({ ...model.logConfig, session: { ...model.logConfig.session, ...session } } as unknown as Record<string, unknown>));
  }
  const out = await checkScoreOutput(a.out, { lines: a.lines, force: a.force === true, inputs: [...(a.log === '-' ? [] : [a.log]), a.model] });
  s.reporter.stage?.('score', `${a.log} with ${model.directory}`);
  const r = await scoreLog(model, a.log === '-' ? process.stdin : a.log, a.out, { lines: a.lines, withText: a.withText === true, reporter: s.reporter, outputChecked: true, acceptTruncated: a.acceptTruncated === true });
  if (a.json) process.stdout.write(JSON.stringify({ ...r, replaced: out.removed }) + '\n');
  else if (!a.quiet) {
    process.stdout.write(
      `scored ${r.input}: ${r.parsed} of ${r.lines} lines, ${r.sessions} sessions, ${r.anomalies} anomalous at threshold ${r.threshold.toPrecision(6)}` +
        `${r.newMessages ? `, ${r.newMessages} messages never seen in training` : ''}${r.unparsed ? `, ${r.unparsed} lines not parsed` : ''}\n` +
        `wrote ${r.files.sessions}${r.files.lines ? `\n      ${r.files.lines}` : ''}\n`,
    );
  }
  reportOutput(a, a.out, out.removed, r.warnings);
}
