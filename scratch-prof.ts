import * as fs from 'node:fs';
import { LineSplitter } from './lib/live/lines';
import { Publisher, logConfigOf } from './lib/scale/publisher';
import { ScaleWorker } from './lib/scale/worker';
import { connectNats, topology } from './lib/scale/topology';
import { CheckpointStore } from './lib/scale/checkpoints';
import { Kvm } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
const model = process.argv[2]!; const url = process.argv[3]!; const N = Number(process.argv[4] ?? 20000);
(async () => {
  const lines = new LineSplitter().push(fs.readFileSync('/work/shared/data/hdfs-dev/HDFS.log')).slice(0, N);
  const pub = await Publisher.open({ nats: url, stream: 'PROF', partitions: 12, logConfig: logConfigOf({ model }), source: 'x' });
  const t0 = performance.now();
  await pub.publish(lines); await pub.finish();
  console.log('publish', N / ((performance.now() - t0) / 1000), 'lines/s');
  const w = await ScaleWorker.start({ nats: url, stream: 'PROF', model, threshold: { mode: 'fixed' }, leaseTtlMs: 3000, onNotice: (m) => console.log(m) });
  const nc = await connectNats(url, 't'); const jsm = await jetstreamManager(nc);
  const topo = topology('PROF'); const last: number[] = [];
  for (let p = 0; p < 12; p++) last.push((await jsm.streams.getMessage('PROF', { last_by_subj: topo.subject(p) }))!.seq);
  const ck = new CheckpointStore(await new Kvm(nc).open(topo.ckptBucket), 'x');
  const t1 = performance.now();
  while (!(await ck.positions(12)).every((s, p) => s >= last[p]!)) { await new Promise((r) => setTimeout(r, 500)); console.log(JSON.stringify(w.stats().map((s) => s.lines))); }
  console.log('consume', N / ((performance.now() - t1) / 1000), 'lines/s');
  await w.stop(); await nc.close(); await pub.close();
})();
