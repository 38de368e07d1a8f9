/**
 * Owner leases, the pure part (lib/lease.ts), on a manual clock: a grant counts for a link only
 * while both views name the holder its owner and until it runs out on the holder's clock; a
 * grantor promises such a link to another host only after the grant ran out on its own clock
 * (drift and margin included); promises made to others are reported to a holder from its cursor,
 * and `all` when they can no longer be listed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LeaseGrantor, LeaseHolder, ownerIn, type GrantorOptions, type LeaseTiming } from '../../lib/lease.js';

const T0 = 1_700_000_000_000_000;
const TIMING: LeaseTiming = { durationMicros: 500_000, driftRatio: 0.01, marginMicros: 50_000 };
const BIND = 500_000 * 1.01 + 50_000;
const VIEW = ['a', 'b', 'c'];
const GRANTOR_TIMING: LeaseTiming = { ...TIMING, marginMicros: 0 };

/** The first link under /core/examples whose owner among `view` is `id`. */
function ownedBy(id: string, view: readonly string[], skip = 0): string {
  for (let i = 0, found = 0; ; i++) {
    const link = `/core/examples/k${i}`;
    if (ownerIn(view, link) === id && found++ === skip) return link;
  }
}

function grantor(o: Partial<GrantorOptions> = {}): LeaseGrantor {
  return new LeaseGrantor({
    timing: TIMING,
    startedMicros: T0 - 10_000_000,
    seqAtStart: 0,
    promisesKeptMax: 100,
    reportLinksMax: 10,
    viewsPerHolderMax: 4,
    ...o,
  });
}

const NOTHING = { seq: 0, floor: 0, promised: [] };

test('a grant counts for a link while both views name the holder its owner, until it runs out from its send time', () => {
  const h = new LeaseHolder('a', TIMING);
  const mine = ownedBy('a', VIEW);
  const theirs = ownedBy('b', VIEW);
  assert.not.ok(h.held(mine, ['b', 'c'], 2, T0), 'no grant yet: itself alone is short of 2');
  assert.ok(h.held(mine, ['b', 'c'], 1, T0), 'a quorum of 1 needs no grant');
  h.answered('b', T0, VIEW, VIEW, NOTHING);
  assert.ok(h.held(mine, ['b', 'c'], 2, T0 + 499_999));
  assert.not.ok(h.held(mine, ['b', 'c'], 2, T0 + 500_000), 'run out on the holder clock');
  assert.not.ok(h.held(theirs, ['b', 'c'], 2, T0), 'a link the holder does not own');
  assert.not.ok(h.held(mine, ['b', 'c'], 3, T0 + 1), 'one grant is short of 3');
  // The grantor's view without a: it names someone else the owner of every link, so nothing is covered.
  h.answered('c', T0 + 10, VIEW, ['b', 'c'], NOTHING);
  assert.not.ok(h.covers('c', mine, T0 + 20));
  // An older answer arriving late does not shorten a newer grant.
  h.answered('b', T0 - 400_000, VIEW, VIEW, NOTHING);
  assert.ok(h.held(mine, ['b', 'c'], 2, T0 + 499_999));
  h.forget('b');
  assert.not.ok(h.held(mine, ['b', 'c'], 2, T0 + 1));
});

test('a grantor promises a covered link to another host only once the grant ran out on its clock, drift and margin included', () => {
  const g = grantor();
  const ofA = ownedBy('a', VIEW);
  const ofB = ownedBy('b', VIEW);
  g.granted('a', VIEW, VIEW, T0);
  assert.is(g.waitMicros('c', ofA, T0), BIND);
  assert.is(g.waitMicros('c', ofA, T0 + BIND - 1), 1);
  assert.is(g.waitMicros('c', ofA, T0 + BIND), 0);
  assert.is(g.waitMicros('a', ofA, T0), 0, 'the holder itself may be promised its own link');
  assert.is(g.waitMicros('c', ofB, T0), 0, 'a link the grant does not cover');
  // A renewal while the grantor's own view names b the owner of a's old links binds nothing new.
  const after = T0 + 100_000;
  g.granted('a', VIEW, ['b', 'c'], after);
  assert.is(g.waitMicros('c', ofA, after), BIND - 100_000, 'only the earlier, covering grant binds');
  g.released('a');
  assert.is(g.waitMicros('c', ofA, after), 0, 'a released holder binds nothing');
});

