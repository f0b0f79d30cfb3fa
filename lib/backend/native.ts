/**
 * Loads the native addon (native/src/addon.cpp), once per process.
 *
 * Candidates, in order: the file named by DEEPSENTRY_NATIVE, the cmake-js build (build/Release/deepsentry.node,
 * `npm run build:native`), the node-gyp build (build-gyp/Release/deepsentry.node, `npm run build:gyp`).
 * The first that loads and exposes the whole NativeBinding contract wins; every failure is kept with its
 * reason. DEEPSENTRY_NATIVE=none turns the addon off (the pure-TypeScript path, lib/backend/reference.ts, is
 * then used everywhere). When nothing loads, one warning says why, how to fix it and what still works;
 * `deepsentry info` prints the same report.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DeepSentryError } from '../errors';
import type { NativeBinding, NativeCapabilities } from './binding';

/** One candidate the loader tried and why it did not load. */
export interface NativeLoadError {
  /** the .node file (or the environment variable) that was tried */
  path: string;
  /** why it did not load: missing file, dlopen error, stale build, ... */
  error: string;
}

/** What the loader found: shown by `deepsentry info` and used to pick a backend. */
export interface NativeStatus {
  /** whether an addon is loaded and usable */
  loaded: boolean;
  /** the file that loaded, or null */
  path: string | null;
  /** every candidate tried before the one that loaded (all of them when none did), in order */
  errors: NativeLoadError[];
  /** the loaded addon's capabilities (SIMD level, threads, CUDA), or null */
  capabilities: NativeCapabilities | null;
  /** non-fatal remarks, e.g. the addon was built from another package version */
  notes: string[];
}

/** Every function of the NativeBinding contract: a build missing one is stale and refused. */
const REQUIRED_FUNCTIONS: readonly (keyof NativeBinding)[] = [
  'capabilities', 'setSimdLevel', 'setPrecision', 'setThreads', 'setErrorClass',
  'lstmForward', 'lstmForwardAsync', 'lstmBackward', 'lstmBackwardAsync',
  'bilstmForward', 'bilstmForwardAsync', 'bilstmBackward', 'bilstmBackwardAsync',
  'lstmEncode', 'lstmEncodeAsync', 'matMul', 'matMulAsync', 'denseSoftmaxXent', 'denseSoftmaxXentAsync',
  'denseMse', 'denseMseAsync', 'scatterAddRows', 'scatterAddRowsAsync', 'adamUpdate', 'adamUpdateAsync',
  'adamUpdateMany', 'adamUpdateManyAsync',
];

/** The package root (where package.json is), from lib/backend (tsx) or dist/lib/backend (compiled). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'deepsentry') return dir;
      } catch {
        // not ours (or unreadable): keep walking up
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..', '..');
    dir = up;
  }
}

function packageVersion(root: string): string | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version ?? null;
  } catch {
    return null;
  }
}

/** The candidate files in the order they are tried (the first from DEEPSENTRY_NATIVE when set). */
export function nativeCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const root = packageRoot();
  const list: string[] = [];
  const override = env.DEEPSENTRY_NATIVE;
  if (override && override !== 'none') list.push(path.resolve(override));
  list.push(path.join(root, 'build', 'Release', 'deepsentry.node'));
  list.push(path.join(root, 'build-gyp', 'Release', 'deepsentry.node'));
  return list;
}

/**
 * Loads one .node file and checks that it is a complete DeepSentry addon; hands it the DeepSentryError class.
 * Throws DeepSentryError DS_NATIVE_UNAVAILABLE with the reason otherwise. (Tests use it to load a specific
 * build, e.g. the node-gyp one.)
 */
