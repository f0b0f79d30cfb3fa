/**
 * The CLI as a user runs it, for the e2e suites: `deepsentry <args>` in a child process, from the TypeScript
 * sources (tsx loads them, as `npx tsx` would), in the repository root, without colours. One runner for every
 * suite, so a change to how the CLI starts is made here once.
 *
 * `runCli` waits for the exit (stdin from `input`); `startCli` returns at once with the running child, its
 * output so far and its exit, for suites that signal it or feed it while it runs. `runTs` is the same child
 * for a snippet of TypeScript instead of the CLI (a capped heap, a fresh loader).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

/** The repository root: where the CLI runs and relative paths in snippets resolve. */
export const ROOT = path.resolve(__dirname, '../..');

/** The CLI's entry point from source, taking its arguments from argv. */
const CLI_MAIN = "require('./lib/cli/main').main(process.argv.slice(1)).then((c) => { process.exitCode = c; })";

export interface ChildOptions {
  /** Added to (or overriding) the test process's environment. */
  env?: Record<string, string>;
  /** Node flags before the script, e.g. `--max-old-space-size=96`. */
  nodeArgs?: string[];
  /** Written to the child's stdin (runCli / runTs). */
  input?: string | Buffer;
  /** Milliseconds before the child is killed (runCli / runTs); none by default. */
  timeout?: number;
}

export interface ChildResult {
  /** Exit code, null when a signal ended the child. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function argv(code: string, args: string[], opts: ChildOptions): string[] {
  return [...(opts.nodeArgs ?? []), '--import', 'tsx', '-e', code, '--', ...args];
}

function env(opts: ChildOptions): NodeJS.ProcessEnv {
  return { ...process.env, FORCE_COLOR: '0', ...(opts.env ?? {}) };
}

function runNode(code: string, args: string[], opts: ChildOptions): ChildResult {
  const r = spawnSync(process.execPath, argv(code, args, opts), {
    cwd: ROOT,
    encoding: 'utf8',
    env: env(opts),
    input: opts.input,
    timeout: opts.timeout,
    maxBuffer: 64 * 1024 * 1024,
  });
  // r.error is not thrown: EPIPE on `input` is what a child that exits before reading stdin gives, and a child
  // that could not start shows as code null with the error in stderr.
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr || (r.error ? String(r.error) : '') };
}

/** Runs `deepsentry <args>` to its end. */
export function runCli(args: string[], opts: ChildOptions = {}): ChildResult {
  return runNode(CLI_MAIN, args, opts);
}

/** Runs a TypeScript snippet (`node --import tsx -e code`) in the repository root to its end. */
export function runTs(code: string, opts: ChildOptions = {}): ChildResult {
  return runNode(code, [], opts);
}

export interface StartedCli {
  child: ChildProcess;
  /** stdout / stderr received so far. */
  out: () => string;
  err: () => string;
  /** Resolves to the exit code (null after a signal). */
  exit: Promise<number | null>;
}

/** Starts `deepsentry <args>` and returns while it runs; stdin is a pipe the test may write to. */
export function startCli(args: string[], opts: Omit<ChildOptions, 'input' | 'timeout'> = {}): StartedCli {
  const child = spawn(process.execPath, argv(CLI_MAIN, args, opts), { cwd: ROOT, env: env(opts), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

/** Polls `cond` every 10 ms until it holds; after `ms` fails naming `what` was awaited. */
export async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
