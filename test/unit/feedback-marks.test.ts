/**
 * What `POST /feedback` takes (parseFeedbackBody: `{"sessions": [...]}` or what `deepsentry feedback --normal`
 * reads) and the live scorer's buffer of recent sessions (RecentSessions: its bounds, and sessions it holds
 * only in part).
 */
import { expect } from 'chai';
import { DeepSentryError } from '../../lib/errors';
import { parseFeedbackBody, RecentSessions } from '../../lib/pipeline/feedback';

function fails(f: () => unknown, re: RegExp): void {
  let err: unknown = null;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).to.be.instanceOf(DeepSentryError);
  expect((err as DeepSentryError).code).to.equal('DS_INVALID_ARGUMENT');
  expect((err as Error).message).to.match(re);
}

describe('feedback marks: POST /feedback bodies', () => {
  it('takes {"sessions": [...]}, alerts NDJSON (one alert is one JSON object too), sessions.csv and id lists', () => {
    expect(parseFeedbackBody('{"sessions": ["blk_1", "blk_2", "blk_1"]}')).to.deep.equal(['blk_1', 'blk_2']);
    expect(parseFeedbackBody('{"session":"blk_3","score":20}')).to.deep.equal(['blk_3']);
    expect(parseFeedbackBody('{"session":"blk_3"}\n{"session":"blk_4"}\n')).to.deep.equal(['blk_3', 'blk_4']);
    expect(parseFeedbackBody('session,score,anomaly\nblk_5,20,1\nblk_6,1,0\n')).to.deep.equal(['blk_5']);
    expect(parseFeedbackBody('blk_7\r\nblk_8 # checked\n')).to.deep.equal(['blk_7', 'blk_8']);
  });

  it('a wrong body is an error naming what is wrong', () => {
    fails(() => parseFeedbackBody(''), /^the body is empty/);
    fails(() => parseFeedbackBody('{"sessions": "blk_1"}'), /"sessions" is string "blk_1", not an array/);
    fails(() => parseFeedbackBody('{"sessions": ["blk_1", 3]}'), /sessions\[1\] is number 3, not a session id/);
    fails(() => parseFeedbackBody('{"sessions": []}'), /"sessions" is empty/);
    fails(() => parseFeedbackBody('{"sessions": ["blk_1"], "epochs": 3}'), /unknown field\(s\) "epochs"/);
    fails(() => parseFeedbackBody('{"session":"blk_1"}\n{oops\n'), /^the body line 2: not JSON/);
  });
});

describe('feedback marks: RecentSessions', () => {
  it('keeps every open session and the last N ended ones, within a bound on their messages', () => {
    const r = new RecentSessions({ sessions: 2, messagesPerSession: 3, messages: 5 });
    for (const k of ['a', 'b', 'c']) {
      r.add(k, `m ${k} 1`);
      r.add(k, `m ${k} 2`);
    }
    r.add('open', 'x');
    r.end('a');
    r.end('b');
    expect(r.sessions().map((s) => [s.key, s.messages.length, s.ended])).to.deep.equal([['a', 2, true], ['b', 2, true], ['c', 2, false], ['open', 1, false]]);
    r.end('c'); // 3 ended > 2 sessions, and 6 messages > 5: 'a' goes
    expect(r.sessions().map((s) => s.key)).to.deep.equal(['b', 'c', 'open']);
    r.add('b', 'again'); // a new segment of b
    r.end('b');
    expect(r.sessions().map((s) => `${s.key}:${s.messages.join('|')}`)).to.deep.equal(['c:m c 1|m c 2', 'b:again', 'open:x']);
    expect(r.size).to.equal(3);
  });

  it('marks a session longer than the bound truncated, and one open before a restart partial', () => {
    const r = new RecentSessions({ sessions: 10, messagesPerSession: 2, messages: 100 });
    for (let i = 0; i < 4; i++) r.add('long', `m${i}`);
    r.restored(['old']);
    r.add('old', 'after the restart');
    const s = new Map(r.sessions().map((x) => [x.key, x]));
    expect([s.get('long')!.truncated, s.get('long')!.messages]).to.deep.equal([true, ['m0', 'm1']]);
    expect([s.get('old')!.partial, s.get('old')!.messages]).to.deep.equal([true, ['after the restart']]);
  });
});
