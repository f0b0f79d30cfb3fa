/**
 * lib/compile_cache.ts: modules compiled with the on-disk code cache behave as Node loads them (exports,
 * require and require.resolve, __filename, stack-trace line numbers), the second process uses the cache, a
 * changed source is never answered from a stale entry, a damaged entry is replaced, and syntax errors are
 * Node's own. Each case runs real child processes on a package laid out in a temporary folder.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileCacheDir, pruneCompileCache } from '../../lib/compile_cache';

const CACHE_TS = path.resolve(__dirname, '../../lib/compile_cache.ts');

/** Runs `main` of the package at `root` with the cache in `cache`; the child prints JSON. */
function run(root: string, cache: string): { status: number | null; out: string; err: string } {
  const script = `const how = require(${JSON.stringify(CACHE_TS)}).enableCompileCache(${JSON.stringify(root)});
    const r = require(${JSON.stringify(path.join(root, 'dist', 'main.js'))});
    process.stdout.write(JSON.stringify({ how, ...r }));`;
  const p = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], {
    env: { ...process.env, DEEPSENTRY_COMPILE_CACHE: cache },
    encoding: 'utf8',
    cwd: path.resolve(__dirname, '../..'),
  });
  return { status: p.status, out: p.stdout, err: p.stderr };
}

function entries(cache: string): string[] {
  const dir = compileCacheDir({ DEEPSENTRY_COMPILE_CACHE: cache });
  return dir !== null && fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
}

