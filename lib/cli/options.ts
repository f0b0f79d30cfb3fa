/**
 * Options shared by every command, and helpers to compose per-stage options (nx style: withXOptions).
 */
import type { Argv } from 'yargs';

export interface GlobalOptions {
  config?: string;
  backend: 'auto' | 'native' | 'cuda' | 'cpu';
  threads?: number;
  seed: number;
  json: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export function withGlobalOptions<T>(y: Argv<T>) {
  return y
    .option('config', { type: 'string', describe: 'YAML or JSON configuration file (flags override it)', global: true })
    .option('backend', {
      choices: ['auto', 'native', 'cuda', 'cpu'] as const,
      default: 'auto' as const,
      describe: 'compute backend: auto picks cuda, else native CPU kernels, else pure TypeScript',
      global: true,
    })
    .option('threads', { type: 'number', describe: 'kernel threads (default: DEEPSENTRY_THREADS or all cores)', global: true })
    .option('seed', { type: 'number', default: 42, describe: 'random seed: same seed, same model', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable JSON output', global: true })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'only errors', global: true })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'more detail', global: true })
    .check((argv) => {
      if (argv.quiet && argv.verbose) throw new Error('--quiet and --verbose cannot be used together');
      const t = argv.threads as number | undefined;
      if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > 256)) {
        throw new Error(`Expected an integer 1..256 for --threads but received ${String(t)}`);
      }
      return true;
    });
}

/** `--force` of every command that writes: replace an earlier run's output (the policy: lib/outdir.ts). */
export interface ForceOption {
  force?: boolean;
}

export function withForceOption<T>(y: Argv<T>) {
  return y.option('force', { type: 'boolean', describe: "replace an earlier run's output there (only DeepSentry's own files; anything else is never replaced)" });
}

/** `--accept-truncated` of every command that reads logs: a damaged gzip log is otherwise an error. */
export interface AcceptTruncatedOption {
  acceptTruncated?: boolean;
}

export function withAcceptTruncatedOption<T>(y: Argv<T>) {
  return y.option('accept-truncated', { type: 'boolean', describe: 'a truncated or corrupt gzip log: use the lines before the damage (with a warning) instead of failing' });
}