test('a grantor promises nothing during its first lease after a start: it cannot know whom it answered before', () => {
  const g = grantor({ startedMicros: T0 });
  assert.is(g.waitMicros('c', ownedBy('a', VIEW), T0 + 1000), BIND - 1000);
  assert.is(g.waitMicros('c', ownedBy('a', VIEW), T0 + BIND), 0);
});

test('past the view pairs kept per holder, the oldest live grant is folded into one that binds every link', () => {
  const g = grantor({ viewsPerHolderMax: 2 });
  // Grantor views without a: none of these grants covers any link, but one past the bound must not
  // vanish. (The holder view stays the same: grants of another holder view go at once.)
  const views = [['b'], ['c'], ['b', 'c']];
  for (const [i, v] of views.entries()) g.granted('a', VIEW, v, T0 + i);
  const ofB = ownedBy('b', VIEW);
  assert.is(g.waitMicros('c', ofB, T0 + 2), BIND - 2, 'the folded grant (answered at T0) binds every link');
});

test('promises to others are reported from the cursor; the holder must synchronize them before its grant counts', () => {
  const g = grantor();
  const h = new LeaseHolder('a', TIMING);
  g.promised('c', ['/core/examples/x', '/core/examples/y']);
  g.promised('a', ['/core/examples/z']);
  g.persisted(g.sequence);
  const r1 = g.report('a', h.cursor('b'));
  assert.equal(r1, { seq: 3, floor: 0, promised: ['/core/examples/x', '/core/examples/y'] });
  assert.equal(h.answered('b', T0, VIEW, VIEW, r1), ['/core/examples/x', '/core/examples/y']);
  assert.is(h.cursor('b'), 3);
  assert.equal(g.report('a', 3).promised, [], 'nothing new since the cursor');
  g.promised('c', ['/core/examples/w']);
  assert.equal(g.report('a', 3).promised, ['/core/examples/w']);
});

test('a report that cannot list every promise since the cursor says all', () => {
  const g = grantor({ promisesKeptMax: 3, reportLinksMax: 2 });
  g.promised('c', ['/core/examples/1', '/core/examples/2', '/core/examples/3', '/core/examples/4']);
  g.persisted(4);
  assert.equal(g.report('a', 0), { seq: 4, floor: 1, promised: 'all' }, 'promise 1 fell out of the ring');
  assert.equal(g.report('a', 1).promised, 'all', 'three to list, two allowed');
  assert.equal(g.report('a', 2).promised, ['/core/examples/3', '/core/examples/4']);
  const h = new LeaseHolder('a', TIMING);
  assert.is(h.answered('b', T0, VIEW, VIEW, g.report('a', h.cursor('b'))), 'all');
});

test('a restarted grantor continues its sequence: a holder that saw everything before the crash distrusts nothing', () => {
  const before = grantor();
  const h = new LeaseHolder('a', TIMING);
  before.promised('c', ['/core/examples/x']);
  before.persisted(before.sequence);
  h.answered('b', T0, VIEW, VIEW, before.report('a', h.cursor('b')));
  const after = grantor({ seqAtStart: before.sequence, startedMicros: T0 + 1_000_000 });
  assert.equal(h.answered('b', T0 + 2_000_000, VIEW, VIEW, after.report('a', h.cursor('b'))), []);
  // One that missed a promise made just before the crash distrusts everything.
  const late = new LeaseHolder('a', TIMING);
  late.answered('b', T0, VIEW, VIEW, { seq: 0, floor: 0, promised: [] });
  assert.is(late.answered('b', T0 + 2_000_000, VIEW, VIEW, after.report('a', late.cursor('b'))), 'all');
});

