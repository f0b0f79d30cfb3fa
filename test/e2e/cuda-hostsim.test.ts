/**
 * The device suites on the hostsim addon (native/cuda/hostsim/README.md; `npm run build:verify` →
 * build/Release/deepsentry_hostsim.node, a verification target): the addon with DS_HAVE_CUDA on a host stand-in of the CUDA runtime. There is
 * no GPU here or in CI, so this is how CudaLstm's forward/backward/encode, its device-memory handling and the
 * tfjs `deepsentry-cuda` backend on the real CudaLstm run at all. It checks that host code — not any GPU.
 *
 * test/unit/cuda.test.ts and test/unit/backend-cuda.test.ts run in a child mocha with DEEPSENTRY_NATIVE pointing at the
 * build and DEEPSENTRY_EXPECT_GPU=1 (a missing device fails instead of skipping): a child process because the
 * addon is loaded once per process, and this one already has the CPU build. The child must pass everything
 * and skip nothing. Skipped when the build is absent, except under CI=true (.ci/run builds it), where that
 * is a failure: a CI run must not go green by not running the device suites.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { loadNativeFile, packageRoot } from '../../lib/backend/native';
import { verifyBuildOrSkip } from '../support/native-helpers';

const SUITES = ['test/unit/cuda.test.ts', 'test/unit/backend-cuda.test.ts'];
/** The tail of the child's output shown on failure: the Spec reporter prints failures last. */
const SHOWN_CHARS = 12000;

describe('CUDA host code on the stand-in runtime (hostsim)', function () {
  const root = packageRoot();
  let file = '';

  before(function () {
    file = verifyBuildOrSkip(this, path.join('build', 'Release', 'deepsentry_hostsim.node'));
  });

  it('the hostsim build loads and reports CUDA compiled in with one (stand-in) device', function () {
    // Through the loader's own checks (complete addon, error class), as the child's loader will load it; the
    // child's loader would fall back to build/ if this file failed to load, so that must be ruled out here.
    const caps = loadNativeFile(file).capabilities();
    expect(caps.cudaCompiled, 'DS_HAVE_CUDA').to.equal(true);
    expect(caps.cudaDeviceCount).to.equal(1);
    expect(caps.cudaError).to.equal(null);
  });

  it(`${SUITES.join(' and ')} pass with nothing skipped (DEEPSENTRY_EXPECT_GPU=1)`, function () {
    this.timeout(300_000);
    const mocha = require.resolve('mocha/bin/mocha.js', { paths: [root] });
    const r = spawnSync(process.execPath, [mocha, ...SUITES], {
      cwd: root,
      env: { ...process.env, DEEPSENTRY_NATIVE: file, DEEPSENTRY_EXPECT_GPU: '1' },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 240_000,
    });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    const shown = output.length > SHOWN_CHARS ? `…${output.slice(-SHOWN_CHARS)}` : output;
    const how = r.error ? `failed to run (${r.error.message})` : r.signal ? `was killed by ${r.signal}` : `exited with ${r.status}`;
    const summary = /^(\d+) passed, (\d+) failed, (\d+) skipped$/m.exec((r.stdout ?? '').trimEnd().split('\n').pop() ?? '');
    const counts = summary ? { passed: Number(summary[1]), failed: Number(summary[2]), skipped: Number(summary[3]) } : null;
    const msg = `child mocha on ${SUITES.join(' ')} with DEEPSENTRY_NATIVE=${path.relative(root, file)} ${how}, ` +
      `summary ${counts ? JSON.stringify(counts) : 'missing'}; its output:\n${shown}`;
    if (r.error || r.status !== 0 || !counts || counts.failed !== 0 || counts.skipped !== 0 || counts.passed === 0) {
      expect.fail(msg);
    }
  });
});
