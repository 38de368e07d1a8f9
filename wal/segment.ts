/**
 * Segment names: `<first seq, zero-padded to 20 digits>.log`. Twenty digits hold any safe integer,
 * so the lexical order of names is the seq order, and `ls` shows the log in order. Other files in
 * the folder (an operator's notes, a tool's temp file) are ignored, never treated as damage.
 */

import type { Seq } from '../lib/ids.js';
import type { LogDirectory } from './file.js';

export const SEGMENT_SUFFIX = '.log';
const SEQ_DIGITS = 20;
const SEGMENT_NAME = /^(\d{20})\.log$/;

export interface SegmentRef {
  readonly name: string;
  /** The seq of the first record the segment holds (or will hold, while it is empty). */
  readonly firstSeq: Seq;
}

export function segmentName(firstSeq: Seq): string {
  if (!Number.isSafeInteger(firstSeq) || firstSeq < 1) throw new RangeError(`bad segment first seq ${firstSeq}`);
  return String(firstSeq).padStart(SEQ_DIGITS, '0') + SEGMENT_SUFFIX;
}

/** The first seq a segment name stands for, or undefined if the name is not a segment's. */
export function parseSegmentName(name: string): Seq | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return undefined;
  const seq = Number(m[1]);
  return Number.isSafeInteger(seq) && seq >= 1 ? seq : undefined;
}

/** The folder's segments in seq order. */
export async function listSegments(dir: LogDirectory): Promise<SegmentRef[]> {
  const segments: SegmentRef[] = [];
  for (const name of await dir.list()) {
    const firstSeq = parseSegmentName(name);
    if (firstSeq !== undefined) segments.push({ name, firstSeq });
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq);
}
