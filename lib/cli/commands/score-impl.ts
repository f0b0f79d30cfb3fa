/**
 * `deepsentry score`. What loads fast comes first: the model's files are read and, on a large log, the reader
 * thread (lib/pipeline/score_reader.ts) starts reading, parsing and masking it with the model's log
 * configuration; then this thread loads the compute backend and the model's modules (tfjs and the kernels: most of
 * the command's start), so both run at once. The order of the checks stays: --config and the backend, the model
 * (a bad one is refused before --force touches the output), the output, then the work.
 */
import { resolveLogConfig, type LogConfig } from '../../logs/config';
import { mark } from '../../marks';
import { loadModelDir } from '../../models/files';
import type { ModelExtra } from '../../pipeline/model';
import { startScoreReader, type ScoreReader } from '../../pipeline/score_reader';
import { sessionOverrides } from '../options';
import type { ScoreArgs } from './score';

/** The model's log configuration with the session flags over it (the model's own settings are its training's). */
function withSessionFlags(logConfig: LogConfig, a: ScoreArgs): LogConfig {
  const session = sessionOverrides(a);
  if (Object.keys(session).length === 0) return logConfig;
  return resolveLogConfig({ ...logConfig, session: { ...logConfig.session, ...session } } as unknown as Record<string, unknown>);
}

/**
 * The reader thread on the log, started with what the model will parse it with, or null: the log is stdin or
 * small (read in the scoring thread), or the model or a session flag is bad (the checks below say what).
 */
async function earlyReader(files: ReturnType<typeof loadModelDir>, a: ScoreArgs): Promise<ScoreReader | null> {
  if (a.log === '-') return null;
  let logConfig: LogConfig;
  try {
    const extra = (await files).json.extra as unknown as ModelExtra;
    logConfig = withSessionFlags(resolveLogConfig(extra.logConfig as unknown as Record<string, unknown>), a);
  } catch {
    return null;
  }
  return startScoreReader({ file: a.log, name: a.log, logConfig, acceptTruncated: a.acceptTruncated === true, withMessages: a.lines !== false && a.withText === true });
}

export async function runScore(a: ScoreArgs): Promise<void> {
  const files = loadModelDir(a.model);
  // DeepSentry.load reports a failure; until then it is handled here, not an unhandled rejection
  files.catch(() => undefined);
  const reader = await earlyReader(files, a);
  try {
    const [{ setupPipeline }, { DeepSentry, pickLoadOptions }, { checkScoreOutput, scoreLog }, { reportOutput }] = await Promise.all([
      import('../setup'),
      import('../../pipeline/model'),
      import('../../pipeline/score'),
      import('../output'),
    ]);
    mark('modules');
    const s = await setupPipeline(a);
    const model = await DeepSentry.load(a.model, pickLoadOptions(a), files);
    mark('model');
    Object.assign(model.logConfig, withSessionFlags(model.logConfig, a));
    const out = await checkScoreOutput(a.out, { lines: a.lines, force: a.force === true, inputs: [...(a.log === '-' ? [] : [a.log]), a.model] });
    s.reporter.stage?.('score', `${a.log} with ${model.directory}`);
    const r = await scoreLog(model, a.log === '-' ? process.stdin : a.log, a.out, { lines: a.lines, withText: a.withText === true, reporter: s.reporter, outputChecked: true, acceptTruncated: a.acceptTruncated === true, reader, setAsideNew: a.setAsideNew !== false });
    if (a.json) process.stdout.write(JSON.stringify({ ...r, replaced: out.removed }) + '\n');
    else if (!a.quiet) {
      process.stdout.write(
        `scored ${r.input}: ${r.parsed} of ${r.lines} lines, ${r.sessions} sessions, ${r.anomalies} anomalous at threshold ${r.threshold.toPrecision(6)}` +
          `${r.newMessages ? `, ${r.newMessages} messages never seen in training` : ''}${r.unparsed ? `, ${r.unparsed} lines not parsed` : ''}${r.setAside.length ? `, the lines of ${r.setAside.length} such message${r.setAside.length === 1 ? '' : 's'} set aside` : ''}\n` +
          `wrote ${r.files.sessions}${r.files.lines ? `\n      ${r.files.lines}` : ''}\n`,
      );
    }
    reportOutput(a, a.out, out.removed, r.warnings);
  } finally {
    // stops the thread when a check above failed (after scoreLog it has ended already)
    await reader?.close();
  }
}
