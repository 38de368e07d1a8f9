/**
 * The dedup window (lib/dedup.ts) on a manual clock: a hit answers the state the original write
 * made; ids are forgotten oldest first past the per-link bound, links least recently written first
 * past the link bound, and any id once it is older than the window.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS, type NewLogRecord } from '../../lib/document.js';
import { DedupWindow, checkRequestId } from '../../lib/dedup.js';

const T0 = 1_700_000_000_000_000;

function rec(link: string, version: number, timeMicros: number, requestId?: string): NewLogRecord {
  return {
    link,
    action: version === 0 ? 'POST' : 'PUT',
    version,
    epoch: 0,
    timeMicros,
    ...(requestId === undefined ? {} : { requestId }),
    state: {
      documentSelfLink: link,
      documentKind: KINDS.example,
      documentVersion: version,
      documentUpdateTimeMicros: timeMicros,
      documentUpdateAction: version === 0 ? 'POST' : 'PUT',
      documentExpirationTimeMicros: 0,
    },
  };
}

test('a noted id answers the state its write made; another id, link or a record without one is no hit', () => {
  const w = new DedupWindow({ idsPerLinkMax: 4, linksMax: 4, windowMicros: 1_000_000 });
  w.note(rec('/a', 0, T0, 'r1'));
  w.note(rec('/a', 1, T0 + 1, 'r2'));
  w.note(rec('/a', 2, T0 + 2));
  assert.is(w.lookup('/a', 'r1', T0 + 10)?.state.documentVersion, 0);
  assert.is(w.lookup('/a', 'r2', T0 + 10)?.state.documentVersion, 1);
  assert.is(w.lookup('/a', 'r3', T0 + 10), undefined);
  assert.is(w.lookup('/b', 'r1', T0 + 10), undefined, 'ids are per link');
  assert.is(w.size(), 2, 'a record without an id is not remembered');
});

test('past the per-link bound the oldest ids are forgotten, in order', () => {
  const w = new DedupWindow({ idsPerLinkMax: 3, linksMax: 10, windowMicros: 1_000_000 });
  for (let v = 0; v < 5; v++) w.note(rec('/a', v, T0 + v, `r${v}`));
  const hits = [0, 1, 2, 3, 4].map((v) => w.lookup('/a', `r${v}`, T0 + 10)?.state.documentVersion);
  assert.equal(hits, [undefined, undefined, 2, 3, 4]);
  assert.is(w.size(), 3);
});

test('past the link bound the link written least recently is forgotten', () => {
  const w = new DedupWindow({ idsPerLinkMax: 3, linksMax: 2, windowMicros: 1_000_000 });
  w.note(rec('/a', 0, T0, 'a0'));
  w.note(rec('/b', 0, T0 + 1, 'b0'));
  // /a is written again: /b is now the least recent.
  w.note(rec('/a', 1, T0 + 2, 'a1'));
  w.note(rec('/c', 0, T0 + 3, 'c0'));
  assert.ok(w.lookup('/a', 'a0', T0 + 10));
  assert.ok(w.lookup('/a', 'a1', T0 + 10));
  assert.is(w.lookup('/b', 'b0', T0 + 10), undefined);
  assert.ok(w.lookup('/c', 'c0', T0 + 10));
});

test('past the link bound, eviction stays in write order over many notes, and the order queue stays bounded', () => {
  const w = new DedupWindow({ idsPerLinkMax: 2, linksMax: 100, windowMicros: 1e12 });
  for (let i = 0; i < 20_000; i++) w.note(rec(`/l${i % 150}`, i, T0 + i, `r${i}`));
  // The last 100 links written are /l100 .. /l149 (notes 19 900 .. 19 949) and /l0 .. /l49
  // (19 950 .. 19 999); /l50 .. /l99 were written least recently. With 150 links cycling through
  // 100 places each link was forgotten once per cycle, so each holds its last id only.
  assert.is(w.lookup('/l99', 'r19899', T0 + 20_000), undefined);
  assert.is(w.lookup('/l50', 'r19850', T0 + 20_000), undefined);
  assert.ok(w.lookup('/l100', 'r19900', T0 + 20_000));
  assert.ok(w.lookup('/l49', 'r19999', T0 + 20_000));
  assert.is(w.lookup('/l49', 'r19849', T0 + 20_000), undefined);
  assert.is(w.size(), 100);
  const hot = new DedupWindow({ idsPerLinkMax: 2, linksMax: 100, windowMicros: 1e12 });
  for (let i = 0; i < 20_000; i++) hot.note(rec('/hot', i, T0 + i, `r${i}`));
  assert.ok(hot.queued() <= 2 * 1 + 1024 + 1, `${hot.queued()} slots for one link`);
  assert.ok(w.queued() <= 2 * 100 + 1024 + 1, `${w.queued()} slots for 100 links`);
});

test('an id is a hit until it is older than the window, then never again', () => {
  let now = T0;
  const w = new DedupWindow({ idsPerLinkMax: 8, linksMax: 8, windowMicros: 1_000_000 });
  w.note(rec('/a', 0, now, 'old'));
  now += 600_000;
  w.note(rec('/a', 1, now, 'new'));
  now += 400_000;
  assert.ok(w.lookup('/a', 'old', now), 'exactly the window old');
  now += 1;
  assert.is(w.lookup('/a', 'old', now), undefined);
  assert.ok(w.lookup('/a', 'new', now));
  assert.is(w.size(), 1, 'the stale id was dropped');
  now += 600_000;
  assert.is(w.lookup('/a', 'new', now), undefined);
  assert.is(w.size(), 0);
});

test('the same id noted again keeps one entry, the latest; an unconfirmed write stays a hit, marked, until noted again', () => {
  const w = new DedupWindow({ idsPerLinkMax: 8, linksMax: 8, windowMicros: 1_000_000 });
  w.note(rec('/a', 0, T0, 'r'));
  w.note(rec('/a', 1, T0 + 1, 'r'));
  assert.is(w.size(), 1);
  assert.is(w.lookup('/a', 'r', T0 + 2)?.state.documentVersion, 1);
  assert.is(w.lookup('/a', 'r', T0 + 2)?.unconfirmed, undefined);
  w.unconfirmed('/a', 'r');
  assert.is(w.lookup('/a', 'r', T0 + 2)?.unconfirmed, true);
  w.unconfirmed('/a', 'other');
  // The record comes back (shipped by the next owner, say): a confirmed hit again.
  w.note(rec('/a', 2, T0 + 3, 'r'));
  const hit = w.lookup('/a', 'r', T0 + 4);
  assert.equal([hit?.state.documentVersion, hit?.unconfirmed], [2, undefined]);
});

test('a request id is 1 to 128 printable ASCII characters', () => {
  assert.is(checkRequestId('abc-123_XYZ:9'), 'abc-123_XYZ:9');
  for (const bad of ['', 'a b', 'é', 'x'.repeat(129)]) {
    try {
      checkRequestId(bad);
      assert.unreachable(`'${bad}' was taken`);
    } catch (e) {
      assert.is((e as { code?: string }).code, 'INVALID_ARGUMENT');
    }
  }
});

test('ids younger than the retry horizon outlive the per-link bound up to the hard bound; past it, or once a young link is dropped, a retry may have lost its original', () => {
  const w = new DedupWindow({
    idsPerLinkMax: 2,
    linksMax: 2,
    windowMicros: 1e12,
    retryHorizonMicros: 1000,
    idsPerLinkHardMax: 4,
    idsMax: 100,
  });
  // A hot link: four writes within the horizon all stay, past the soft bound of 2.
  for (let v = 0; v < 4; v++) w.note(rec('/hot', v, T0 + v, `h${v}`));
  assert.is(w.lookup('/hot', 'h0', T0 + 10)?.state.documentVersion, 0, 'young ids stay past the soft bound');
  assert.not.ok(w.mayHaveForgotten('/hot', T0 + 10));
  // A fifth young one passes the hard bound: h0 goes, and a retry of an id not found is in doubt.
  w.note(rec('/hot', 4, T0 + 4, 'h4'));
  assert.is(w.lookup('/hot', 'h0', T0 + 10), undefined);
  assert.ok(w.mayHaveForgotten('/hot', T0 + 10), 'a young id was dropped');
  assert.not.ok(w.mayHaveForgotten('/hot', T0 + 2000), 'not once the horizon has passed it');
  // Old ids go at the soft bound as before, and leave no doubt.
  const old = new DedupWindow({ idsPerLinkMax: 2, linksMax: 10, windowMicros: 1e12, retryHorizonMicros: 1000, idsPerLinkHardMax: 4 });
  old.note(rec('/o', 0, T0, 'o0'));
  old.note(rec('/o', 1, T0 + 5000, 'o1'));
  old.note(rec('/o', 2, T0 + 5001, 'o2'));
  assert.is(old.size(), 2);
  assert.is(old.lookup('/o', 'o0', T0 + 5002), undefined);
  assert.not.ok(old.mayHaveForgotten('/o', T0 + 5002), 'o0 was older than the horizon');
  // A link dropped whole by the link bound while young leaves every link in doubt.
  w.note(rec('/b', 0, T0 + 20, 'b0'));
  w.note(rec('/c', 0, T0 + 21, 'c0'));
  assert.is(w.lookup('/hot', 'h4', T0 + 22), undefined, '/hot, written least recently, was dropped');
  assert.ok(w.mayHaveForgotten('/c', T0 + 22));
  // The bound on ids in all drops links too.
  const few = new DedupWindow({ idsPerLinkMax: 8, linksMax: 10, windowMicros: 1e12, retryHorizonMicros: 1000, idsMax: 3 });
  for (let i = 0; i < 4; i++) few.note(rec(`/l${i}`, 0, T0 + i, `x${i}`));
  assert.is(few.size(), 3);
  assert.is(few.lookup('/l0', 'x0', T0 + 5), undefined);
  assert.ok(few.mayHaveForgotten('/l3', T0 + 5));
});

test('a window rebuilt from its ids and its forgotten marks (as a snapshot keeps them) still doubts what it dropped', () => {
  const bounds = { idsPerLinkMax: 2, linksMax: 2, windowMicros: 1e12, retryHorizonMicros: 1000, idsPerLinkHardMax: 3, idsMax: 100 };
  const w = new DedupWindow(bounds);
  for (let v = 0; v < 4; v++) w.note(rec('/hot', v, T0 + v, `h${v}`));
  assert.ok(w.mayHaveForgotten('/hot', T0 + 10), 'h0 was dropped young');
  const rebuild = (marks: boolean) => {
    const r = new DedupWindow(bounds);
    for (const e of w.entries()) r.note(rec(e.link, e.state.documentVersion, e.timeMicros, e.requestId));
    if (marks) r.restoreForgotten(w.forgottenMarks(T0 + 10));
    return r;
  };
  // The ids alone do not say it: this is what a snapshot without the marks lost.
  assert.not.ok(rebuild(false).mayHaveForgotten('/hot', T0 + 10));
  const back = rebuild(true);
  assert.ok(back.mayHaveForgotten('/hot', T0 + 10));
  assert.not.ok(back.mayHaveForgotten('/other', T0 + 10), 'only the link that lost an id');
  assert.equal(w.forgottenMarks(T0 + 5000), [], 'marks past the horizon are not kept');
  // A link dropped whole leaves a mark for the whole window, kept as the link ''.
  w.note(rec('/b', 0, T0 + 20, 'b0'));
  w.note(rec('/c', 0, T0 + 21, 'c0'));
  assert.equal(
    w.forgottenMarks(T0 + 22).map(([l]) => l),
    [''],
  );
  assert.ok(rebuild(true).mayHaveForgotten('/c', T0 + 22));
  // A mark for a link the rebuilt window holds no ids of stands for the whole window.
  const empty = new DedupWindow(bounds);
  empty.restoreForgotten([['/gone', T0 + 5]]);
  assert.ok(empty.mayHaveForgotten('/any', T0 + 10));
});

test.run();
