/**
 * Xenon's FNV64 variant and the owner selection built on it (docs/xenon-compatibility.md, Node selectors). Owners only agree
 * with Xenon's if this function is bit-for-bit Xenon's, so no hash package is used. The same hash
 * prefixes generated document ids.
 */

import type { Link, Micros, NodeId } from './ids.js';
import { limits } from './limits.js';

const OFFSET_BASIS = 4695981039346656037n;
const OFFSET_LO = Number(BigInt.asUintN(32, OFFSET_BASIS));
const OFFSET_HI = Number(BigInt.asUintN(32, OFFSET_BASIS >> 32n));
const PRIME_LOW = 0x1b3;

/** Xenon's FNV64 over UTF-16 code units, as a signed 64-bit BigInt. */
export function fnv64(s: string): bigint {
  // Every request hashes its link (owner lookup, generated ids), so the 64-bit arithmetic runs
  // on two 32-bit halves: BigInt operations per character cost ~20x more. PRIME = 2^40 + 0x1b3,
  // so h * PRIME = h * 0x1b3 + (h << 40), and h << 40 only adds lo << 8 to the high half.
  let lo = OFFSET_LO;
  let hi = OFFSET_HI;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Java evaluates `(c + c) << 8` on ints; for a 16-bit c it stays below 2^25, so it only
    // touches the low half.
    lo = (lo ^ ((c + c) << 8)) >>> 0;
    const loTimes = lo * PRIME_LOW; // below 2^41: exact in a double
    const carry = Math.floor(loTimes / 4294967296);
    hi = (Math.imul(hi, PRIME_LOW) + carry + (lo << 8)) >>> 0;
    lo = loTimes >>> 0;
  }
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

/** Unsigned lower-case hex of a 64-bit value, as Java's Long.toHexString prints it. */
export function hex64(h: bigint): string {
  return BigInt.asUintN(64, h).toString(16);
}

/** Xenon's generated id: hex(FNV64(hostId)) followed by hex(time in micros), no padding. */
export function generateDocumentId(hostId: NodeId, nowMicros: Micros): string {
  return idPrefix(hostId) + Math.trunc(nowMicros).toString(16);
}

/** hex(FNV64(hostId)) of the last host id asked for: a host generates every id with its own. */
let prefixOf: { hostId: NodeId; prefix: string } | undefined;

function idPrefix(hostId: NodeId): string {
  if (prefixOf?.hostId !== hostId) prefixOf = { hostId, prefix: hex64(fnv64(hostId)) };
  return prefixOf.prefix;
}

/**
 * Node ids are few and hashed on every owner lookup; their hashes are remembered. Bounded so a
 * stream of distinct ids (a bug or an attack on the group) cannot grow it without end.
 */
const nodeHashes = new Map<string, bigint>();

function nodeHash(id: string): bigint {
  let h = nodeHashes.get(id);
  if (h === undefined) {
    h = fnv64(id);
    if (nodeHashes.size >= limits.nodeHashesCachedMax) nodeHashes.clear();
    nodeHashes.set(id, h);
  }
  return h;
}

export interface SelectableNode {
  id: NodeId;
  eligible: boolean;
}

/**
 * The `count` nodes closest to `key`, closest first. Distance is Xenon's: (nodeHash - keyHash)^2
 * with 64-bit wrap-around, then Java's Math.abs (which leaves Long.MIN_VALUE negative). A map
 * with exactly one node selects it even when it is not eligible, as Xenon does.
 */
export function selectNodes(key: Link, nodes: readonly SelectableNode[], count = 1): NodeId[] {
  if (nodes.length === 1) return [nodes[0]!.id];
  const keyHash = fnv64(key);
  const ranked: { id: NodeId; d: bigint }[] = [];
  for (const n of nodes) {
    if (!n.eligible) continue;
    let d = BigInt.asIntN(64, nodeHash(n.id) - keyHash);
    d = BigInt.asIntN(64, d * d);
    if (d < 0n && d !== -(2n ** 63n)) d = -d;
    ranked.push({ id: n.id, d });
  }
  // Stable sort keeps iteration order on ties; Xenon lets the later entry win a tie, which
  // practically never happens with 64-bit hashes.
  ranked.sort((a, b) => (a.d < b.d ? -1 : a.d > b.d ? 1 : 0));
  return ranked.slice(0, count).map((r) => r.id);
}