test('with clock rates 1 % apart, the holder never counts a grant once the grantor would promise the link away', () => {
  // The grantor's clock runs 1 % fast against the holder's, so its wait ends early in real time: the worst case the bound allows.
  const ofA = ownedBy('a', VIEW);
  for (let delay = 0; delay <= 400_000; delay += 50_000) {
    const g = grantor({ timing: GRANTOR_TIMING });
    const h = new LeaseHolder('a', TIMING);
    const sent = T0; // holder clock = real time
    const answeredReal = sent + delay;
    const grantorClock = (real: number) => T0 + (real - T0) * 1.01;
    g.granted('a', VIEW, VIEW, grantorClock(answeredReal));
    h.answered('b', sent, VIEW, VIEW, NOTHING);
    // The first real instant the grantor would promise: its wait is over.
    let real = answeredReal;
    while (g.waitMicros('c', ofA, grantorClock(real)) > 0) real += 1000;
    assert.not.ok(h.held(ofA, ['b', 'c'], 2, real), `answer delay ${delay}: the lease outlived the grantor's wait`);
  }
});

test('a promise not yet synced is listed, but the cursor stops below it: renumbered after a crash, it is listed again', () => {
  const before = grantor();
  const h = new LeaseHolder('a', TIMING);
  before.promised('c', ['/core/examples/x']);
  before.persisted(1);
  before.promised('c', ['/core/examples/y']);
  assert.equal(h.answered('b', T0, VIEW, VIEW, before.report('a', h.cursor('b'))), ['/core/examples/x', '/core/examples/y']);
  assert.is(h.cursor('b'), 1, 'promise 2 is not on disk yet');
  // The crash loses promise 2 (never answered); the restarted grantor numbers its next one 2.
  const after = grantor({ seqAtStart: 1, startedMicros: T0 + 1_000_000 });
  after.promised('c', ['/core/examples/w']);
  assert.equal(h.answered('b', T0 + 2_000_000, VIEW, VIEW, after.report('a', h.cursor('b'))), ['/core/examples/w']);
});

test('a holder whose view changed uses only grants of its new view, and a grantor drops its grants of other views at its first renewal under the new one', () => {
  const OLD = ['a', 'b', 'c'];
  const NEW = ['b', 'c'];
  const h = new LeaseHolder('b', TIMING);
  h.viewChanged(OLD);
  const moving = ownedBy('b', NEW, 0);
  // A link b owns in both views, and one it owns only in the old view (it goes to a, back up).
  let backToA = '';
  for (let i = 0; backToA === ''; i++)
    if (ownerIn(NEW, `/core/examples/m${i}`) === 'b' && ownerIn(OLD, `/core/examples/m${i}`) === 'a') backToA = `/core/examples/m${i}`;
  const g = grantor();
  // While a is away: b holds a grant from c under NEW for backToA.
  h.viewChanged(NEW);
  g.granted('b', NEW, NEW, T0);
  h.answered('c', T0, NEW, NEW, NOTHING);
  assert.ok(h.held(backToA, ['a', 'c'], 2, T0 + 1));
  assert.ok(g.waitMicros('a', backToA, T0 + 1) > 0, 'c waits out b before promising backToA to a');
  // a is back: b's view is OLD again; it drops the NEW grant before renewing, and records no
  // answer to a renewal it sent under NEW.
  h.viewChanged(OLD);
  assert.not.ok(h.held(backToA, ['a', 'c'], 2, T0 + 2), 'b no longer serves backToA from its NEW grant');
  h.answered('c', T0 + 1, NEW, NEW, NOTHING);
  assert.not.ok(h.covers('c', moving, T0 + 3), 'an answer to a renewal sent under the old view is not counted');
  // c drops b's NEW grants at b's first renewal under OLD: backToA may go to a at once.
  g.granted('b', OLD, NEW, T0 + 10);
  assert.is(g.waitMicros('a', backToA, T0 + 11), 0);
});

test.run();
