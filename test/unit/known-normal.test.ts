/**
 * The memory of sessions known to be normal (lib/models/known_normal.ts): a composition is the multiset of a key's
 * messages, so its key ignores order and zero counts and tells any change of a count or a text; it survives
 * model.json (toJSON/fromJSON), and a damaged entry is an error naming it.
 */
import { expect } from 'chai';
import { DeepSentryError } from '../../lib/errors';
import { KeyCompositions, KnownNormal } from '../../lib/models/known_normal';

describe('KnownNormal: compositions of sessions known to be normal', () => {
  const write = [
    ['BLOCK* NameSystem.allocateBlock: <PATH> <BLK>', 1],
    ['Receiving block <BLK> src: /<IP> dest: /<IP>', 3],
    ['PacketResponder <NUM> for block <BLK> terminating', 3],
  ] as const;

  it('a composition is known whatever the order of its entries; a zero count is no entry', () => {
    const k = new KnownNormal();
    k.add(write, 'normal-labels');
    expect(k.size).to.equal(1);
    expect(k.has([...write].reverse())).to.equal(true);
    expect(k.has(new Map([...write, ['Deleting block <BLK> file <PATH>', 0]]))).to.equal(true);
    k.add(new Map([...write].reverse()), 'normal-labels');
    expect(k.size, 'the same composition twice is one entry').to.equal(1);
  });

  it('one line more, one line less, another message or a part of it: not known', () => {
    const k = new KnownNormal();
    k.add(write, 'normal-labels');
    expect(k.has([write[0], write[1], ['PacketResponder <NUM> for block <BLK> terminating', 4]])).to.equal(false);
    expect(k.has([write[0], write[1], ['PacketResponder <NUM> for block <BLK> terminating', 2]])).to.equal(false);
    expect(k.has([...write, ['Unexpected error trying to delete block <BLK>. BlockInfo not found in volumeMap.', 1]])).to.equal(false);
    expect(k.has(write.slice(0, 2))).to.equal(false);
    // texts and counts are kept apart, whatever characters a text holds
    k.add([['a', 12]], 'feedback');
    expect(k.has([['a', 1]])).to.equal(false);
    k.add([['a\t1\nb', 2]], 'feedback');
    expect(k.has([['a', 1], ['b', 2]])).to.equal(false);
    expect(new KnownNormal().has(write), 'an empty memory knows nothing').to.equal(false);
  });

  it('toJSON/fromJSON keep every composition and where they came from', () => {
    const k = new KnownNormal();
    k.add(write, 'normal-labels');
    k.add([['a', 1]], 'feedback');
    k.add([['b', 2]], 'feedback');
    const j = JSON.parse(JSON.stringify(k.toJSON()));
    expect(j.sources).to.deep.equal(['normal-labels', 'feedback']);
    expect(j.keys).to.have.length(3);
    const back = KnownNormal.fromJSON(j, 'm/model.json');
    expect(back.size).to.equal(3);
    expect(back.has(write) && back.has([['a', 1]]) && back.has([['b', 2]])).to.equal(true);
    expect(back.has([['b', 1]])).to.equal(false);
  });

  it('a damaged memory in model.json is a DS_MODEL error naming the file and the entry', () => {
    const good = new KnownNormal();
    good.add(write, 'normal-labels');
    const j = good.toJSON();
    const bad = (x: unknown) => {
      try {
        KnownNormal.fromJSON(x, 'm/model.json');
      } catch (e) {
        expect(e).to.be.instanceOf(DeepSentryError);
        expect((e as DeepSentryError).code).to.equal('DS_MODEL');
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad(null)).to.match(/m\/model\.json: extra\.knownNormal is not/);
    expect(bad({ keys: j.keys })).to.match(/is not \{ sources/);
    expect(bad({ sources: ['x'], keys: [...j.keys, 'XYZ'] })).to.match(/keys\[1\] is "XYZ", not 24 lowercase hex digits/);
    expect(bad({ sources: [3], keys: [] })).to.match(/sources holds 3/);
  });

  it('KeyCompositions adds a key\'s sessions up; a key with a session that did not end is never known', () => {
    const memory = new KnownNormal();
    memory.add(write, 'normal-labels');
    const c = new KeyCompositions();
    c.add('blk_1', write.slice(0, 2));
    c.add('blk_1', [write[2], ['Receiving block <BLK> src: /<IP> dest: /<IP>', 0]]);
    c.add('blk_2', write);
    c.add('blk_2', [write[0]]); // a line more
    c.add('blk_3', write);
    c.incomplete('blk_3');
    c.add('blk_3', []);
    expect(['blk_1', 'blk_2', 'blk_3', 'blk_4'].map((k) => c.known(memory, k))).to.deep.equal([true, false, false, false]);
    expect([...c.complete()].map(([k]) => k)).to.deep.equal(['blk_1', 'blk_2']);
  });
});
