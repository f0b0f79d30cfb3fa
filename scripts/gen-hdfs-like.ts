/**
 * Writes a large synthetic HDFS-format log for streaming/memory checks: blocks open continuously, each goes
 * through an HDFS-like life cycle (allocate, receive ×3, terminate, stored, … delete) over ~20 s of log time,
 * so sessions keep closing (with an idle timeout) and the number of open ones stays bounded. Deterministic.
 *
 *   npx tsx scripts/gen-hdfs-like.ts OUT.log SIZE_MB
 */
import { createWriteStream } from 'node:fs';

/** The life cycle of one block: raw HDFS content templates ({b} block, {ip} address, {n} number). */
const LIFECYCLE = [
  'dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_{n}_0001_m_{n}_0/part-{n}. {b}',
  'dfs.DataNode$DataXceiver: Receiving block {b} src: /{ip}:{n} dest: /{ip}:50010',
  'dfs.DataNode$DataXceiver: Receiving block {b} src: /{ip}:{n} dest: /{ip}:50010',
  'dfs.DataNode$DataXceiver: Receiving block {b} src: /{ip}:{n} dest: /{ip}:50010',
  'dfs.DataNode$PacketResponder: PacketResponder {n} for block {b} terminating',
  'dfs.DataNode$PacketResponder: Received block {b} of size {n} from /{ip}',
  'dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip}:50010 is added to {b} size {n}',
  'dfs.DataNode$PacketResponder: PacketResponder {n} for block {b} terminating',
  'dfs.DataNode$PacketResponder: Received block {b} of size {n} from /{ip}',
  'dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip}:50010 is added to {b} size {n}',
  'dfs.DataNode$DataXceiver: {ip}:50010 Served block {b} to /{ip}',
  'dfs.FSNamesystem: BLOCK* NameSystem.delete: {b} is added to invalidSet of {ip}:50010',
  'dfs.FSDataset: Deleting block {b} file /mnt/hadoop/dfs/data/current/subdir{n}/{b}',
];

/** xorshift32: deterministic, fast. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const pad2 = (n: number) => (n < 10 ? '0' : '') + n;

/** HDFS `YYMMDD HHMMSS` of epoch seconds. */
function hdfsTime(sec: number): string {
  const d = new Date(sec * 1000);
  return `${pad2(d.getUTCFullYear() % 100)}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}`;
}

/**
 * Writes at least `bytes` bytes of log lines to `path`; returns the number of lines and blocks written.
 * `blocksPerSecond` new blocks start every log second; each emits one line per second of its life.
 */
export async function writeHdfsLike(path: string, bytes: number, opts: { seed?: number; blocksPerSecond?: number } = {}): Promise<{ lines: number; blocks: number; bytes: number }> {
  const next = rng(opts.seed ?? 1);
  const perSec = opts.blocksPerSecond ?? 8;
  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  type Block = { id: string; step: number; ip: string };
  let active: Block[] = [];
  let sec = Date.UTC(2008, 10, 9, 20, 35, 32) / 1000;
  let written = 0;
  let lines = 0;
  let blocks = 0;
  const ip = () => `10.${250 + (next() % 6)}.${next() % 256}.${next() % 256}`;
  while (written < bytes) {
    for (let k = 0; k < perSec; k++) {
      const hi = next() % 1_000_000_000;
      active.push({ id: `blk_${next() & 1 ? '-' : ''}${hi}${String(blocks).padStart(9, '0')}`, step: 0, ip: ip() });
      blocks++;
    }
    const ts = hdfsTime(sec);
    let chunk = '';
    for (const b of active) {
      const tpl = LIFECYCLE[b.step++];
      const content = tpl.replace(/\{b\}/g, b.id).replace(/\{ip\}/g, () => (next() & 3 ? b.ip : ip())).replace(/\{n\}/g, () => String(next() % 100000));
      chunk += `${ts} ${next() % 300} INFO ${content}\n`;
      lines++;
    }
    active = active.filter((b) => b.step < LIFECYCLE.length);
    sec++;
    written += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  out.end();
  await done;
  return { lines, blocks, bytes: written };
}

if (require.main === module) {
  const [path, mb] = process.argv.slice(2);
  if (!path || !(Number(mb) > 0)) {
    process.stderr.write('usage: npx tsx scripts/gen-hdfs-like.ts OUT.log SIZE_MB\n');
    process.exit(2);
  }
  writeHdfsLike(path, Number(mb) * 1024 * 1024).then((r) => process.stdout.write(`${path}: ${r.lines} lines, ${r.blocks} blocks, ${r.bytes} bytes\n`));
}
