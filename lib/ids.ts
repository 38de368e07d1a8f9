/**
 * Names for the scalar values that travel through Krypton. They are plain aliases, not brands:
 * they cross JSON and msgpack boundaries constantly and a brand would only add casts there.
 */

/** A document's path, such as `/core/examples/one`. */
export type Link = string;
/** A host (node) id. */
export type NodeId = string;
/** Microseconds since the Unix epoch. */
export type Micros = number;
/** A document version: 0 on creation, +1 per update. */
export type Version = number;
/** An owner term: bumped when ownership of a document moves. */
export type Epoch = number;
/** Position of a record in one host's log: 1, 2, 3, ... without gaps. */
export type Seq = number;
