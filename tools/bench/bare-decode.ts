/**
 * The baseline the log benchmarks divide by: unpack every frame body of a log held in one
 * buffer, with the log's own Unpackr options and no checksum, framing checks or indexing.
 */

import { Unpackr } from 'msgpackr';
import type { LogRecord } from '../../lib/document.js';
import { HEADER_BYTES } from '../../wal/index.js';
import { UNPACK_OPTIONS } from '../../wal/record.js';

/** A loop over `frames` returning the records decoded; call it as often as the bench needs. */
export function bareDecodeLoop(frames: Buffer): () => number {
  const unpackr = new Unpackr(UNPACK_OPTIONS);
  const range = { start: 0, end: 0 };
  return () => {
    let count = 0;
    for (let off = 0; off < frames.length; ) {
      range.start = off + HEADER_BYTES;
      range.end = off + HEADER_BYTES + frames.readUInt32LE(off);
      const r = unpackr.unpack(frames, range) as LogRecord;
      if (r.seq > 0) count++;
      off = range.end;
    }
    return count;
  };
}
