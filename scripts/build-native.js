#!/usr/bin/env node
'use strict';
// Builds the native addon with cmake-js (the primary build): build/Release/deepsentry.node.
//   npm run build:native                        # CPU kernels, plus CUDA when nvcc is found
//   npm run build:native -- --CDDS_CUDA=OFF     # any further arguments go to `cmake-js compile`
//   DEEPSENTRY_CUDA=OFF npm run build:native    # the same switch from the environment
//   npm run build:verify                        # = build:native -- --target ds_verify: the test-only targets
//                                               # (deepsentry_verify.node, deepsentry_hostsim.node, selftest)
// Works offline: package.json's "binary": {"napi_versions": [8]} makes cmake-js take the Node-API headers from
// the node-api-headers / node-addon-api packages instead of downloading Node's.
const { spawnSync } = require('child_process');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');

function fail(message) {
  process.stderr.write(`build-native: ${message}\n`);
  process.exit(1);
}

const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
if (cmake.error || cmake.status !== 0) {
  fail('cmake was not found on PATH. Install CMake >= 3.19 (e.g. `apt-get install cmake`) and a C++17 compiler, ' +
    'then run `npm run build:native` again. Without the addon DeepSentry still works on its pure-TypeScript path.');
}

let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  fail('cmake-js is not installed: run `npm ci` (or `npm install`) first.');
}

const args = [cmakeJs, 'compile', '--directory', root, '--out', path.join(root, 'build'), '--config', 'Release'];
// Parallel compile of the per-ISA kernel files; the machine may be shared, so never more than the core count.
const jobs = Number(process.env.DEEPSENTRY_BUILD_JOBS) || (os.availableParallelism ? os.availableParallelism() : os.cpus().length);
args.push('--parallel', String(Math.max(1, jobs)));
if (process.env.DEEPSENTRY_CUDA && !process.argv.slice(2).some((a) => a.startsWith('--CDDS_CUDA'))) {
  args.push(`--CDDS_CUDA=${process.env.DEEPSENTRY_CUDA}`);
}
args.push(...process.argv.slice(2));

// node-gyp-style header lookups honour npm_config_nodedir; set it so that a fresh shell behaves like CI.
const env = { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir || '/usr' };
process.stdout.write(`build-native: node ${args.map((a) => path.relative(root, a) || a).join(' ')}\n`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
if (r.error) fail(r.error.message);
if (r.status !== 0) {
  fail(`cmake-js failed (exit ${r.status}). The messages above say which file or step; ` +
    'a stale build/ directory can be removed with `rm -rf build` before retrying.');
}
const target = process.argv.slice(2).find((a, i, all) => all[i - 1] === '--target' || all[i - 1] === '-T');
process.stdout.write(`build-native: built ${target ? `target ${target}` : path.join('build', 'Release', 'deepsentry.node')}\n`);
