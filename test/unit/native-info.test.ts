/**
 * The text of `deepsentry info` and the loader's report when nothing loads (in process). The CLI itself, in a
 * child process per case, is test/e2e/native-info-cli.test.ts.
 */
import { expect } from 'chai';
import { describeNativeFailure } from '../../lib/backend/native';
import { cudaVersionText, formatInfo, type InfoReport } from '../../lib/cli/commands/info-impl';

describe('deepsentry info', function () {
  it('when nothing loads, the message lists every reason and the fix', () => {
    const status: InfoReport = {
      loaded: false, path: null, capabilities: null, notes: [], fallback: 'ts',
      errors: [{ path: '/x/build/Release/deepsentry.node', error: '/x/build/Release/deepsentry.node does not exist (not built)' },
        { path: '/x/build-gyp/Release/deepsentry.node', error: '/x/build-gyp/Release/deepsentry.node failed to load: bad ELF' }],
    };
    const text = formatInfo(status);
    expect(text).to.contain('not built');
    expect(text).to.contain('bad ELF');
    expect(text).to.contain('npm run build:native');
    expect(describeNativeFailure(status)).to.contain('What still works');
    expect(cudaVersionText(13000)).to.equal('13.0');
    expect(cudaVersionText(12080)).to.equal('12.8');
    expect(cudaVersionText(null)).to.equal('n/a');
  });
});