describe('the CLI compile cache (lib/compile_cache.ts)', () => {
  let root: string;
  let cache: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-cc-'));
    cache = path.join(root, 'cache');
    fs.mkdirSync(path.join(root, 'dist'));
    fs.writeFileSync(
      path.join(root, 'dist', 'main.js'),
      [
        "'use strict';",
        "const b = require('./b');",
        'function where() {',
        "  return new Error('here').stack.split('\\n')[1].trim();",
        '}',
        'module.exports = {',
        '  value: b.value,',
        "  resolved: require.resolve('./b'),",
        '  file: __filename,',
        '  dir: __dirname,',
        '  isExports: this === exports,',
        '  where: where(),',
        '};',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(root, 'dist', 'b.js'), 'exports.value = 41 + 1;\n');
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('loads modules as Node does, writes the cache once, and reads it in the next process', () => {
    const first = run(root, cache);
    expect(first.status, first.err).to.equal(0);
    const a = JSON.parse(first.out);
    expect(a).to.include({ how: 'deepsentry', value: 42, resolved: path.join(root, 'dist', 'b.js'), file: path.join(root, 'dist', 'main.js'), dir: path.join(root, 'dist'), isExports: true });
    expect(a.where).to.equal(`at where (${path.join(root, 'dist', 'main.js')}:4:10)`);
    const written = entries(cache);
    expect(written).to.have.length(2);
    const mtimes = written.map((f) => fs.statSync(f).mtimeMs);

    const second = run(root, cache);
    expect(second.status, second.err).to.equal(0);
    expect(JSON.parse(second.out)).to.deep.equal(a);
    // entries V8 accepted are not written again
    expect(written.map((f) => fs.statSync(f).mtimeMs)).to.deep.equal(mtimes);
  });

  it('never answers a changed source from the old entry, and replaces it', () => {
    expect(run(root, cache).status).to.equal(0);
    const before = new Map(entries(cache).map((f) => [f, fs.readFileSync(f)]));
    fs.writeFileSync(path.join(root, 'dist', 'b.js'), 'exports.value = 7;\n');
    const r = run(root, cache);
    expect(r.status, r.err).to.equal(0);
    expect(JSON.parse(r.out).value).to.equal(7);
    const changed = entries(cache).filter((f) => !before.get(f)?.equals(fs.readFileSync(f)));
    expect(changed).to.have.length(1);
  });

  it('recovers from a damaged entry (V8 refuses it) and writes a good one', () => {
    expect(run(root, cache).status).to.equal(0);
    for (const f of entries(cache)) {
      const e = fs.readFileSync(f);
      e.fill(0x5a, 20); // keep the source hash, spoil V8's data
      fs.writeFileSync(f, e);
    }
    const r = run(root, cache);
    expect(r.status, r.err).to.equal(0);
    expect(JSON.parse(r.out).value).to.equal(42);
    expect(run(root, cache).status).to.equal(0);
    for (const f of entries(cache)) expect(fs.readFileSync(f).subarray(20).every((x) => x === 0x5a)).to.equal(false);
  });

  it("leaves a syntax error to Node's own message", () => {
    fs.writeFileSync(path.join(root, 'dist', 'b.js'), 'exports.value = ;\n');
    const r = run(root, cache);
    expect(r.status).to.not.equal(0);
    expect(r.err).to.match(/SyntaxError: Unexpected token/);
    expect(r.err).to.include(path.join(root, 'dist', 'b.js'));
  });

  it('is off with DEEPSENTRY_COMPILE_CACHE=0 and writes nothing', () => {
    const r = run(root, '0');
    expect(r.status, r.err).to.equal(0);
    expect(JSON.parse(r.out)).to.include({ how: 'off', value: 42 });
    expect(compileCacheDir({ DEEPSENTRY_COMPILE_CACHE: 'off' })).to.equal(null);
    expect(compileCacheDir({ XDG_CACHE_HOME: '/x' })).to.equal(path.join('/x', 'deepsentry', 'compile-cache', `${process.version}-${process.arch}`));
  });
});

describe('the compile cache in worker threads (lib/live/worker.ts startWorker)', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-ccw-'));
    fs.mkdirSync(path.join(root, 'dist'));
    fs.writeFileSync(
      path.join(root, 'dist', 'entry.js'),
      // the answer goes once the worker's start-up script has run to its end (its cache written): the test then terminates it
      "const { parentPort } = require('node:worker_threads');\nconst v = require('./b').value;\nsetTimeout(() => parentPort.postMessage(v), 0);\nsetInterval(() => undefined, 1000);\n",
    );
    fs.writeFileSync(path.join(root, 'dist', 'b.js'), 'exports.value = 6 * 7;\n');
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /** Starts a worker on dist/entry.js from a process that has (or has not) turned the cache on; the worker is terminated. */
  function runWorker(cacheOn: boolean): { status: number | null; out: string; err: string } {
    const script = `${cacheOn ? `require(${JSON.stringify(CACHE_TS)}).enableCompileCache(${JSON.stringify(root)});` : ''}
      const { startWorker } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/live/worker.ts'))});
      const w = startWorker(${JSON.stringify(path.join(root, 'dist', 'entry.js'))}, {});
      w.once('message', (v) => { process.stdout.write(String(v)); void w.terminate(); });`;
    const p = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], {
      env: { ...process.env, DEEPSENTRY_COMPILE_CACHE: path.join(root, 'cache') },
      encoding: 'utf8',
      cwd: path.resolve(__dirname, '../..'),
    });
    return { status: p.status, out: p.stdout, err: p.stderr };
  }

  it("turns it on in the worker when the starting thread has it, and writes the worker's entries although it is terminated", () => {
    const r = runWorker(true);
    expect(r.status, r.err).to.equal(0);
    expect(r.out).to.equal('42');
    expect(entries(path.join(root, 'cache'))).to.have.length(2); // entry.js and b.js, written by the worker
    const again = runWorker(true);
    expect(again.status, again.err).to.equal(0);
    expect(again.out).to.equal('42');
  });

  it('leaves a worker without it when the starting thread never turned it on (a library user)', () => {
    const r = runWorker(false);
    expect(r.status, r.err).to.equal(0);
    expect(r.out).to.equal('42');
    expect(entries(path.join(root, 'cache'))).to.have.length(0);
  });
});

describe('the compile cache directory stays bounded (pruneCompileCache)', () => {
  it('keeps the entries written last and leaves other files alone', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-ccp-'));
    try {
      const names = Array.from({ length: 7 }, (_, i) => `${String(i).repeat(40)}`);
      names.forEach((n, i) => {
        fs.writeFileSync(path.join(dir, n), 'x');
        fs.utimesSync(path.join(dir, n), 1000 + i, 1000 + i); // entry i written at second 1000 + i
      });
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'not an entry');
      pruneCompileCache(dir, 7);
      expect(fs.readdirSync(dir)).to.have.length(8);
      pruneCompileCache(dir, 3);
      expect(fs.readdirSync(dir).sort()).to.deep.equal([...names.slice(4), 'notes.txt'].sort());
      pruneCompileCache(path.join(dir, 'missing'), 3); // no directory: nothing to do, no throw
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
