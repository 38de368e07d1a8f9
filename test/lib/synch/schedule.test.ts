/**
 * When synchronization runs (lib/synch/schedule.ts), step by step on a manual clock: a membership
 * change starts a generation and a settled pass once the group is available; one pass at a time,
 * with a rerun for a change that arrives mid-pass; the early pass while the group settles, once
 * per generation, before the settled one; deferred passes retried with backoff; the links done
 * this generation; the recheck set; stop.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { limits } from '../../../lib/limits.js';
import {
  createSchedule,
  linkPending,
  retryDelayMicros,
  stale,
  step,
  type ScheduleContext,
  type ScheduleEffect,
  type ScheduleInput,
  type ScheduleState,
} from '../../../lib/synch/schedule.js';

const MIN = limits.synchRetryDelayMinMicros;
const T0 = 1_700_000_000_000_000;

/** A host's schedule on a manual clock, with the group's state set by the test. */
class Driver {
  s: ScheduleState;
  nowMicros = T0;
  available = true;
  hasQuorum = true;

  constructor(opts: { enabled?: boolean; recheckMax?: number } = {}) {
    this.s = createSchedule(opts);
  }

  get ctx(): ScheduleContext {
    return { nowMicros: this.nowMicros, available: this.available, hasQuorum: this.hasQuorum };
  }

  feed(input: ScheduleInput): ScheduleEffect[] {
    const r = step(this.s, input, this.ctx);
    this.s = r.state;
    return r.effects;
  }

  advance(micros: number): this {
    this.nowMicros += micros;
    return this;
  }
}

const types = (effects: ScheduleEffect[]) => effects.map((e) => e.type);

test('a membership change starts a generation and, the group available, a settled pass for it', () => {
  const d = new Driver();
  assert.not.ok(linkPending(d.s, '/l/a'), 'nothing to catch up on before the first change');
  assert.equal(d.feed({ type: 'membershipChanged' }), [{ type: 'runPass', generation: 1 }]);
  assert.is(d.s.generation, 1);
  assert.ok(linkPending(d.s, '/l/a'), 'every link waits for the pass or an on-demand synchronization');
  assert.equal(d.feed({ type: 'passEnded', complete: true }), []);
  assert.is(d.s.completedGeneration, 1);
  assert.not.ok(linkPending(d.s, '/l/a'), 'a complete pass covers every link');
  assert.equal(d.feed({ type: 'available' }), [], 'a generation completed needs no other pass');
});

test('an unavailable group runs no settled pass until it becomes available', () => {
  const d = new Driver();
  d.available = false;
  d.hasQuorum = false;
  assert.equal(d.feed({ type: 'membershipChanged' }), []);
  d.available = true;
  assert.equal(d.feed({ type: 'available' }), [{ type: 'runPass', generation: 1 }]);
});

test('synchronization disabled: no pass ever', () => {
  const d = new Driver({ enabled: false });
  assert.equal(d.feed({ type: 'membershipChanged' }), []);
  assert.equal(d.feed({ type: 'available' }), []);
});

test('a change arriving mid-pass: that pass decides nothing and another runs for the new generation when it ends', () => {
  const d = new Driver();
  d.feed({ type: 'membershipChanged' });
  assert.equal(d.feed({ type: 'membershipChanged' }), [], 'one pass at a time');
  assert.ok(d.s.rerun);
  assert.ok(stale(d.s, 1), 'work of generation 1 is stale now');
  assert.equal(d.feed({ type: 'passEnded', complete: true }), [{ type: 'runPass', generation: 2 }]);
  assert.is(d.s.completedGeneration, 0, 'the complete pass was for generation 1');
  assert.equal(d.feed({ type: 'passEnded', complete: true }), []);
  assert.is(d.s.completedGeneration, 2);
});

test('a pass for an old generation that fails arms no retry: the rerun covers it', () => {
  const d = new Driver();
  d.feed({ type: 'membershipChanged' });
  d.feed({ type: 'membershipChanged' });
  assert.equal(types(d.feed({ type: 'passEnded', complete: false })), ['runPass']);
  assert.is(d.s.retryDueMicros, undefined);
});

