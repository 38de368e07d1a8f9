/**
 * A task whose step keeps failing is retried with a growing delay (server/tasks/tasks.ts with
 * lib/task.ts taskRetryDelayMicros): the maintenance sweep skips it until its retry is due, the
 * delay doubles per failure in a row up to a minute, and a step that succeeds clears it. The
 * driver runs over stub parts with a manual clock, so every sweep is decided by the clock alone.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { JsonObject, ServiceDocument } from '../../lib/document.js';
import { limits } from '../../lib/limits.js';
import type { RegisteredService } from '../../lib/service.js';
import { taskRetryDelayMicros } from '../../lib/task.js';
import { TaskDriver, type TaskDriverDeps } from '../../server/tasks/tasks.js';
import { waitFor } from '../support/wait.js';

test('the retry delay doubles from one maintenance round up to a minute', () => {
  assert.is(taskRetryDelayMicros(0), 0);
  assert.is(taskRetryDelayMicros(1), 1_000_000);
  assert.is(taskRetryDelayMicros(2), 2_000_000);
  assert.is(taskRetryDelayMicros(3), 4_000_000);
  assert.is(taskRetryDelayMicros(6), 32_000_000);
  assert.is(taskRetryDelayMicros(7), limits.taskRetryMaxMicros);
  assert.is(taskRetryDelayMicros(10_000), limits.taskRetryMaxMicros);
});

const FACTORY = '/core/flaky-tasks';
const LINK = `${FACTORY}/t1`;

/** One task owned here, a stage that fails while `failStage` says so, a store whose PATCH fails while `failPatch` does. */
function rig() {
  let now = 1_000_000_000_000;
  const s = { failStage: true, failPatch: false, reads: 0, stageRuns: 0, patches: 0, warnings: [] as unknown[] };
  let doc: ServiceDocument = { documentSelfLink: LINK, documentVersion: 0, taskInfo: { stage: 'STARTED' } } as unknown as ServiceDocument;
  const svc = {
    def: {
      nodeSelector: '/core/node-selectors/default',
      runStage: async (): Promise<JsonObject> => {
        s.stageRuns++;
        if (s.failStage) throw new Error('the stage failed');
        return { taskInfo: { stage: 'FINISHED' } };
      },
    },
    has: () => true,
  } as unknown as RegisteredService;
  const deps = {
    registry: { factoryLinks: () => [FACTORY], factory: (l: string) => (l === FACTORY ? svc : undefined) },
    index: { children: () => [LINK], latest: () => doc },
    store: {
      read: async () => {
        s.reads++;
        return doc;
      },
      update: async (_svc: RegisteredService, _action: string, _link: string, body: JsonObject) => {
        if (s.failPatch) throw new Error('the self-PATCH failed');
        s.patches++;
        doc = { ...doc, ...body, documentVersion: doc.documentVersion + 1 } as ServiceDocument;
        return doc;
      },
    },
    selectors: { available: true, ownedHere: () => true },
    clock: { nowMicros: () => now, observe: () => undefined },
    logger: { warn: (o: unknown) => s.warnings.push(o) },
    hostId: 'solo',
    operationTimeoutMicros: 60_000_000,
  } as unknown as TaskDriverDeps;
  const driver = new TaskDriver(deps);
  return {
    s,
    driver,
    advance: (micros: number) => (now += micros),
    /** A sweep; true when it drove the task (the driver reads the task synchronously when it starts). */
    sweep: () => {
      const before = s.reads;
      driver.sweep();
      return s.reads > before;
    },
  };
}

test('a failing stage waits 1, 2, 4 s between tries, and a success clears the wait', async () => {
  const { s, driver, advance, sweep } = rig();
  assert.ok(sweep(), 'an unfinished task is driven');
  await waitFor('first failure', () => driver.retryOf(LINK)?.failures === 1);
  assert.is(s.stageRuns, 1);
  assert.is(s.warnings.length, 1);
  assert.is((s.warnings[0] as { retryInMs: number }).retryInMs, 1000);

  advance(999_999);
  assert.not.ok(sweep(), 'not retried before its delay');
  advance(1);
  assert.ok(sweep(), 'retried once the delay is over');
  await waitFor('second failure', () => driver.retryOf(LINK)?.failures === 2);

  advance(1_999_999);
  assert.not.ok(sweep());
  advance(1);
  assert.ok(sweep());
  await waitFor('third failure', () => driver.retryOf(LINK)?.failures === 3);
  assert.is(s.stageRuns, 3);

  s.failStage = false;
  advance(3_999_999);
  assert.not.ok(sweep());
  advance(1);
  assert.ok(sweep());
  await waitFor('finished', () => s.patches === 1 && driver.retryOf(LINK) === undefined);
  assert.is(driver.stats.stageFailures, 3);
  // Finished: later sweeps leave it alone.
  advance(60_000_000);
  assert.not.ok(sweep());
});

test('a failing self-PATCH counts as a failed step too', async () => {
  const { s, driver, advance, sweep } = rig();
  s.failStage = false;
  s.failPatch = true;
  assert.ok(sweep());
  await waitFor('first failure', () => driver.retryOf(LINK)?.failures === 1);
  advance(500_000);
  assert.not.ok(sweep());
  s.failPatch = false;
  advance(500_000);
  assert.ok(sweep());
  await waitFor('finished', () => s.patches === 1 && driver.retryOf(LINK) === undefined);
});

test.run();
