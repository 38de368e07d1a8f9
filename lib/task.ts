/**
 * Task services (Xenon's TaskState stages): the stage model every task shares, its transition rules, and
 * the owner-side contract a task author implements. A task is an ordinary replicated document
 * whose `taskInfo.stage` moves forward by self-PATCHes; the runtime calls the author's
 * `runStage` on the owner after each durable step, so a new owner resumes from the last step
 * the quorum holds. Pure: the I/O a stage needs arrives through `TaskIO`, given by server/.
 */

import Type from 'typebox';
import { KryptonError } from './errors.js';
import type { JsonObject } from './document.js';
import type { Link, Micros } from './ids.js';
import { limits } from './limits.js';

export const TASK_STAGES = ['CREATED', 'STARTED', 'FINISHED', 'FAILED', 'CANCELLED'] as const;
export type TaskStage = (typeof TASK_STAGES)[number];

export interface TaskInfo extends JsonObject {
  stage?: TaskStage;
  isDirect?: boolean;
  failure?: JsonObject;
  durationMicros?: number;
}

/** The fields every task state carries (Xenon's TaskServiceState). */
export interface TaskServiceState extends JsonObject {
  taskInfo?: TaskInfo;
  failureMessage?: string;
}

/** Xenon's default task expiration when the creator gives none: four hours. */
export const TASK_DEFAULT_LIFETIME_MICROS: Micros = 4 * 3600 * 1_000_000;

export const taskInfoSchema = Type.Object({
  stage: Type.Optional(Type.Union(TASK_STAGES.map((s) => Type.Literal(s)))),
  isDirect: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  failure: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
  durationMicros: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
});

/**
 * How long the owner waits before running a task's stage again after `failures` failures in a
 * row (the stage threw, or its self-PATCH failed): one maintenance round, doubling per failure up
 * to a minute. A task that keeps failing then costs a stage run and a warning a minute, not one
 * per maintenance round for as long as it lives.
 */
export function taskRetryDelayMicros(failures: number): Micros {
  if (failures <= 0) return 0;
  return Math.min(limits.taskRetryMaxMicros, limits.taskRetryMinMicros * 2 ** Math.min(failures - 1, 30));
}

export function isTerminal(stage: TaskStage | undefined): boolean {
  return stage === 'FINISHED' || stage === 'FAILED' || stage === 'CANCELLED';
}

/**
 * TaskService.validateTransition: a PATCH must name a stage, never CREATED, and never an earlier
 * stage than the current one. Throws the 400 Xenon answers.
 */
export function validateTransition(current: TaskServiceState, patch: TaskServiceState): void {
  if (!patch.taskInfo) throw new KryptonError('INVALID_BODY', 'Missing taskInfo');
  const next = patch.taskInfo.stage;
  if (!next) throw new KryptonError('INVALID_BODY', 'Missing stage');
  if (next === 'CREATED') throw new KryptonError('INVALID_BODY', 'Did not expect to receive CREATED stage');
  const now = current.taskInfo?.stage ?? 'CREATED';
  if (TASK_STAGES.indexOf(next) < TASK_STAGES.indexOf(now)) throw new KryptonError('INVALID_BODY', 'Task stage cannot move backwards');
}

/** The self-PATCH body that moves `state` to `stage`, keeping the rest of its taskInfo. */
export function stagePatch<S extends TaskServiceState>(state: S, stage: TaskStage, extra: Partial<S> = {}): S {
  return { ...extra, taskInfo: { ...taskInfoOf(state), stage } } as S;
}

/** A FAILED self-PATCH carrying Xenon's failure fields. */
export function failedPatch<S extends TaskServiceState>(state: S, message: string, extra: Partial<S> = {}): S {
  const taskInfo: TaskInfo = { ...taskInfoOf(state), stage: 'FAILED', failure: { message, statusCode: 400, errorCode: 0 } };
  return { ...extra, failureMessage: message, taskInfo } as TaskServiceState as S;
}

function taskInfoOf(state: TaskServiceState): TaskInfo {
  const info: TaskInfo = { stage: state.taskInfo?.stage ?? 'CREATED', isDirect: state.taskInfo?.isDirect ?? false };
  return info;
}

/**
 * What a stage may do outside its own document. The server gives each call the owner's view:
 * queries run on the owner's index, deletes are routed to each link's owner like a client's.
 */
export interface TaskIO {
  /** Runs a direct query task (a QueryTask body) and returns the finished task. */
  query(task: JsonObject): Promise<JsonObject>;
  /** DELETEs a document through the normal routed write path. */
  delete(link: Link): Promise<void>;
  /** Waits; stages that pace themselves use it instead of touching timers. */
  delay(ms: number): Promise<void>;
}