test('while the group settles an early pass runs, once per generation; the settled pass waits for it', () => {
  const d = new Driver();
  d.available = false;
  assert.equal(d.feed({ type: 'membershipChanged' }), [{ type: 'runEarlyPass', generation: 1 }]);
  d.available = true;
  assert.equal(d.feed({ type: 'available' }), [], 'the settled pass waits for the early one');
  assert.equal(d.feed({ type: 'earlyEnded' }), [{ type: 'runPass', generation: 1 }]);
  d.feed({ type: 'passEnded', complete: true });
  d.available = false;
  assert.equal(d.feed({ type: 'available' }), [], 'not available: nothing');
  assert.equal(d.feed({ type: 'earlyEnded' }), [], 'an end without an early pass running is ignored');
});

test('no early pass without a quorum, and none for a generation that had one', () => {
  const d = new Driver();
  d.available = false;
  d.hasQuorum = false;
  assert.equal(d.feed({ type: 'membershipChanged' }), []);
  d.hasQuorum = true;
  assert.equal(d.feed({ type: 'membershipChanged' }), [{ type: 'runEarlyPass', generation: 2 }]);
  assert.equal(d.feed({ type: 'earlyEnded' }), []);
  assert.is(d.s.earlyGeneration, 2);
});

test('a change while an early pass runs: another early pass for the new generation when it ends', () => {
  const d = new Driver();
  d.available = false;
  d.feed({ type: 'membershipChanged' });
  assert.equal(d.feed({ type: 'membershipChanged' }), []);
  assert.ok(d.s.earlyRerun);
  assert.equal(d.feed({ type: 'earlyEnded' }), [{ type: 'runEarlyPass', generation: 2 }]);
});

test('an early pass is not started while a settled pass runs', () => {
  const d = new Driver();
  d.feed({ type: 'membershipChanged' });
  d.available = false;
  assert.equal(d.feed({ type: 'membershipChanged' }), []);
  assert.ok(d.s.earlyRerun, 'asked for');
  assert.not.ok(d.s.rerun, 'no settled pass is asked for while the group is not available');
  // The settled pass ends with the group still settling: neither runs now (the early one asked for
  // meanwhile runs only at the end of an early pass, as the server had it; the settled one waits
  // for availability).
  assert.equal(d.feed({ type: 'passEnded', complete: true }), []);
  d.available = true;
  assert.equal(d.feed({ type: 'available' }), [{ type: 'runPass', generation: 2 }]);
});

test('a pass that ends with links deferred runs again after a backoff doubling up to the maximum', () => {
  const d = new Driver();
  d.feed({ type: 'membershipChanged' });
  assert.equal(d.feed({ type: 'passEnded', complete: false }), [{ type: 'armRetry', dueMicros: T0 + MIN, delayMicros: MIN }]);
  assert.ok(linkPending(d.s, '/l/a'), 'links not done stay pending');
  d.advance(MIN);
  assert.equal(d.feed({ type: 'retryDue' }), [{ type: 'runPass', generation: 1 }]);
  const delays: number[] = [];
  for (let i = 0; i < 12; i++) {
    const e = d.feed({ type: 'passEnded', complete: false })[0] as Extract<ScheduleEffect, { type: 'armRetry' }>;
    assert.is(e.dueMicros, d.nowMicros + e.delayMicros);
    delays.push(e.delayMicros);
    d.advance(e.delayMicros);
    d.feed({ type: 'retryDue' });
  }
  assert.equal(delays.slice(0, 4), [2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN]);
  assert.is(delays.at(-1), limits.synchRetryDelayMaxMicros);
  assert.equal(d.feed({ type: 'passEnded', complete: true }), [], 'the retry fired: nothing armed to cancel');
  assert.is(d.s.retryFailures, 0, 'a complete pass resets the backoff');
  assert.is(retryDelayMicros(1), MIN);
  assert.is(retryDelayMicros(100), limits.synchRetryDelayMaxMicros);
});

test('a retry armed is not armed again; a complete pass or a membership change cancels it and resets the backoff', () => {
  const d = new Driver();
  d.feed({ type: 'membershipChanged' });
  d.feed({ type: 'passEnded', complete: false });
  // The group became available again meanwhile: a pass runs before the retry is due.
  assert.equal(d.feed({ type: 'available' }), [{ type: 'runPass', generation: 1 }]);
  assert.equal(d.feed({ type: 'passEnded', complete: false }), [], 'the retry armed stays as it was');
  assert.is(d.s.retryFailures, 1);
  assert.equal(types(d.feed({ type: 'membershipChanged' })), ['cancelRetry', 'runPass']);
  assert.is(d.s.retryFailures, 0);
  assert.equal(types(d.feed({ type: 'passEnded', complete: false })), ['armRetry']);
  d.feed({ type: 'available' });
  assert.equal(d.feed({ type: 'passEnded', complete: true }), [{ type: 'cancelRetry' }]);
  assert.equal(d.feed({ type: 'retryDue' }), [], 'a late timer finds the generation complete');
});

