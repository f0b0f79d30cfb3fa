import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DeepSentryError } from '../../lib/errors';
import { loadLineLabels, loadSessionLabels } from '../../lib/eval';
import { BGL_LOG, HDFS_DEV_LABELS } from '../support/data';
import { tempDir } from '../support/tmp';

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(DeepSentryError);
    expect((err as DeepSentryError).code).to.equal(code);
    expect((err as Error).message).to.match(re);
    return;
  }
  expect.fail(`expected a ${code} error matching ${re}`);
}

describe('eval labels', () => {
  const dir = tempDir('labels');
  const write = (name: string, text: string | Buffer) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the real hdfs-dev anomaly_label.csv: 5,150 blocks, 158 anomalous', async () => {
    const l = await loadSessionLabels(HDFS_DEV_LABELS);
    expect(l.labels.size).to.equal(5150);
    expect(l.anomalies).to.equal(158);
    const first = fs.readFileSync(HDFS_DEV_LABELS, 'utf8').split('\n')[1]!.split(',');
    expect(l.labels.get(first[0]!)).to.equal(first[1] === 'Anomaly');
  });

  it('reads gzip transparently: the embedded sample labels equal the hdfs-dev ones', async () => {
    const a = await loadSessionLabels(HDFS_DEV_LABELS);
    const b = await loadSessionLabels(path.join(__dirname, '../../data/sample/anomaly_label.csv.gz'));
    expect(b.labels.size).to.equal(a.labels.size);
    for (const [k, v] of a.labels) expect(b.labels.get(k), k).to.equal(v);
  });

  it('accepts quoted fields, CRLF, a BOM, blank lines and repeated identical rows', async () => {
    const f = write('ok.csv', '\uFEFFBlockId,Label\r\n"blk_1","Anomaly"\r\n\r\nblk_2,Normal\r\nblk_1,Anomaly\r\n');
    const l = await loadSessionLabels(f);
    expect([...l.labels]).to.deep.equal([['blk_1', true], ['blk_2', false]]);
    expect(l.anomalies).to.equal(1);
  });

  it('malformed rows are DS_PARSE errors naming file and line', async () => {
    await rejects(loadSessionLabels(write('v.csv', 'BlockId,Label\nblk_1,Normal\nblk_2,Weird\n')), 'DS_PARSE', /v\.csv:3: label must be Normal or Anomaly .*"Weird"/);
    await rejects(loadSessionLabels(write('n.csv', 'BlockId,Label\nblk_3,Normal,extra\n')), 'DS_PARSE', /n\.csv:2: expected 2 fields \(BlockId,Label\) but found 3/);
    await rejects(loadSessionLabels(write('d.csv', 'BlockId,Label\nblk_1,Normal\nblk_1,Anomaly\n')), 'DS_PARSE', /d\.csv:3: blk_1 is labelled Anomaly here but Normal at line 2/);
    await rejects(loadSessionLabels(write('q.csv', 'BlockId,Label\n"blk_1,Normal\n')), 'DS_PARSE', /q\.csv:2: unterminated quoted field/);
    await rejects(loadSessionLabels(write('e.csv', 'BlockId,Label\n,Normal\n')), 'DS_PARSE', /e\.csv:2: empty BlockId/);
  });

  it('a file that is not a label file says what is expected', async () => {
    await rejects(loadSessionLabels(write('empty.csv', '')), 'DS_PARSE', /empty\.csv is empty/);
    await rejects(loadSessionLabels(write('hdr.csv', 'BlockId,Label\n')), 'DS_PARSE', /hdr\.csv has a header but no label rows/);
    await rejects(loadSessionLabels(BGL_LOG), 'DS_PARSE', /BGL_2k\.log:1: .*BlockId,Label header.*\(labelField\)/);
    await rejects(loadSessionLabels(write('id.csv', 'Foo,Label\nx,Normal\n')), 'DS_PARSE', /id\.csv:1: .*needs an id column/);
    await rejects(loadSessionLabels(path.join(dir, 'missing.csv')), 'DS_IO', /missing\.csv does not exist/);
  });

  it('a truncated gzip file or a damaged line is an error naming the line, not a silent partial read', async () => {
    const gz = zlib.gzipSync(fs.readFileSync(HDFS_DEV_LABELS));
    const f = write('trunc.csv.gz', gz.subarray(0, gz.length >> 1));
    await rejects(loadSessionLabels(f), 'DS_PARSE', /trunc\.csv\.gz:\d+: compressed input ends early or is corrupt/);
    const bad = write('utf8.csv', Buffer.concat([Buffer.from('BlockId,Label\nblk_1,Normal\nblk_'), Buffer.from([0xff, 0xfe]), Buffer.from(',Normal\n')]));
    await rejects(loadSessionLabels(bad), 'DS_PARSE', /utf8\.csv:3: invalid UTF-8/);
    const lineGz = write('lines.log.gz', zlib.gzipSync('- a\nX b\n').subarray(0, 12));
    await rejects(loadLineLabels(lineGz), 'DS_PARSE', /lines\.log\.gz:\d+: compressed input ends early/);
  });

  it('per-line labels number physical lines as the log reader does: a damaged line is unlabelled, later ones stay aligned', async () => {
    const f = write('damaged.log', Buffer.concat([Buffer.from('- ok\r\nKERN x\n'), Buffer.from([0xff]), Buffer.from(' bad\n- a\rb\nAPP y\n')]));
    const l = await loadLineLabels(f);
    // line 3 is invalid UTF-8 (skipped, as the scorer skips it); a lone CR is not a line break
    expect(Array.from(l.labels)).to.deep.equal([-1, 0, 1, -1, 0, 1]);
  });

  it('reads BGL per-line labels: 143 alert lines of 2,000, 1-based', async () => {
    const l = await loadLineLabels(BGL_LOG);
    expect(l.anomalies).to.equal(143);
    expect(l.labels.length).to.equal(2001);
    const lines = fs.readFileSync(BGL_LOG, 'utf8').split('\n');
    for (let i = 0; i < 2000; i++) expect(l.labels[i + 1], `line ${i + 1}`).to.equal(lines[i]!.startsWith('- ') ? 0 : 1);
  });

  it('per-line labels: custom field and normal values; short lines and bad options are clear errors', async () => {
    const f = write('lines.log', 'a ok x\n\nb bad y\nc OK z\n');
    const l = await loadLineLabels(f, { field: 2, normalValues: ['ok', 'OK'] });
    expect(Array.from(l.labels)).to.deep.equal([-1, 0, -1, 1, 0]);
    await rejects(loadLineLabels(write('short.log', 'a b c\nd\n'), { field: 2 }), 'DS_PARSE', /short\.log:2: expected a label in whitespace-separated field 2 but the line has 1 field/);
    await rejects(loadLineLabels(f, { field: 0 }), 'DS_INVALID_ARGUMENT', /label field/);
    await rejects(loadLineLabels(write('blank.log', '\n\n')), 'DS_PARSE', /no labelled lines/);
  });
});
