/**
 * The CPU kernels' own self-test (native/src/kernels/selftest.cpp), a verification target built by
 * `npm run build:verify` and never part of the shipped addon: every SIMD level this CPU has, 1 to 3 threads,
 * against a float64 reference, without Node. Skipped when not built, except under CI=true.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { verifyBuildOrSkip } from '../support/native-helpers';

describe('CPU kernels self-test (ds_kernel_selftest)', function () {
  it('passes at every SIMD level and thread count it tries', function () {
    this.timeout(120_000);
    const exe = verifyBuildOrSkip(this, path.join('build', 'ds_kernel_selftest'));
    const r = spawnSync(exe, [], { encoding: 'utf8', timeout: 110_000 });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    expect(r.error, output).to.equal(undefined);
    expect(r.signal, output).to.equal(null);
    expect(r.status, output).to.equal(0);
    expect(r.stdout.trimEnd().split('\n').pop(), output).to.equal('all passed');
  });
});