test('links done this generation are not pending; work of an older generation counts for nothing; a change forgets them', () => {
  const d = new Driver();
  d.feed({ type: 'membershipChanged' });
  d.feed({ type: 'linksDone', generation: 1, links: ['/l/a', '/l/b'] });
  assert.equal([linkPending(d.s, '/l/a'), linkPending(d.s, '/l/b'), linkPending(d.s, '/l/c')], [false, false, true]);
  d.feed({ type: 'membershipChanged' });
  assert.ok(linkPending(d.s, '/l/a'), 'a new generation: every link again');
  d.feed({ type: 'linksDone', generation: 1, links: ['/l/a'] });
  assert.ok(linkPending(d.s, '/l/a'), 'synchronized under the old membership');
  d.feed({ type: 'linksDone', generation: 2, links: ['/l/a'] });
  assert.ok(d.s.done.has('/l/a'));
});

test('recheck: a link refused for its epoch is pending even in a complete generation, until an on-demand synchronization of it succeeds', () => {
  const d = new Driver();
  d.feed({ type: 'membershipChanged' });
  d.feed({ type: 'passEnded', complete: true });
  d.feed({ type: 'staleEpoch', link: '/l/a' });
  assert.ok(linkPending(d.s, '/l/a'));
  d.feed({ type: 'linksDone', generation: 1, links: ['/l/a'] });
  assert.ok(linkPending(d.s, '/l/a'), 'a pass does not clear it');
  d.feed({ type: 'membershipChanged' });
  assert.ok(d.s.recheck.has('/l/a'), 'nor does a membership change');
  d.feed({ type: 'rechecked', link: '/l/a' });
  assert.not.ok(d.s.recheck.has('/l/a'));
});

test('recheck is bounded: past its size no link is forgotten, every one is synchronized again', () => {
  const d = new Driver({ recheckMax: 2 });
  d.feed({ type: 'membershipChanged' });
  d.feed({ type: 'passEnded', complete: true });
  for (const l of ['/l/a', '/l/b', '/l/b']) d.feed({ type: 'staleEpoch', link: l });
  assert.equal([...d.s.recheck], ['/l/a', '/l/b']);
  assert.equal(types(d.feed({ type: 'staleEpoch', link: '/l/c' })), ['runPass']);
  assert.is(d.s.generation, 2);
  for (const l of ['/l/a', '/l/b', '/l/c', '/l/z']) assert.ok(linkPending(d.s, l), l);
});

test('distrustAll: links done, owned throughout or completed are all pending again; a no-op while nothing is trusted or running', () => {
  const d = new Driver();
  d.available = false;
  d.hasQuorum = false;
  d.feed({ type: 'membershipChanged', eligible: ['a', 'b'] });
  assert.equal(d.feed({ type: 'distrustAll' }), []);
  assert.is(d.s.generation, 1, 'nothing synchronized yet: nothing to distrust');
  d.available = true;
  d.hasQuorum = true;
  d.feed({ type: 'available' });
  d.feed({ type: 'distrustAll' });
  assert.is(d.s.generation, 2, 'a pass running: its heads may be older than the promise');
  assert.equal(types(d.feed({ type: 'passEnded', complete: true })), ['runPass'], 'its generation is stale: again');
  d.feed({ type: 'passEnded', complete: true });
  assert.is(d.s.completedGeneration, 2);
  assert.not.ok(linkPending(d.s, '/l/a'));
  assert.equal(types(d.feed({ type: 'distrustAll' })), ['runPass']);
  assert.ok(linkPending(d.s, '/l/a'), 'a complete generation is no longer trusted');
});

test('stop: the retry armed is cancelled and no pass runs any more', () => {
  const d = new Driver();
  d.feed({ type: 'membershipChanged' });
  d.feed({ type: 'passEnded', complete: false });
  assert.equal(d.feed({ type: 'stop' }), [{ type: 'cancelRetry' }]);
  assert.ok(stale(d.s, d.s.generation));
  assert.equal(d.feed({ type: 'membershipChanged' }), []);
  assert.equal(d.feed({ type: 'retryDue' }), []);
});

test.run();