export function loadNativeFile(file: string): NativeBinding {
  if (!fs.existsSync(file)) {
    throw new DeepSentryError('DS_NATIVE_UNAVAILABLE', `${file} does not exist (not built)`);
  }
  let mod: Partial<NativeBinding>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(file) as Partial<NativeBinding>;
  } catch (err) {
    const e = err as Error;
    throw new DeepSentryError('DS_NATIVE_UNAVAILABLE', `${file} failed to load: ${e.message}`, { cause: err });
  }
  const missing = REQUIRED_FUNCTIONS.filter((f) => typeof mod[f] !== 'function');
  if (missing.length > 0) {
    throw new DeepSentryError(
      'DS_NATIVE_UNAVAILABLE',
      `${file} is not a complete DeepSentry addon (missing ${missing.join(', ')}): a stale build? Rebuild it.`,
    );
  }
  const binding = mod as NativeBinding;
  binding.setErrorClass(DeepSentryError as unknown as new (code: string, message: string) => Error);
  return binding;
}

let cached: { binding: NativeBinding | null; status: NativeStatus } | null = null;
let warned = false;

function load(): { binding: NativeBinding | null; status: NativeStatus } {
  const errors: NativeLoadError[] = [];
  const notes: string[] = [];
  if (process.env.DEEPSENTRY_NATIVE === 'none') {
    errors.push({ path: 'DEEPSENTRY_NATIVE', error: 'DEEPSENTRY_NATIVE is set to "none": the native addon is turned off' });
    return { binding: null, status: { loaded: false, path: null, errors, capabilities: null, notes } };
  }
  for (const file of nativeCandidates()) {
    try {
      const binding = loadNativeFile(file);
      const capabilities = binding.capabilities();
      const version = packageVersion(packageRoot());
      if (version !== null && capabilities.version !== version) {
        notes.push(`the addon was built from version ${capabilities.version}, the package is ${version}: ` +
          'rebuild it with `npm run build:native`');
      }
      return { binding, status: { loaded: true, path: file, errors, capabilities, notes } };
    } catch (err) {
      errors.push({ path: file, error: err instanceof DeepSentryError ? err.message : String(err) });
    }
  }
  return { binding: null, status: { loaded: false, path: null, errors, capabilities: null, notes } };
}

/** Why the addon did not load, how to fix it and what still works (for the warning and `deepsentry info`). */
export function describeNativeFailure(status: NativeStatus): string {
  const lines = ['The DeepSentry native addon could not be loaded:'];
  for (const e of status.errors) lines.push(`  - ${e.error}`);
  if (!status.errors.some((e) => e.path === 'DEEPSENTRY_NATIVE')) {
    lines.push('To fix: run `npm run build:native` in the package directory (needs cmake >= 3.19 and a C++17 compiler),');
    lines.push('or point DEEPSENTRY_NATIVE at a built deepsentry.node.');
  }
  lines.push('What still works: everything, on the pure-TypeScript / tfjs cpu path (much slower; no CUDA).');
  return lines.join('\n');
}

/** The addon, or null when none could be loaded (warns once, then the TypeScript path is used). Cached. */
export function loadNative(): NativeBinding | null {
  if (cached === null) cached = load();
  if (warned) return cached.binding;
  warned = true;
  const { status } = cached;
  if (cached.binding === null && process.env.DEEPSENTRY_NATIVE !== 'none') {
    process.emitWarning(describeNativeFailure(status), { code: 'DEEPSENTRY_NATIVE_UNAVAILABLE' });
  } else if (cached.binding !== null && process.env.DEEPSENTRY_NATIVE && status.errors.length > 0) {
    // An explicit choice that failed must not pass unnoticed, even though another build loaded.
    process.emitWarning(`DEEPSENTRY_NATIVE: ${status.errors[0].error}; using ${status.path} instead`,
      { code: 'DEEPSENTRY_NATIVE_OVERRIDE_FAILED' });
  }
  return cached.binding;
}

/** The loader's report (loads the addon if that was not tried yet). Capabilities are read fresh. */
export function nativeStatus(): NativeStatus {
  if (cached === null) cached = load();
  const s = cached.status;
  return { ...s, errors: [...s.errors], notes: [...s.notes], capabilities: cached.binding ? cached.binding.capabilities() : null };
}
