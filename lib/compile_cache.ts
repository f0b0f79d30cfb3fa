/**
 * A V8 code cache for the CLI's start: the compiled bytecode of the package's own modules (dist/) and of tfjs
 * (node_modules/@tensorflow), kept on disk so that the next process does not parse and compile them again.
 * Compiling the ~90 CommonJS files `deepsentry score` loads (tfjs-core alone is 1.2 MB of source) was the largest
 * part of its start, larger than reading them; every command pays it before its first line.
 *
 * Node 22.1+ has this built in (`module.enableCompileCache`), and it is used there. On older Node the same is
 * done here for the files above only: each is compiled as Node compiles a CommonJS module (the same wrapper, so
 * line numbers and stack traces are unchanged) with the cached data when there is one; at the process's exit
 * the bytecode of what ran (functions compiled lazily during the run included) is written for every file that
 * had none or whose cache V8 refused (another Node or V8 flags). A cache entry is named by a hash of the file's
 * path and holds a hash of the source it was made from: a changed file is compiled afresh and its entry
 * replaced. Cache files are written whole and renamed into place, so a concurrent process reads an old entry or
 * a new one, never a torn one. Any failure (a read-only or missing home, a full disk) leaves the module loaded
 * the normal way: the cache only ever saves time.
 *
 * The directory keeps the last COMPILE_CACHE_ENTRIES entries written (pruneCompileCache).
 *
 * Where: `DEEPSENTRY_COMPILE_CACHE` names the directory (`0` or `off` turns the cache off); otherwise
 * `$XDG_CACHE_HOME/deepsentry/compile-cache`, else `~/.cache/deepsentry/compile-cache`; one subdirectory per
 * Node version and architecture.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { threadId } from 'node:worker_threads';

/** Node's CommonJS loader, as far as this file uses it (not in @types/node's `Module` class). */
interface CjsModule {
  exports: unknown;
  filename: string;
  require(id: string): unknown;
  _compile(content: string, filename: string): unknown;
}
interface CjsLoader {
  prototype: CjsModule;
  wrap(content: string): string;
  _resolveFilename(request: string, parent: CjsModule, isMain: boolean, options?: { paths?: string[] }): string;
  _cache: Record<string, unknown>;
  _extensions: Record<string, unknown>;
  enableCompileCache?: (dir?: string) => unknown;
}

/** Bytes of the source hash at the head of an entry. */
const HASH_BYTES = 20;

/** The cache directory for this Node, or null when the cache is off. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const setting = env.DEEPSENTRY_COMPILE_CACHE;
  if (setting === '0' || setting === 'off') return null;
  const base = setting
    ? path.resolve(setting)
    : path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'deepsentry', 'compile-cache');
  return path.join(base, `${process.version}-${process.arch}`);
}

/** The package root this thread's cache is on for, or null. */
let enabledFor: string | null = null;

/**
 * The package root this thread loads modules through the cache for, or null: threads it starts turn it on too,
 * for the same root (lib/live/worker.ts), so a library user who never called enableCompileCache gets no cache in
 * any thread.
 */
export function compileCacheRoot(): string | null {
  return enabledFor;
}

/** Modules compiled without a usable entry, written by writeCompileCache. */
const pending: { script: vm.Script; file: string; hash: Buffer }[] = [];

/**
 * Turns the cache on for the modules under `packageRoot`'s dist/ and the @tensorflow packages it resolves, loaded from now on
 * (call it before requiring them). Returns which mechanism runs: Node's own, this file's, or none.
 */
