/**
 * Which register violations the torture runner lets a known failure mode explain
 * (tools/torture/workloads.ts explainsViolation): only those whose ops involve the known-bug op or
 * its value, or a key with a write applied twice; another violation on the same key is news
 * (a soak once hid a read of absent after a partition heal behind a refused write on its key).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { KeyVerdict, Op } from '../../tools/check/history.js';
import { explainsViolation } from '../../tools/torture/workloads.js';

const K = '/core/examples/k';
const ops: Op[] = [
  { id: 1, process: 0, key: K, kind: 'write', value: 'a', call: 0, ret: 1, outcome: 'ok', result: { value: 'a', version: 0 } },
  { id: 2, process: 1, key: K, kind: 'write', value: 'refused', call: 2, ret: 3, outcome: 'fail' },
  { id: 3, process: 2, key: K, kind: 'read', call: 4, ret: 5, outcome: 'ok', result: { value: 'refused', version: 1 } },
  { id: 4, process: 2, key: K, kind: 'read', call: 6, ret: 7, outcome: 'ok', result: { value: null, version: -1 } },
  { id: 5, process: 0, key: '/core/examples/other', kind: 'write', value: 'x', call: 0, ret: 1, outcome: 'fail' },
];
const known = { refusedButApplied: [ops[1]!, ops[4]!], readsOfDiscarded: [] };
const violation = (involved: number[]): KeyVerdict => ({ key: K, result: 'violation', ops: involved });

test('a violation that involves the refused write, or a read of its value, is explained', () => {
  assert.ok(explainsViolation(violation([1, 2]), ops, known, new Set()));
  assert.ok(explainsViolation(violation([1, 3]), ops, known, new Set()));
});

test('another violation on the same key, a read of absent, is not', () => {
  assert.not.ok(explainsViolation(violation([1, 4]), ops, known, new Set()));
  // A refused write on another key explains nothing here.
  assert.not.ok(explainsViolation(violation([1, 5]), ops, known, new Set()));
});

test('a key with a write applied twice explains its violations', () => {
  assert.ok(explainsViolation(violation([1, 4]), ops, known, new Set([K])));
});

test.run();
