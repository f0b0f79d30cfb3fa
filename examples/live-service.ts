/**
 * Embedding DeepSentry's live monitor in a Node service: score lines as they arrive, get alerts with the
 * lines that led to them and what the model expected instead.
 *
 *   npx deepsentry train data/sample/HDFS.log.gz --out runs/model  # once: a trained model (runs/ is git-ignored)
 *   npx tsx examples/live-service.ts runs/model [LOG]              # LOG defaults to the embedded sample
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import * as path from 'node:path';
import { createScorer, LiveMonitor } from '../lib';

async function main(): Promise<void> {
  const [modelDir, log = path.join(__dirname, '../data/sample/HDFS.log.gz')] = process.argv.slice(2);
  if (!modelDir) throw new Error('usage: tsx examples/live-service.ts MODEL_DIR [LOG]');

  // The trained model, scored in a worker thread so this thread's event loop stays free.
  const scorer = await createScorer(modelDir, { idleTimeoutMs: 300_000 });
  const monitor = new LiveMonitor(scorer, {
    threshold: { mode: 'fixed' }, // the model's saved threshold; 'rolling' / 'ewma' adapt above it
  });
  let alerts = 0;
  monitor.on('anomaly', (a) => {
    if (++alerts > 5) return; // print the first few
    console.log(`${a.session}: score ${a.score.toFixed(2)} > ${a.threshold.toFixed(2)}${a.isSessionEnd ? ' (session end)' : ''}`);
    console.log(`  ${a.line}`);
    if (a.expected) console.log(`  expected instead: ${a.expected}`);
  });
  await monitor.start();

  const input = createReadStream(log);
  const lines = createInterface({ input: log.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
  let batch: string[] = [];
  for await (const line of lines) {
    batch.push(line);
    if (batch.length === 1000) {
      await monitor.push(batch); // waits when the monitor's queue is full (backpressure)
      batch = [];
    }
  }
  if (batch.length > 0) await monitor.push(batch);
  await monitor.stop(); // scores what is queued, ends open sessions, closes the scorer
  const s = monitor.snapshot();
  console.log(`${s.lines} lines, ${s.events} events, ${s.anomalies} anomalies`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
