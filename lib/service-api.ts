/**
 * `krypton/service`: what a service author imports to write services `krypton host --services`
 * loads. The definition model (lib/service.ts), the error a handler throws to refuse a body,
 * and typebox's `Type` for body schemas, so a service module needs no dependency besides
 * krypton. Nothing here does I/O: handlers are pure and can be tested without a host.
 */

export { default as Type } from 'typebox';
export type { Static, TSchema } from 'typebox';
export type { JsonObject, JsonValue, ServiceDocument } from './document.js';
export { type ErrorCode, KryptonError } from './errors.js';
export type { Link, Micros, NodeId } from './ids.js';
export {
  defineService,
  defineStatelessService,
  type Effect,
  type EffectAnswer,
  type Next,
  type ServiceContext,
  type ServiceDefinition,
  type ServiceOption,
  type StatelessRequest,
  type StatelessResult,
  type StatelessServiceDefinition,
  type Stored,
  withEffects,
} from './service.js';
