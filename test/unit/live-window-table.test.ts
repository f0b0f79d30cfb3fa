import { expect } from 'chai';
import { WindowTable } from '../../lib/live/window_table';

/** A deterministic stream of small ids (few distinct values: windows collide in the hash and repeat). */
function ids(n: number, seed: number, distinct: number): Int32Array {
  const out = new Int32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = (x >>> 16) % distinct;
  }
  return out;
}

describe('WindowTable: the model scorer’s window cache', () => {
  it('finds exactly the windows added, with their values, through growth and collisions, as a Map of their ids would', () => {
    const W = 10;
    const stream = ids(60_000 * W, 7, 4);
    const t = new WindowTable(W);
    const ref = new Map<string, number>();
    for (let k = 0; k < 60_000; k++) {
      const at = k * W;
      const key = Array.from(stream.subarray(at, at + W)).join(',');
      const found = t.find(stream, at);
      const want = ref.get(key);
      if (want === undefined) {
        expect(found, `window ${k} (${key}) was never added`).to.equal(-1);
        const e = t.add(stream, at, k + 0.5);
        expect(e).to.equal(ref.size);
        ref.set(key, k + 0.5);
      } else {
        expect(found, `window ${k} (${key})`).to.be.at.least(0);
        expect(t.value(found)).to.equal(want);
        expect(Array.from(t.ids.subarray(found * W, (found + 1) * W))).to.deep.equal(Array.from(stream.subarray(at, at + W)));
      }
    }
    expect(t.size).to.equal(ref.size);
    expect(ref.size, 'enough distinct windows to grow the table several times').to.be.above(10_000);
  });

  it('windows that differ only in their last id (one history, many targets) are told apart', () => {
    const W = 10;
    const t = new WindowTable(W);
    const w = new Int32Array(5000 * W);
    for (let j = 0; j < 5000; j++) w[j * W + W - 1] = j;
    for (let j = 0; j < 5000; j++) expect(t.add(w, j * W, j)).to.equal(j);
    for (let j = 0; j < 5000; j++) expect(t.value(t.find(w, j * W)), `target ${j}`).to.equal(j);
  });

  it('windows that differ in one id, or only in order, are different entries; clear forgets them all', () => {
    const t = new WindowTable(3);
    const w = Int32Array.from([5, 6, 7, 5, 6, 8, 7, 6, 5]);
    expect(t.add(w, 0, 1)).to.equal(0);
    expect(t.find(w, 3)).to.equal(-1);
    expect(t.add(w, 3, 2)).to.equal(1);
    expect(t.find(w, 6)).to.equal(-1);
    expect(t.find(Int32Array.from([0, 5, 6, 7]), 1)).to.equal(0);
    t.clear();
    expect(t.size).to.equal(0);
    expect(t.find(w, 0)).to.equal(-1);
    expect(t.add(w, 6, 3)).to.equal(0);
    expect(t.value(t.find(w, 6))).to.equal(3);
  });
});
