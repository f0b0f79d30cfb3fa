#!/usr/bin/env node
'use strict';
// Builds the hostsim addon: build-hostsim/deepsentry.node, the addon with DS_HAVE_CUDA whose CUDA runtime is a
// host stand-in (native/cuda/hostsim/README.md). It lets CudaLstm and the tfjs `deepsentry-cuda` backend run
// in CI without a GPU; test/e2e/cuda-hostsim.test.ts runs the device test suites against it.
//   npm run build:hostsim
// Plain CMake on native/cuda/hostsim/CMakeLists.txt, with the Node-API headers of the repository's own
// node_modules (node-api-headers, node-addon-api), under `nice`: the machine is shared. Needs cmake and g++,
// not nvcc.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const outDir = path.join(root, 'build-hostsim');

function fail(message) {
  process.stderr.write(`build-cuda-hostsim: ${message}\n`);
  process.exit(1);
}

/** The directory of an installed package of this repository. */
function packageDir(name) {
  try {
    return path.dirname(require.resolve(`${name}/package.json`, { paths: [root] }));
  } catch {
    return fail(`${name} is not installed: run \`npm ci\` first.`);
  }
}

function has(cmd) {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

/** Runs a command under `nice` (when present), failing with its name on error. */
function run(args) {
  const cmd = has('nice') ? ['nice', '-n', '10', ...args] : args;
  process.stdout.write(`build-cuda-hostsim: ${cmd.map((a) => (a.startsWith(root) ? path.relative(root, a) || '.' : a)).join(' ')}\n`);
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: root, stdio: 'inherit' });
  if (r.error) fail(`${args[0]}: ${r.error.message}`);
  if (r.status !== 0) fail(`${args[0]} failed (exit ${r.status}); the messages above say which file or step.`);
}

if (!has('cmake')) fail('cmake was not found on PATH (apt-get install cmake); it and g++ build the hostsim addon.');

const napiIncludes = [path.join(packageDir('node-api-headers'), 'include'), packageDir('node-addon-api')];
const configure = ['cmake', '-S', path.join(root, 'native', 'cuda', 'hostsim'), '-B', outDir,
  `-DDS_ROOT=${root}`, `-DDS_NAPI_INCLUDES=${napiIncludes.join(';')}`, '-DCMAKE_BUILD_TYPE=Release'];
// Ninja when present (as cmake-js prefers); otherwise CMake's default generator. A build directory keeps the
// generator it was configured with.
if (!fs.existsSync(path.join(outDir, 'CMakeCache.txt')) && has('ninja')) configure.push('-G', 'Ninja');
run(configure);
const jobs = Number(process.env.DEEPSENTRY_BUILD_JOBS) || (os.availableParallelism ? os.availableParallelism() : os.cpus().length);
run(['cmake', '--build', outDir, '--parallel', String(Math.max(1, jobs))]);

const built = path.join(outDir, 'deepsentry.node');
if (!fs.existsSync(built)) fail(`the build reported success but ${built} is missing`);
process.stdout.write(`build-cuda-hostsim: built ${path.relative(root, built)}\n`);
