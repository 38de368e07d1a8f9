/**
 * ExampleTaskService (`/core/example-tasks`, as Xenon's): queries every example document and
 * deletes them, as Xenon's does. Versions 0 to 3 of a task are the create (STARTED,
 * QUERY_EXAMPLES), the start self-PATCH, the move to DELETE_EXAMPLES carrying the finished query,
 * and FINISHED (or FAILED). Written on the task model of lib/task.ts like any author's task.
 */

import Type from 'typebox';
import { KryptonError } from '../errors.js';
import { KINDS, type JsonObject } from '../document.js';
import { defineService } from '../service.js';
import {
  failedPatch,
  isTerminal,
  stagePatch,
  TASK_DEFAULT_LIFETIME_MICROS,
  taskInfoSchema,
  validateTransition,
  type TaskServiceState,
} from '../task.js';

export const EXAMPLE_SUB_STAGES = ['QUERY_EXAMPLES', 'DELETE_EXAMPLES'] as const;
export type ExampleSubStage = (typeof EXAMPLE_SUB_STAGES)[number];

export interface ExampleTaskState extends TaskServiceState {
  taskLifetime?: number;
  subStage?: ExampleSubStage;
  exampleQueryTask?: JsonObject;
  customQueryClause?: JsonObject;
  documentExpirationTimeMicros?: number;
}

const nullable = <T extends Type.TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

/** Xenon's quirk: a client-given expiration without taskLifetime becomes now + 60 s. */
const CLIENT_EXPIRATION_REPLACEMENT_MICROS = 60_000_000;

/** Own fields in the order Xenon serializes ExampleTaskServiceState. */
function shape(s: ExampleTaskState): ExampleTaskState {
  const out: ExampleTaskState = {};
  if (s.taskInfo) out.taskInfo = s.taskInfo;
  if (s.failureMessage != null) out.failureMessage = s.failureMessage;
  if (s.taskLifetime != null) out.taskLifetime = s.taskLifetime;
  if (s.subStage != null) out.subStage = s.subStage;
  if (s.exampleQueryTask != null) out.exampleQueryTask = s.exampleQueryTask;
  if (s.customQueryClause != null) out.customQueryClause = s.customQueryClause;
  return out;
}

/** Non-null fields of `b` over `a`: Xenon's mergeWithState for the AUTO_MERGE fields. */
function merge(a: ExampleTaskState, b: ExampleTaskState): ExampleTaskState {
  const out: ExampleTaskState = { ...a };
  for (const [k, v] of Object.entries(b)) if (v != null) (out as JsonObject)[k] = v;
  return out;
}

export const exampleTaskService = defineService<ExampleTaskState>({
  factoryLink: '/core/example-tasks',
  kind: KINDS.exampleTask,
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION', 'INSTRUMENTATION', 'IDEMPOTENT_POST'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 100,
  bodySchema: Type.Object({
    taskInfo: nullable(taskInfoSchema),
    failureMessage: nullable(Type.String()),
    taskLifetime: nullable(Type.Integer()),
    subStage: nullable(Type.Union(EXAMPLE_SUB_STAGES.map((s) => Type.Literal(s)))),
    exampleQueryTask: nullable(Type.Record(Type.String(), Type.Unknown())),
    customQueryClause: nullable(Type.Record(Type.String(), Type.Unknown())),
    documentSelfLink: nullable(Type.String()),
    documentExpirationTimeMicros: nullable(Type.Integer({ minimum: 0 })),
  }),

  create(body) {
    if (body.subStage != null) throw new KryptonError('INVALID_BODY', 'Do not specify subStage: internal use only');
    if (body.exampleQueryTask != null) throw new KryptonError('INVALID_BODY', 'Do not specify exampleQueryTask: internal use only');
    if (body.taskLifetime != null && body.taskLifetime <= 0) throw new KryptonError('INVALID_BODY', 'taskLifetime must be positive');
    const stage = body.taskInfo?.stage;
    const isDirect = body.taskInfo?.isDirect ?? false;
    if (stage === undefined || stage === 'CREATED') {
      return shape({ ...body, taskInfo: { stage: 'STARTED', isDirect }, subStage: 'QUERY_EXAMPLES' });
    }
    return shape({ ...body, taskInfo: { ...body.taskInfo, isDirect } });
  },

  put(current, body) {
    return shape(merge({}, { ...body, taskInfo: body.taskInfo ?? current.taskInfo }));
  },

  patch(current, body) {
    validateTransition(current, body);
    if (body.taskInfo?.stage === 'STARTED') {
      if (body.subStage == null) throw new KryptonError('INVALID_BODY', 'Missing substage');
      const now = current.subStage ? EXAMPLE_SUB_STAGES.indexOf(current.subStage) : -1;
      if (EXAMPLE_SUB_STAGES.indexOf(body.subStage) < now) throw new KryptonError('INVALID_BODY', 'Task substage cannot move backwards');
    }
    return shape(merge(current, { ...body, taskInfo: { ...current.taskInfo, ...withoutNulls(body.taskInfo ?? {}) } }));
  },

  expiration(current, body, ctx) {
    if (current) return current.documentExpirationTimeMicros;
    if (body.taskLifetime != null) return ctx.nowMicros + body.taskLifetime * 1_000_000;
    if (body.documentExpirationTimeMicros) return ctx.nowMicros + CLIENT_EXPIRATION_REPLACEMENT_MICROS;
    return ctx.nowMicros + TASK_DEFAULT_LIFETIME_MICROS;
  },

  async runStage(state, io) {
    const stage = state.taskInfo?.stage;
    if (isTerminal(stage) || stage !== 'STARTED') return undefined;
    // Version 0 is the create; the first step is the start self-PATCH (version 1), as in Xenon.
    if (state.documentUpdateAction === 'POST') return stagePatch(state, 'STARTED', { subStage: state.subStage ?? 'QUERY_EXAMPLES' });
    switch (state.subStage) {
      case 'QUERY_EXAMPLES': {
        const kindClause = {
          occurance: 'MUST_OCCUR',
          term: { propertyName: 'documentKind', matchValue: KINDS.example, matchType: 'TERM' },
        };
        const query = state.customQueryClause
          ? { booleanClauses: [kindClause, { ...state.customQueryClause, occurance: 'MUST_OCCUR' }] }
          : kindClause;
        const finished = await io.query({ taskInfo: { isDirect: true }, querySpec: { query } });
        return stagePatch(state, 'STARTED', { subStage: 'DELETE_EXAMPLES', exampleQueryTask: finished });
      }
      case 'DELETE_EXAMPLES': {
        const results = state.exampleQueryTask?.results as { documentLinks?: string[] } | undefined;
        const links = results?.documentLinks;
        if (!links) return failedPatch(state, 'Unexpected null results from the example query');
        const outcomes = await Promise.allSettled(links.map((l) => io.delete(l)));
        const failed = outcomes.filter((o) => o.status === 'rejected').length;
        return failed ? failedPatch(state, `${failed} deletes failed`) : stagePatch(state, 'FINISHED');
      }
      default:
        return undefined;
    }
  },
});

function withoutNulls(o: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(o)) if (v != null) out[k] = v;
  return out;
}
