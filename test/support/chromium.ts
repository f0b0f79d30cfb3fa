/**
 * Debian's chromium for the browser tests (driven by playwright-core; scripts/ci-system-deps.sh installs it):
 * its path and the flags that keep a headless run offline and quiet.
 */
import * as fs from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Chromium is there, or this is CI (where .ci/run installs it, so a missing one fails the test). */
export function chromiumExpected(): boolean {
  return fs.existsSync(CHROMIUM) || process.env.CI === 'true';
}
