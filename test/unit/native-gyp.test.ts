/**
 * The node-gyp build (`npm run build:gyp` → build-gyp/Release/deepsentry.node) is the same CPU addon as the
 * cmake-js one: it loads through the loader's checks, reports the same version and SIMD levels, and computes
 * the same results. Skipped when that build does not exist (it is the alternative build; .ci/run builds it).
 */
import { expect } from 'chai';
import * as path from 'path';
import { loadNativeFile } from '../../lib/backend/native';
import { lstmForwardRef } from '../../lib/backend/reference';
import { builtOrSkip, lstmProblem, maxRelErr, nativeOrSkip, refInput, rngFor } from '../support/native-helpers';

describe('node-gyp build', function () {
  it('loads, matches the cmake-js build and the reference', function () {
    const file = builtOrSkip(this, path.join('build-gyp', 'Release', 'deepsentry.node'), 'build:gyp');
    const main = nativeOrSkip(this);
    const gyp = loadNativeFile(file);
    const caps = gyp.capabilities();
    expect(caps.version).to.equal(main.capabilities().version);
    expect(caps.cudaCompiled, 'the gyp build is CPU-only').to.equal(false);
    expect(caps.simdSupported).to.deep.equal(main.capabilities().simdSupported.filter((l) => caps.simdSupported.includes(l)));
    const p = lstmProblem(rngFor(42), { batch: 3, steps: 5, inputSize: 19, hiddenSize: 17 }, { lengths: true, state: true, reverse: true });
    for (const level of caps.simdSupported) {
      gyp.setSimdLevel(level);
      const r = gyp.lstmForward(p);
      expect(maxRelErr(r.y, lstmForwardRef(refInput(p)).y), level).to.be.below(1e-5);
    }
    gyp.setSimdLevel(caps.simd);
    // and its boundary is the same: a bad argument is a DeepSentryError with a code
    expect(() => gyp.lstmForward({ ...p, hiddenSize: 0 })).to.throw().with.property('code', 'DS_OUT_OF_RANGE');
  });
});
