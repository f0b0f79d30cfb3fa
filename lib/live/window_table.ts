/**
 * Detector windows (W message ids each) and a number per window, for the model scorer's window-score cache
 * (lib/live/model_scorer.ts): an open-addressing hash table over the ids themselves, so that looking a window
 * up allocates nothing (a string key per line was a tenth of the scorer's garbage). Entries are numbered 0,
 * 1, … in order of addition; entry k's ids are `ids[k·W, (k+1)·W)`.
 */
export class WindowTable {
  /** entry number + 1 per slot (0: empty); a power of two, at least twice the entries */
  private slots = new Int32Array(1024);
  ids: Int32Array;
  private values: Float64Array;
  size = 0;
  constructor(private readonly W: number) {
    this.ids = new Int32Array(256 * W);
    this.values = new Float64Array(256);
  }

  private hash(w: Int32Array, at: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.W; i++) h = Math.imul(h ^ w[at + i], 0x01000193);
    return (h ^ (h >>> 15)) & (this.slots.length - 1);
  }

  /** The entry number of the window at w[at, at + W), or -1. */
  find(w: Int32Array, at: number): number {
    const W = this.W;
    const mask = this.slots.length - 1;
    for (let h = this.hash(w, at); ; h = (h + 1) & mask) {
      const k = this.slots[h] - 1;
      if (k < 0) return -1;
      const o = k * W;
      let i = 0;
      while (i < W && this.ids[o + i] === w[at + i]) i++;
      if (i === W) return k;
    }
  }

  /** Adds the window at w[at, at + W) (not in the table) with `value`; returns its entry number. */
  add(w: Int32Array, at: number, value: number): number {
    const W = this.W;
    const k = this.size++;
    if ((k + 1) * W > this.ids.length) {
      const ids = new Int32Array(2 * this.ids.length);
      ids.set(this.ids);
      this.ids = ids;
      const values = new Float64Array(2 * this.values.length);
      values.set(this.values);
      this.values = values;
    }
    this.ids.set(w.subarray(at, at + W), k * W);
    this.values[k] = value;
    if (2 * this.size > this.slots.length) this.rehash(2 * this.slots.length);
    else this.place(k);
    return k;
  }

  value(k: number): number {
    return this.values[k];
  }

  clear(): void {
    this.slots.fill(0);
    this.size = 0;
  }

  private place(k: number): void {
    const mask = this.slots.length - 1;
    let h = this.hash(this.ids, k * this.W);
    while (this.slots[h] !== 0) h = (h + 1) & mask;
    this.slots[h] = k + 1;
  }

  private rehash(n: number): void {
    this.slots = new Int32Array(n);
    for (let k = 0; k < this.size; k++) this.place(k);
  }
}
