#!/usr/bin/env bash
# Checks the package a Node service would depend on, as npm would publish it: packs the project, refuses a
# tarball that ships tests or benchmarks or lacks the LICENSE, installs it into a fresh folder (its install
# script builds the addon there), trains a small model with the installed CLI, then imports every entry of the
# exports map from CommonJS and from ESM and scores real lines with that model.
#   bash scripts/check-package.sh            # CI runs it after the build (.ci/run)
#   DEEPSENTRY_CUDA=ON bash scripts/...      # the addon inside the install is built CPU-only unless this says ON
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export npm_config_nodedir="${npm_config_nodedir:-/usr}"

say() { printf 'check-package: %s\n' "$*"; }
fail() { printf 'check-package: FAILED: %s\n' "$*" >&2; exit 1; }

cd "$root"
say "npm pack (runs the TypeScript build)"
tarball="$tmp/$(npm pack --silent --pack-destination "$tmp" | tail -n 1)"
[ -f "$tarball" ] || fail "npm pack wrote no tarball"
listing="$(tar tzf "$tarball")"
stray="$(grep -E '^package/(dist/(test|bench|scripts|examples)/|test/|bench/)' <<<"$listing" | head -5 || true)"
[ -z "$stray" ] || fail "the tarball ships tests or benchmarks: $stray"
grep -qx 'package/LICENSE' <<<"$listing" || fail "the tarball has no LICENSE"
say "$(wc -l <<<"$listing") files, $(du -h "$tarball" | cut -f1), no tests or benchmarks, LICENSE present"

app="$tmp/app"
mkdir -p "$app" && cd "$app"
printf '{ "name": "check-deepsentry-app", "version": "1.0.0", "private": true }\n' > package.json
say "npm install <tarball> into a fresh folder (builds the addon; CUDA ${DEEPSENTRY_CUDA:-OFF})"
DEEPSENTRY_CUDA="${DEEPSENTRY_CUDA:-OFF}" npm install --no-audit --no-fund --prefer-offline --foreground-scripts "$tarball" \
  > "$tmp/install.log" 2>&1 || { tail -n 40 "$tmp/install.log" >&2; fail "npm install of the tarball"; }
[ -f node_modules/deepsentry/build/Release/deepsentry.node ] || { tail -n 40 "$tmp/install.log" >&2; fail "the install did not build the addon"; }

# 3,000 real lines of the sample the package ships, and a configuration small enough to train in seconds.
node -e "
const fs = require('fs'), zlib = require('zlib');
const text = zlib.gunzipSync(fs.readFileSync('node_modules/deepsentry/data/sample/HDFS.log.gz')).toString('utf8');
fs.writeFileSync('train.log', text.split('\n').slice(0, 3000).join('\n') + '\n');
fs.writeFileSync('score.json', JSON.stringify(text.split('\n').slice(3000, 3400)));
fs.writeFileSync('tiny.json', JSON.stringify({
  text: { model: { embeddingDim: 8, hiddenSize: 16, latentDim: 16 }, train: { epochs: 5, batchSize: 32 } },
  detector: { model: { hiddenSize: 8 }, train: { epochs: 2, batchSize: 256 } },
}));"
say "npx deepsentry train (the installed CLI)"
npx --no-install deepsentry train train.log --out model --config tiny.json --quiet > "$tmp/train.log" 2>&1 \
  || { cat "$tmp/train.log" >&2; fail "deepsentry train with the installed package"; }
[ -f model/model.json ] || fail "train wrote no model/model.json"

cat > use.cjs <<'EOF'
const assert = require('assert');
const { DeepSentry } = require('deepsentry');
const backend = require('deepsentry/backend');
const live = require('deepsentry/live');
assert.strictEqual(typeof backend.fusedLstm, 'function', 'deepsentry/backend exports fusedLstm');
assert.strictEqual(typeof backend.useBackend, 'function', 'deepsentry/backend exports useBackend');
assert.strictEqual(typeof live.LiveMonitor, 'function', 'deepsentry/live exports LiveMonitor');
assert.strictEqual(require('deepsentry/package.json').name, 'deepsentry');
(async () => {
  const model = await DeepSentry.load('model');
  const r = await model.scoreLines(require('./score.json'));
  assert.ok(r.sessions.length > 0 && r.sessions.every((s) => Number.isFinite(s.score)), 'finite session scores');
  console.log(`cjs: ${r.sessions.length} sessions scored, backend ${backend.currentBackend()?.backend}`);
})().catch((e) => { console.error(e); process.exit(1); });
EOF
cat > use.mjs <<'EOF'
import assert from 'node:assert';
import { readFileSync } from 'node:fs';
import { DeepSentry } from 'deepsentry';
import { fusedLstm, currentBackend } from 'deepsentry/backend';
import { LiveMonitor } from 'deepsentry/live';
assert.strictEqual(typeof fusedLstm, 'function');
assert.strictEqual(typeof LiveMonitor, 'function');
const model = await DeepSentry.load('model');
const r = await model.scoreLines(JSON.parse(readFileSync('score.json', 'utf8')));
assert.ok(r.sessions.length > 0 && r.sessions.every((s) => Number.isFinite(s.score)), 'finite session scores');
console.log(`esm: ${r.sessions.length} sessions scored, backend ${currentBackend()?.backend}`);
EOF
cat > use.ts <<'EOF'
import { DeepSentry, type ScoreLinesResult } from 'deepsentry';
import { useBackend } from 'deepsentry/backend';
import { LiveMonitor } from 'deepsentry/live';
export async function check(dir: string): Promise<ScoreLinesResult> {
  void useBackend; void LiveMonitor;
  return (await DeepSentry.load(dir)).scoreLines(['a line']);
}
EOF
node use.cjs || fail "CommonJS use of the installed package"
node use.mjs || fail "ESM use of the installed package"
say "types resolve through the exports map (tsc, moduleResolution node16)"
"$root/node_modules/.bin/tsc" --noEmit --strict --module node16 --moduleResolution node16 --types node \
  --typeRoots "$root/node_modules/@types" --skipLibCheck use.ts || fail "the package's types do not resolve from TypeScript"
say "ok"
