/**
 * `deepsentry config` as a user runs it (a child process): the annotated defaults on stdout, a bad --config
 * key named on stderr. The in-process checks of the same text are test/unit/cli-ux.test.ts.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { annotatedConfig } from '../../lib/pipeline/config';
import { runCli } from '../support/cli';
import { workDir } from '../support/tmp';

describe('config --defaults (CLI)', () => {
  it('the CLI prints it (exit 0), and checks a --config file against it', function () {
    this.timeout(60_000);
    const r = runCli(['config', '--defaults']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(annotatedConfig());
    const bad = path.join(workDir(), 'bad-config.yaml');
    fs.writeFileSync(bad, 'logs:\n  session:\n    windowMz: 5\n');
    const e = runCli(['config', '--config', bad]);
    expect(e.code).to.equal(1);
    expect(e.stderr).to.match(/^deepsentry: --config .*bad-config\.yaml: Unknown option logs\.session\.windowMz\n$/);
  });
});

