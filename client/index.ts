/**
 * `krypton/client`: what a program needs to talk to a Krypton group. The client itself
 * (client.ts), the query builder (query.ts) and the error it throws (errors.ts); nothing here
 * imports the host.
 */

export {
  type CallOptions,
  type ClientOptions,
  type ClientStats,
  type Doc,
  type DocumentFields,
  DocumentRef,
  Factory,
  KryptonClient,
  type QueryResult,
  Watch,
  type WatchEvent,
  type WatchOptions,
} from './client.js';
export { type ClientErrorKind, isClientError, isConflict, isNotFound, KryptonClientError, type XenonErrorBody } from './errors.js';
export { query, QueryBuilder, type RangeBounds } from './query.js';
