/**
 * The log layer's public face: what server/ and tools/ may import. Everything else in wal/ is an
 * implementation detail that can move between files without breaking callers.
 */

export { WriteAheadLog, type DurableWrite, type WriteAheadLogOptions, type WriteAheadLogStats } from './log.js';
export { diskDirectory, MemoryDirectory, readFully, type LogDirectory, type LogFile } from './file.js';
export { encodeRecord, decodeFrame, FORMAT_VERSION, HEADER_BYTES, type DecodedFrame } from './record.js';
export { segmentName, parseSegmentName, listSegments, type SegmentRef } from './segment.js';
export {
  readLog,
  scanLog,
  isTornTail,
  findIntactFrame,
  usedBytes,
  type LogEntry,
  type ScanProblem,
  type ScanResult,
  type ScanOptions,
  type ScannedSegment,
  type RecordVisitor,
} from './reader.js';
export { recoverLog, type LogLogger, type RecoverOptions, type RecoveredLog, type RecoveredSegment } from './recover.js';
export {
  listSnapshots,
  readSnapshot,
  snapshotChunks,
  snapshotName,
  writeSnapshot,
  SNAPSHOT_FORMAT,
  type SnapshotEntry,
  type SnapshotHeader,
  type SnapshotRef,
  type VersionEntry,
} from './snapshot.js';
