/**
 * Trains both models on a log with the library API and times each stage — the figures in the README.
 *
 *   npx tsx examples/train-hdfs.ts [LOG] [--backend auto|native|cpu] [--one-epoch]
 *
 * LOG defaults to the embedded sample, data/sample/HDFS.log.gz (the hdfs-dev split). --one-epoch runs exactly one epoch of each model (no
 * validation, no early stopping): the like-for-like speed comparison between backends. Without it, both
 * models train with their defaults (early stopping), as `deepsentry train` does.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { useBackend } from '../lib/backend';
import { prepareLogs, readPreparedMessages, readPreparedSessions } from '../lib/logs/prepared';
import { Detector } from '../lib/models/detector';
import { TextAutoencoder } from '../lib/models/text';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string) => args.includes(name);
  const opt = (name: string, def: string) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : def);
  const log = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--backend'))) ?? path.resolve(__dirname, '../data/sample/HDFS.log.gz');
  const sel = useBackend(opt('--backend', 'auto') as 'auto' | 'native' | 'cpu');
  const oneEpoch = flag('--one-epoch');
  console.log(`backend: ${sel.backend} — ${sel.reason}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-train-'));
  try {
    let t = Date.now();
    const summary = await prepareLogs([log], tmp);
    const prep = (Date.now() - t) / 1000;
    console.log(`prepare: ${summary.parsed} lines, ${summary.sessions} sessions, ${summary.distinctMessages} distinct messages, vocabulary ${summary.vocabularySize} — ${prep.toFixed(1)} s`);
    const messages = await readPreparedMessages(tmp);
    const sessions: number[][] = [];
    const ended: boolean[] = [];
    for await (const s of readPreparedSessions(tmp)) {
      sessions.push(s.messages);
      ended.push(s.end !== 'end'); // closed by the end of the input: its end is not an observed event
    }
    const epochs = oneEpoch ? { epochs: 1, validationSplit: 0 } : {};

    t = Date.now();
    const text = new TextAutoencoder({ vocabSize: summary.vocabularySize });
    const tr = await text.fit(messages.map((m) => Int32Array.from(m.ids)), epochs);
    const textS = (Date.now() - t) / 1000;
    console.log(`text model: ${messages.length} distinct messages, ${tr.epochs} epochs, loss ${tr.loss.toFixed(4)} — ${textS.toFixed(2)} s`);

    t = Date.now();
    const D = text.config.latentDim;
    const vectors = new Float32Array((messages.length + 2) * D);
    vectors.set(text.encode(messages.map((m) => Int32Array.from(m.ids))), 2 * D);
    const encS = (Date.now() - t) / 1000;
    console.log(`encode: ${messages.length} messages — ${encS.toFixed(3)} s`);

    t = Date.now();
    const det = new Detector({ vectorDim: D });
    const dr = await det.fit(vectors, sessions, { ...epochs, ended });
    const detS = (Date.now() - t) / 1000;
    console.log(`detector: ${sessions.length} sessions, ${dr.epochs} epochs (best ${dr.bestEpoch}), loss ${dr.loss.toFixed(4)}, ${Math.round(dr.itemsPerSecond)} distinct windows/s — ${detS.toFixed(2)} s`);
    console.log(`training total (text + encode + detector): ${(textS + encS + detS).toFixed(1)} s; with prepare ${(prep + textS + encS + detS).toFixed(1)} s`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
