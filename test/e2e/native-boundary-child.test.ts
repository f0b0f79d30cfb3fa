/**
 * The N-API boundary under use-after-free pressure, in a child process (test/support/async-detach-child.ts) so
 * that a crash is observed rather than suffered: every async entry point with each of its arrays detached and
 * freed before the job starts. The in-process boundary tests are test/unit/native-boundary.test.ts.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { nativeStatus } from '../../lib/backend/native';
import type { NativeBinding } from '../../lib/backend/binding';
import type { DetachOutcome } from '../support/async-detach-child';
import { updatedInPlace } from '../support/native-entry-points';
import { nativeOrSkip } from '../support/native-helpers';

describe('native boundary (child process)', function () {
  let native: NativeBinding;
  before(function () {
    native = nativeOrSkip(this);
  });

  it('every async entry point survives each of its arrays being detached and freed before the job starts (child process)', function () {
    this.timeout(120_000);
    const file = nativeStatus().path!;
    // UV_THREADPOOL_SIZE=1: the child's long blocker job keeps every other job queued while it frees the
    // memory; mmap_threshold: each block of 4 KiB or more is its own mapping, so a read after free faults.
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(__dirname, '..', 'support', 'async-detach-child.ts'), file], {
      cwd: path.join(__dirname, '../..'),
      encoding: 'utf8',
      env: { ...process.env, UV_THREADPOOL_SIZE: '1', GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=4096' },
      timeout: 100_000, // a hung child is killed (SIGTERM) and fails the test below
    });
    expect(r.signal, `the child was killed by ${r.signal} (the addon touched freed memory); stderr: ${r.stderr}`).to.equal(null);
    expect(r.status, `child exit ${r.status}; stderr: ${r.stderr}`).to.equal(0);
    const outcomes = JSON.parse(r.stdout) as DetachOutcome[];
    const asyncNames = Object.keys(native).filter((k) => k.endsWith('Async')).sort();
    expect([...new Set(outcomes.map((o) => o.fn))].sort(), 'every *Async entry point is covered').to.deep.equal(asyncNames);
    for (const o of outcomes) {
      const what = `${o.fn} with ${o.array} detached`;
      if (updatedInPlace(o.fn, o.array)) {
        expect(o.status, `${what}: ${o.message ?? ''}`).to.equal('rejected');
        expect(o.code, what).to.equal('DS_INVALID_ARGUMENT');
        // the addon names an element of an array argument params[1].weights
        expect(o.message, what).to.equal(`${o.fn}: ${o.array.replace(/\.(\d+)\./g, '[$1].')} was detached or resized while the job was running; nothing was written (the arrays updated in place keep the values they had)`);
      } else {
        expect(o.status, `${what}: ${o.message ?? ''}`).to.equal('resolved');
        expect(o.difference, `${what}: the result differs from the sync one`).to.equal(null);
      }
      if (o.inPlace !== undefined) expect(o.inPlace, `${what}: in-place arrays`).to.equal(null);
    }
  });
});
