/**
 * SlowTaskService (`/core/slow-tasks`): a task whose work is `steps` paced steps of `stepMillis`
 * each, every step a durable self-PATCH that records which host ran it. It exists to show (and
 * test) high availability: kill the owner in the middle of a step and the new owner runs that
 * step again from the last durable one, so `ranOn` names both hosts and the task finishes once.
 */

import Type from 'typebox';
import { KryptonError } from '../errors.js';
import { limits } from '../limits.js';
import type { JsonObject } from '../document.js';
import { defineService } from '../service.js';
import {
  isTerminal,
  stagePatch,
  TASK_DEFAULT_LIFETIME_MICROS,
  taskInfoSchema,
  validateTransition,
  type TaskServiceState,
} from '../task.js';

export const SLOW_TASK_KIND = 'krypton:SlowTaskService:SlowTaskState';

export interface SlowTaskState extends TaskServiceState {
  steps?: number;
  stepMillis?: number;
  /** Steps completed so far. */
  step?: number;
  /** The host that completed each step, in order. */
  ranOn?: string[];
  taskLifetime?: number;
}

const nullable = <T extends Type.TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

export const slowTaskService = defineService<SlowTaskState>({
  factoryLink: '/core/slow-tasks',
  kind: SLOW_TASK_KIND,
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION', 'IDEMPOTENT_POST'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 1000,
  bodySchema: Type.Object({
    taskInfo: nullable(taskInfoSchema),
    failureMessage: nullable(Type.String()),
    steps: nullable(Type.Integer({ minimum: 1, maximum: limits.slowTaskStepsMax })),
    stepMillis: nullable(Type.Integer({ minimum: 0, maximum: limits.slowTaskStepMsMax })),
    step: nullable(Type.Integer({ minimum: 0 })),
    ranOn: nullable(Type.Array(Type.String())),
    taskLifetime: nullable(Type.Integer()),
    documentSelfLink: nullable(Type.String()),
    documentExpirationTimeMicros: nullable(Type.Integer({ minimum: 0 })),
  }),

  create(body) {
    if (body.step != null || body.ranOn != null) throw new KryptonError('INVALID_BODY', 'Do not specify step or ranOn: internal use only');
    if (body.taskLifetime != null && body.taskLifetime <= 0) throw new KryptonError('INVALID_BODY', 'taskLifetime must be positive');
    return {
      taskInfo: { stage: 'STARTED', isDirect: body.taskInfo?.isDirect ?? false },
      steps: body.steps ?? 3,
      stepMillis: body.stepMillis ?? 1000,
      step: 0,
      ranOn: [],
      ...(body.taskLifetime != null ? { taskLifetime: body.taskLifetime } : {}),
    };
  },

  put() {
    throw new KryptonError('INVALID_BODY', 'a slow task cannot be replaced; PATCH its stage instead');
  },

  patch(current, body) {
    validateTransition(current, body);
    // Steps only move forward: a repeated step (after a crash) lands on the same count, never below.
    const step = Math.max(current.step ?? 0, body.step ?? 0);
    const out: SlowTaskState = {
      ...current,
      taskInfo: { ...current.taskInfo, stage: body.taskInfo!.stage },
      step,
      ranOn: body.ranOn ?? current.ranOn ?? [],
    };
    if (body.failureMessage != null) out.failureMessage = body.failureMessage;
    return stripCommon(out);
  },

  expiration(current, body, ctx) {
    if (current) return current.documentExpirationTimeMicros;
    return ctx.nowMicros + (body.taskLifetime != null ? body.taskLifetime * 1_000_000 : TASK_DEFAULT_LIFETIME_MICROS);
  },

  async runStage(state, io, ctx) {
    if (isTerminal(state.taskInfo?.stage)) return undefined;
    const done = state.step ?? 0;
    const steps = state.steps ?? 3;
    if (done >= steps) return stagePatch(state, 'FINISHED');
    await io.delay(state.stepMillis ?? 1000);
    return stagePatch(state, 'STARTED', { step: done + 1, ranOn: [...(state.ranOn ?? []), ctx.hostId] });
  },
});

/** The service's own fields only; the runtime stamps the common ones. */
function stripCommon(s: SlowTaskState): SlowTaskState {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(s)) if (!k.startsWith('document')) out[k] = v;
  return out as SlowTaskState;
}
