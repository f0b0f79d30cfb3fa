/**
 * What every writing command tells the operator after its own summary, on stderr: the warnings of its
 * result (a damaged gzip input accepted, a suspicious flag rate, …; options named by their flags) unless --json carries them, and what
 * --force replaced at its output location (lib/outdir.ts) unless --quiet or --json.
 */
import { describeReplaced } from '../outdir';
import { flagWording } from './flags';

export function reportOutput(a: { json: boolean; quiet?: boolean }, dir: string, replaced: readonly string[], warnings: readonly string[]): void {
  if (a.json) return;
  for (const w of warnings) process.stderr.write(`deepsentry: warning: ${flagWording(w)}\n`);
  if (!a.quiet && replaced.length > 0) process.stderr.write(`deepsentry: --force: ${describeReplaced(dir, replaced)}\n`);
}
