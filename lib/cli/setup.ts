/**
 * What every pipeline command does first: read --config (validated, defaults filled), apply the flags over
 * it, select the compute backend (--backend, --threads, --precision) and build the progress reporter (--quiet/--verbose).
 */
import { backendSummary, useBackend, type BackendChoice, type BackendSelection } from '../backend/select';
import type { Precision } from '../backend/binding';
import { applyFlags, type ConfigFlags, type PipelineConfig } from '../pipeline/config';
import type { PipelineReporter } from '../pipeline/train';
import { loadPipelineConfig } from './config-file';
import { consoleReporter, type Verbosity } from './progress';

/** The global options a pipeline command reads (lib/cli/options.ts), plus its own config flags. */
export interface SetupArgs extends ConfigFlags {
  config?: string;
  backend: BackendChoice;
  threads?: number;
  precision?: Precision;
  json: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export interface Setup {
  config: PipelineConfig;
  backend: BackendSelection;
  reporter: PipelineReporter;
  verbosity: Verbosity;
}

export async function setupPipeline(a: SetupArgs): Promise<Setup> {
  const base = await loadPipelineConfig(a.config);
  const { seed, format, trainFraction, session } = a;
  const config = applyFlags(base, { seed, format, trainFraction, session });
  const backend = useBackend(a.backend, { ...(a.threads !== undefined ? { threads: a.threads } : {}), ...(a.precision ? { precision: a.precision } : {}) });
  // --json keeps stderr for errors only; progress would interleave with nothing on stdout but is noise for tools.
  const verbosity: Verbosity = a.quiet || a.json ? 'quiet' : a.verbose ? 'verbose' : 'normal';
  const reporter = consoleReporter(verbosity);
  if (verbosity === 'normal') process.stderr.write(`deepsentry: ${backendSummary(backend)}\n`);
  else if (verbosity === 'verbose') process.stderr.write(`deepsentry: backend ${backend.backend}: ${backend.reason}\n`);
  return { config, backend, reporter, verbosity };
}

/**
 * An AbortSignal fired by SIGINT/SIGTERM while `f` runs (training stops at the next step and nothing is
 * written); the handlers are removed afterwards.
 */
export async function withSignals<T>(f: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const on = (sig: string) => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write(`deepsentry: ${sig}: stopping; nothing will be written\n`);
    ac.abort();
  };
  const onInt = () => on('SIGINT');
  const onTerm = () => on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await f(ac.signal);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
