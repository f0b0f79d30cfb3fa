import { promises as fsp } from 'node:fs';
import { DeepSentryError } from '../../errors';
import { inputWarnings, prepareLogs, type LogConfigOverrides, type PrepareSummary } from '../../logs';
import { reportOutput } from '../output';
import { sessionOverrides } from '../options';
import type { PrepareArgs } from './prepare';
import { flagWording } from '../flags';

/**
 * The `logs` section of a --config file (YAML or JSON), or {} without one. Keys are LogConfig's; flags given
 * on the command line override them.
 */
export async function readLogsConfig(path: string | undefined): Promise<Record<string, unknown>> {
  if (path === undefined) return {};
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    throw new DeepSentryError('DS_CONFIG', `Cannot read --config ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = /\.json$/i.test(path) ? JSON.parse(text) : (await import('yaml')).parse(text);
  } catch (e) {
    throw new DeepSentryError('DS_CONFIG', `--config ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new DeepSentryError('DS_CONFIG', `--config ${path} must hold an object`);
  const logs = (doc as Record<string, unknown>).logs;
  if (logs === undefined) return {};
  if (logs === null || typeof logs !== 'object' || Array.isArray(logs)) throw new DeepSentryError('DS_CONFIG', `--config ${path}: "logs" must be an object`);
  return logs as Record<string, unknown>;
}

/** Flags over the config file's `logs` section. */
export async function prepareOverrides(argv: PrepareArgs): Promise<LogConfigOverrides> {
  const o = (await readLogsConfig(argv.config)) as LogConfigOverrides;
  const session = { ...(o.session ?? {}), ...sessionOverrides(argv) };
  return {
    ...o,
    ...(argv.format !== undefined ? { format: argv.format } : {}),
    ...(argv.strict !== undefined ? { strict: argv.strict } : {}),
    ...(Object.keys(session).length > 0 ? { session } : {}),
  };
}

function human(s: PrepareSummary): string {
  const lines = [
    `prepared ${s.outDir}: ${s.parsed} of ${s.lines} lines parsed (${s.unparsed} not, ${s.blank} blank) as ${[...new Set(s.formats)].join(', ')}${s.timestamps.some((t) => t !== '') ? ` (time: ${[...new Set(s.timestamps.filter((t) => t !== ''))].join(', ')})` : ''}`,
    `${s.sessions} sessions (${s.sessionMode}${s.evictedSessions ? `, ${s.evictedSessions} evicted` : ''}${s.unsessioned ? `, ${s.unsessioned} lines in none` : ''}), ${s.distinctMessages} distinct messages, vocabulary ${s.vocabularySize}`,
  ];
  const bad = Object.entries(s.issues.counts).filter(([, n]) => n > 0);
  if (bad.length > 0) {
    lines.push(`bad input: ${bad.map(([k, n]) => `${k} ${n}`).join(', ')}; first:`);
    for (const i of s.issues.first) lines.push(`  ${i.file}:${i.line}: ${i.kind}: ${i.message}`);
  }
  return lines.join('\n') + '\n';
}

export async function runPrepare(argv: PrepareArgs): Promise<void> {
  const overrides = await prepareOverrides(argv);
  const inputs: (string | NodeJS.ReadableStream)[] = [...(argv.logs ?? [])];
  if (argv.stdin) inputs.push(process.stdin);
  const summary = await prepareLogs(inputs as Parameters<typeof prepareLogs>[0], argv.out, overrides, { force: argv.force === true, acceptTruncated: argv.acceptTruncated === true });
  const warnings = inputWarnings(summary.issues).map(flagWording);
  if (argv.json) process.stdout.write(JSON.stringify({ ...summary, warnings }) + '\n');
  else if (!argv.quiet) process.stdout.write(human(summary));
  reportOutput(argv, summary.outDir, summary.replaced, warnings);
}
