/**
 * The new owner's side of a takeover (lib/synch/takeover.ts): when discovery calls for one, at
 * which epoch, the plan built from the heads returned with the promises, and the prepare round:
 * asks grouped per replica, ready with a quorum of promises (this host's own among them) once every
 * replica answered or failed, asking again above a
 * refusal, deferring when too few answer, ignoring stale and duplicate answers (the retry backoff is
 * schedule.test.ts's).
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Head } from '../../../lib/synch/plan.js';
import type { PromiseAnswer } from '../../../lib/synch/promise.js';
import {
  decideLink,
  decideSynch,
  earlyHandoffTarget,
  earlyPushPlan,
  headsQuorum,
  planTakeover,
  TakeoverRound,
  type TakeoverEffect,
} from '../../../lib/synch/takeover.js';

const h = (epoch: number, version: number, owner?: string): Head => ({ epoch, version, owner, deleted: false });
const heads = (entries: [string, Head | undefined][]) => new Map(entries);
const grant = (link: string, epoch: number, head: Head | undefined): PromiseAnswer => [
  link,
  epoch,
  1,
  epoch,
  head ? [head.epoch, head.version, 0, head.owner ?? ''] : null,
];
const refuse = (link: string, epoch: number, fence: number): PromiseAnswer => [link, epoch, 0, fence, null];
const types = (effects: TakeoverEffect[]) => effects.map((e) => e.type);

test('discovery: a takeover when ownership moved, copies diverged, or a replica promised above the best copy', () => {
  assert.equal(
    decideSynch(
      's',
      heads([
        ['s', h(1, 4, 's')],
        ['a', h(1, 4, 's')],
      ]),
    ),
    { plan: { source: 's', best: h(1, 4, 's'), pushTo: [] }, versionFloor: 4 },
  );
  const moved = decideSynch(
    's',
    heads([
      ['s', h(1, 4, 'a')],
      ['a', h(1, 4, 'a')],
    ]),
  );
  assert.is(moved.takeoverEpoch, 2);
  const diverged = decideSynch(
    's',
    heads([
      ['s', h(2, 5, 's')],
      ['b', h(1, 9, 'x')],
    ]),
  );
  assert.is(diverged.takeoverEpoch, 3, 'a divergence is settled under a new epoch too');
  assert.is(diverged.versionFloor, 9);
  // In agreement, but some replica is bound to epoch 3 by another host's unfinished takeover:
  // this owner's records at epoch 1 would be refused there.
  const fenced = decideSynch(
    's',
    heads([
      ['s', h(1, 4, 's')],
      ['a', h(1, 4, 's')],
    ]),
    [3],
  );
  assert.is(fenced.takeoverEpoch, 4);
  assert.is(decideSynch('s', heads([['s', h(1, 4, 's')]]), [1]).takeoverEpoch, undefined, 'a fence at the held epoch changes nothing');
  assert.equal(decideSynch('s', heads([['s', undefined]])), { plan: null, versionFloor: -1 });
  // Nobody holds it, but a replica is bound to epoch 5: prepare epoch 6 to create it in.
  assert.equal(
    decideSynch(
      's',
      heads([
        ['s', undefined],
        ['a', undefined],
      ]),
      [5],
    ),
    { plan: null, takeoverEpoch: 6, versionFloor: -1 },
  );
});

test('earlyPushPlan: only a plain push of our own best copy, never a takeover, an adoption or a push below a fence', () => {
  assert.equal(
    earlyPushPlan(
      's',
      heads([
        ['s', h(1, 4, 's')],
        ['a', undefined],
        ['b', h(1, 2, 's')],
      ]),
    ),
    { source: 's', best: h(1, 4, 's'), pushTo: ['a', 'b'] },
  );
  assert.is(
    earlyPushPlan(
      's',
      heads([
        ['s', h(1, 4, 's')],
        ['a', h(1, 4, 's')],
      ]),
    ),
    undefined,
    'nothing to push',
  );
  assert.is(
    earlyPushPlan(
      's',
      heads([
        ['s', h(1, 4, 'a')],
        ['a', h(1, 4, 'a')],
        ['b', undefined],
      ]),
    ),
    undefined,
    'ownership moved: a takeover',
  );
  assert.is(
    earlyPushPlan(
      's',
      heads([
        ['s', h(1, 3, 's')],
        ['a', h(1, 4, 's')],
      ]),
    ),
    undefined,
    'a better copy elsewhere: adopted later',
  );
  assert.is(
    earlyPushPlan(
      's',
      heads([
        ['s', h(1, 4, 's')],
        ['a', undefined],
      ]),
      [2],
    ),
    undefined,
    'a replica is fenced above our epoch',
  );
  assert.is(
    earlyPushPlan(
      's',
      heads([
        ['s', undefined],
        ['a', undefined],
      ]),
    ),
    undefined,
    'nobody holds it',
  );
});

test('earlyHandoffTarget: the old owner hands a unanimous copy to a new owner that answered without one', () => {
  assert.is(
    earlyHandoffTarget(
      'a',
      'r',
      heads([
        ['a', h(1, 4, 'a')],
        ['b', h(1, 4, 'a')],
        ['r', undefined],
      ]),
    ),
    'r',
  );
  assert.is(
    earlyHandoffTarget(
      'b',
      'r',
      heads([
        ['b', h(1, 4, 'a')],
        ['a', h(1, 4, 'a')],
        ['r', undefined],
      ]),
    ),
    undefined,
    'only the host that wrote it hands it over',
  );
  assert.is(
    earlyHandoffTarget(
      'a',
      'r',
      heads([
        ['a', h(1, 4, 'a')],
        ['b', h(1, 5, 'a')],
        ['r', undefined],
      ]),
    ),
    undefined,
    'copies disagree',
  );
  assert.is(
    earlyHandoffTarget(
      'a',
      'r',
      heads([
        ['a', h(1, 4, 'a')],
        ['r', h(1, 3, 'a')],
      ]),
    ),
    undefined,
    'the new owner holds a copy',
  );
  assert.is(earlyHandoffTarget('a', 'r', heads([['a', h(1, 4, 'a')]])), undefined, 'the new owner did not answer');
  assert.is(
    earlyHandoffTarget(
      'a',
      'r',
      heads([
        ['a', h(1, 4, 'a')],
        ['r', undefined],
      ]),
      [2],
    ),
    undefined,
    'a replica is fenced',
  );
  assert.is(
    earlyHandoffTarget(
      'a',
      'a',
      heads([
        ['a', h(1, 4, 'a')],
        ['r', undefined],
      ]),
    ),
    undefined,
    'still ours: earlyPushPlan decides',
  );
  assert.is(
    earlyHandoffTarget(
      'a',
      'r',
      heads([
        ['a', { ...h(1, 4, 'a'), deleted: true }],
        ['b', h(1, 4, 'a')],
        ['r', undefined],
      ]),
    ),
    undefined,
    'a tombstone and a live copy differ',
  );
});

test('planTakeover: the best promised copy, rewritten at the promised epoch above every known version', () => {
  const p = planTakeover(
    's',
    heads([
      ['s', h(0, 3, 'x')],
      ['a', h(0, 4, 'x')],
      ['b', undefined],
    ]),
    2,
    7,
  )!;
  assert.equal(p, { source: 'a', best: h(0, 4, 'x'), rewrite: { epoch: 2, version: 8 }, pushTo: ['a', 'b'] });
  assert.is(
    planTakeover(
      's',
      heads([
        ['s', undefined],
        ['a', undefined],
      ]),
      2,
      3,
    ),
    null,
  );
});

test('a round asks every replica once per link, grouped, and is ready once all answered, with a quorum of promises', () => {
  const r = new TakeoverRound('s', [
    { link: '/l/1', replicas: ['s', 'a', 'b'], needed: 2, epoch: 1 },
    { link: '/l/2', replicas: ['s', 'a', 'b'], needed: 2, epoch: 4 },
  ]);
  const start = r.start();
  assert.equal(start, [
    {
      type: 'ask',
      to: 's',
      asks: [
        ['/l/1', 1],
        ['/l/2', 4],
      ],
    },
    {
      type: 'ask',
      to: 'a',
      asks: [
        ['/l/1', 1],
        ['/l/2', 4],
      ],
    },
    {
      type: 'ask',
      to: 'b',
      asks: [
        ['/l/1', 1],
        ['/l/2', 4],
      ],
    },
  ]);
  assert.equal(r.answered('a', [grant('/l/1', 1, h(0, 2, 'x')), grant('/l/2', 4, h(3, 9, 'x'))]), []);
  // A quorum promised; the round still waits for b's answer (or its failure) to see every head.
  assert.equal(r.answered('s', [grant('/l/1', 1, h(0, 1, 'x')), grant('/l/2', 4, undefined)]), []);
  const ready = [...r.answered('b', [grant('/l/1', 1, h(0, 3, 'x'))]), ...r.failed('b', [['/l/2', 4]])];
  assert.equal(ready, [
    {
      type: 'ready',
      link: '/l/1',
      epoch: 1,
      heads: heads([
        ['a', h(0, 2, 'x')],
        ['s', h(0, 1, 'x')],
        ['b', h(0, 3, 'x')],
      ]),
    },
    {
      type: 'ready',
      link: '/l/2',
      epoch: 4,
      heads: heads([
        ['a', h(3, 9, 'x')],
        ['s', undefined],
      ]),
    },
  ]);
  assert.ok(r.done);
  // b answers again late: nothing changes.
  assert.equal(r.answered('b', [grant('/l/1', 1, h(0, 2, 'x'))]), []);
});

test("without this host's own promise a quorum of peers is not enough", () => {
  const r = new TakeoverRound('s', [{ link: '/l/1', replicas: ['s', 'a', 'b'], needed: 2, epoch: 1 }]);
  r.start();
  assert.equal(r.answered('a', [grant('/l/1', 1, undefined)]), []);
  assert.equal(r.answered('b', [grant('/l/1', 1, undefined)]), []);
  assert.equal(types(r.failed('s', [['/l/1', 1]])), ['deferred']);
});

test('a refusal above the asked epoch makes the round ask everyone again above it', () => {
  const r = new TakeoverRound('s', [{ link: '/l/1', replicas: ['s', 'a', 'b'], needed: 2, epoch: 1 }]);
  r.start();
  assert.equal(r.answered('s', [grant('/l/1', 1, h(0, 1, 'x'))]), []);
  assert.equal(r.answered('a', [refuse('/l/1', 1, 3)]), []);
  const again = r.answered('b', [refuse('/l/1', 1, 2)]);
  assert.equal(again, [
    { type: 'ask', to: 's', asks: [['/l/1', 4]] },
    { type: 'ask', to: 'a', asks: [['/l/1', 4]] },
    { type: 'ask', to: 'b', asks: [['/l/1', 4]] },
  ]);
  // Answers to the first proposal arriving late are ignored.
  assert.equal(r.answered('b', [grant('/l/1', 1, h(0, 1, 'x'))]), []);
  assert.equal(r.answered('s', [grant('/l/1', 4, h(0, 1, 'x'))]), []);
  assert.equal(r.answered('b', [grant('/l/1', 4, h(0, 1, 'x'))]), []);
  assert.equal(types(r.failed('a', [['/l/1', 4]])), ['ready']);
});

test('this host refusing (bound to another host) asks again at once; the asks stop after takeoverProposalsMax', () => {
  const r = new TakeoverRound('s', [{ link: '/l/1', replicas: ['s', 'a', 'b'], needed: 2, epoch: 1 }], 2);
  r.start();
  assert.equal(types(r.answered('s', [refuse('/l/1', 1, 5)])), ['ask', 'ask', 'ask']);
  const out = r.answered('s', [refuse('/l/1', 6, 8)]);
  assert.equal(types(out), ['deferred']);
  assert.match((out[0] as { reason: string }).reason, /refused up to epoch 8/);
  assert.ok(r.done);
});

test('too few replicas reachable: deferred as soon as the quorum cannot be reached; duplicates count once', () => {
  const r = new TakeoverRound('s', [{ link: '/l/1', replicas: ['s', 'a', 'b', 'c', 'd'], needed: 3, epoch: 2 }]);
  r.start();
  assert.equal(r.answered('s', [grant('/l/1', 2, undefined)]), []);
  assert.equal(r.answered('a', [grant('/l/1', 2, undefined)]), []);
  assert.equal(r.answered('a', [grant('/l/1', 2, undefined)]), [], 'a duplicate reply is not a second promise');
  assert.equal(r.failed('b', [['/l/1', 2]]), []);
  assert.equal(r.failed('c', [['/l/1', 2]]), []);
  const out = r.failed('d', [['/l/1', 2]]);
  assert.equal(types(out), ['deferred']);
  assert.match((out[0] as { reason: string }).reason, /from 2 of 5 replicas \(3 needed/);
});

test('a link this host does not replicate is deferred at start', () => {
  const r = new TakeoverRound('s', [{ link: '/l/1', replicas: ['a', 'b'], needed: 2, epoch: 2 }]);
  assert.equal(types(r.start()), ['deferred']);
  assert.ok(r.done);
});

test('decideLink: a takeover for its prepare round, else a plan only with the heads of a quorum of the replica set', () => {
  const replicas = { targets: ['a', 'b', 'c', 'd'], needed: 3 };
  const take = decideLink(
    's',
    '/l/1',
    heads([
      ['s', h(1, 4, 'old')],
      ['a', h(1, 4, 'old')],
    ]),
    [],
    replicas,
  );
  assert.equal(take, {
    type: 'takeover',
    target: { link: '/l/1', replicas: ['s', 'a', 'b', 'c', 'd'], needed: 3, epoch: 2 },
    versionFloor: 4,
  });
  // A takeover gathers its own quorum of heads: too few from discovery does not hold it back.
  assert.is(decideLink('s', '/l/1', heads([['s', h(1, 4, 'old')]]), [], replicas).type, 'takeover');
  const own = (n: number) => heads([['s', h(1, 4, 's')], ...replicas.targets.slice(0, n).map((t): [string, Head] => [t, h(1, 4, 's')])]);
  assert.equal(decideLink('s', '/l/1', own(1), [], replicas), { type: 'short', heard: 2, needed: 3 });
  assert.equal(decideLink('s', '/l/1', own(2), [], replicas), { type: 'plan', plan: { source: 's', best: h(1, 4, 's'), pushTo: [] } });
  assert.equal(
    decideLink(
      's',
      '/l/1',
      heads([
        ['s', undefined],
        ['a', undefined],
        ['b', undefined],
      ]),
      [],
      replicas,
    ),
    {
      type: 'plan',
      plan: null,
    },
  );
  assert.ok(headsQuorum(own(2), replicas.targets, 3));
  assert.not.ok(headsQuorum(own(2), ['x', 'y'], 3), 'only the replica set counts');
});

test.run();