export function enableCompileCache(packageRoot = ownPackageRoot(), env: NodeJS.ProcessEnv = process.env): 'node' | 'deepsentry' | 'off' {
  const dir = compileCacheDir(env);
  if (dir === null) return 'off';
  const loader = Module as unknown as CjsLoader;
  if (typeof loader.enableCompileCache === 'function') {
    try {
      loader.enableCompileCache(dir);
      enabledFor = packageRoot;
      return 'node';
    } catch {
      return 'off';
    }
  }
  if (enabledFor !== null) return 'deepsentry';
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch {
    return 'off';
  }
  enabledFor = packageRoot;
  const roots = [path.join(packageRoot, 'dist') + path.sep, tensorflowDir(packageRoot) + path.sep];
  const compile = loader.prototype._compile;

  loader.prototype._compile = function (this: CjsModule, content: string, filename: string): unknown {
    if (!filename.endsWith('.js') || !roots.some((r) => filename.startsWith(r))) return compile.call(this, content, filename);
    const file = path.join(dir, createHash('sha1').update(filename).digest('hex'));
    const hash = createHash('sha1').update(content).digest();
    let cachedData: Buffer | undefined;
    try {
      const entry = fs.readFileSync(file);
      if (entry.length > HASH_BYTES && entry.subarray(0, HASH_BYTES).equals(hash)) cachedData = entry.subarray(HASH_BYTES);
    } catch {
      // no entry yet
    }
    let script: vm.Script;
    try {
      script = new vm.Script(loader.wrap(content), { filename, cachedData });
    } catch {
      return compile.call(this, content, filename); // let Node report a syntax error its own way
    }
    if (cachedData === undefined || script.cachedDataRejected === true) pending.push({ script, file, hash });
    const fn = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    return fn.call(this.exports, this.exports, makeRequire(this, loader), this, filename, path.dirname(filename));
  };

  process.once('exit', writeCompileCache);
  return 'deepsentry';
}

/**
 * Writes the entries of the modules compiled since the last call (with what of them has run: functions compiled
 * lazily are in the bytecode too). At the exit of the thread that turned the cache on, and by a worker thread
 * once its entry module has loaded (lib/live/worker.ts): a worker that is terminated sees no exit event.
 */
export function writeCompileCache(): void {
  const written = pending.splice(0);
  for (const { script, file, hash } of written) {
    const tmp = `${file}.${process.pid}-${threadId}.tmp`;
    try {
      fs.writeFileSync(tmp, Buffer.concat([hash, script.createCachedData()]));
      fs.renameSync(tmp, file);
    } catch {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // nothing was written
      }
    }
  }
  if (written.length > 0) pruneCompileCache(path.dirname(written[0]!.file));
}

/**
 * Entries kept per cache directory. An entry is named by its file's path, so a package updated in place replaces
 * its entries, but each new install location (a temporary install, another checkout) adds its own ~90 (~1 MB).
 */
export const COMPILE_CACHE_ENTRIES = 2000;

/**
 * Keeps the `keep` entries of `dir` written last, removing the older ones (a removed entry that is still used is
 * compiled and written again by the next process that loads its file). Runs only after a process wrote entries.
 */
export function pruneCompileCache(dir: string, keep = COMPILE_CACHE_ENTRIES): void {
  try {
    const names = fs.readdirSync(dir).filter((n) => /^[0-9a-f]{40}$/.test(n));
    if (names.length <= keep) return;
    const aged = names.map((n) => ({ n, t: fs.statSync(path.join(dir, n)).mtimeMs })).sort((a, b) => b.t - a.t);
    for (const { n } of aged.slice(keep)) fs.rmSync(path.join(dir, n), { force: true });
  } catch {
    // another process pruned at the same time, or the directory is not ours to change: it only costs space
  }
}

/** The folder of the package.json nearest above this file: the package, run from dist/ or from source. */
function ownPackageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** Where the package's @tensorflow modules are: its own node_modules, or a parent's when it is installed as a dependency. */
function tensorflowDir(packageRoot: string): string {
  try {
    return path.dirname(path.dirname(require.resolve('@tensorflow/tfjs-core/package.json', { paths: [packageRoot] })));
  } catch {
    return path.join(packageRoot, 'node_modules', '@tensorflow');
  }
}

/** `require` as Node gives a CommonJS module: resolve (with its paths option), main, cache, extensions. */
function makeRequire(mod: CjsModule, loader: CjsLoader): NodeJS.Require {
  const require = ((id: string) => mod.require(id)) as NodeJS.Require;
  const resolve = ((request: string, options?: { paths?: string[] }) => loader._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) => (Module as unknown as { _resolveLookupPaths(r: string, m: CjsModule): string[] | null })._resolveLookupPaths(request, mod);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.cache = loader._cache as NodeJS.Require['cache'];
  require.extensions = loader._extensions as NodeJS.Require['extensions'];
  return require;
}
