#!/usr/bin/env node
'use strict';
// The CLI entry: runs the compiled TypeScript in dist/ (built by `npm ci` / `npm run build`).
// the first moment bench/score.ts reads (lib/marks.ts)
performance.mark('deepsentry:bin');
let main;
try {
  // compiled modules kept on disk for the next start (lib/compile_cache.ts)
  require('../dist/lib/compile_cache.js').enableCompileCache();
  ({ main } = require('../dist/lib/cli/main.js'));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /dist\/lib\/(cli\/main|compile_cache)\.js/.test(String(err.message))) {
    process.stderr.write('deepsentry: the TypeScript is not compiled yet: run `npm run build` in the package directory.\n');
    process.exit(1);
  }
  throw err;
}
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
