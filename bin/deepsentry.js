#!/usr/bin/env node
'use strict';
// The CLI entry: runs the compiled TypeScript in dist/ (built by `npm ci` / `npm run build`).
// the first moment bench/score.ts reads (lib/marks.ts)
performance.mark('deepsentry:bin');
let main;
try {
  ({ main } = require('../dist/lib/cli/main.js'));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/lib/cli/main.js')) {
    process.stderr.write('deepsentry: the TypeScript is not compiled yet: run `npm run build` in the package directory.\n');
    process.exit(1);
  }
  throw err;
}
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
