/**
 * The split the scripts rely on: `npm run test:unit` runs test/unit (fast, in process) and `npm run test:e2e`
 * test/e2e (the CLI, browsers, training, child processes). A test file anywhere else would run in neither, and
 * a unit file that runs the CLI, starts any child process or a browser, or trains the fixture model would make
 * the quick run slow; both are caught here, naming the file.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';

const TEST = path.resolve(__dirname, '..');

/** Every *.test.ts under test/, relative to it. */
function testFiles(dir = TEST): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.ts') ? [path.relative(TEST, p)] : [];
  });
}

/** What a unit test must not do, by the source text that does it. */
const E2E_ONLY: [RegExp, string][] = [
  [/from '\.\.\/support\/cli'/, 'runs the CLI (test/support/cli.ts)'],
  [/['"](node:)?child_process['"]/, 'starts a child process'],
  [/['"]playwright(-core)?['"]/, 'drives a browser'],
  [/\btrainedModel\b|\btrainModel\b/, 'trains a pipeline model'],
];

describe('test layout', () => {
  it('every test file is in test/unit or test/e2e', () => {
    const files = testFiles();
    expect(files.length).to.be.greaterThan(0);
    const elsewhere = files.filter((f) => !/^(unit|e2e)\//.test(f));
    expect(elsewhere, 'move these into test/unit (fast, in process) or test/e2e').to.deep.equal([]);
  });

  it('no unit test runs the CLI, a child process, a browser or a training run', () => {
    const found: string[] = [];
    for (const f of testFiles().filter((x) => x.startsWith('unit/'))) {
      const text = fs.readFileSync(path.join(TEST, f), 'utf8');
      for (const [re, what] of E2E_ONLY) if (re.test(text)) found.push(`test/${f} ${what}`);
    }
    expect(found, 'these belong in test/e2e').to.deep.equal([]);
  });
});
