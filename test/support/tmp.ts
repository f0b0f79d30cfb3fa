/**
 * Temporary directories for the tests, under the OS temp dir and named `ds-<prefix>-…`, removed when the test
 * process exits (also after a failure, so a red run leaves nothing behind). A suite may remove its own earlier.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A new empty directory. */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `ds-${prefix}-`));
  made.push(d);
  return d;
}

let work: string | null = null;
/** One directory shared by the whole test run (fixtures made once per run live here). */
export function workDir(): string {
  work ??= tempDir('test-run');
  return work;
}
