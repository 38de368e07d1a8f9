/**
 * A second thread that checks frame checksums during replay. crc32 is about a tenth of the cost
 * of replaying a record; on a thread of its own it runs while the main thread decodes the chunk
 * before, so replay runs at decode speed. It only ever says "the frames from the chunk's start up
 * to here have good checksums"; anything it did not vouch for is checked again by decodeFrame on
 * the main thread, so a thread that fails or stops early costs speed, never correctness.
 */

import { Worker } from 'node:worker_threads';
import { limits } from '../lib/limits.js';
import { FORMAT_VERSION, FORMAT_VERSION_MIN, HEADER_BYTES } from './record.js';

// Plain CommonJS run with eval, so the thread needs no TypeScript loader and starts in ~20 ms.
// The walk mirrors decodeFrame's header checks; it stops at the first frame it cannot vouch for.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { crc32 } = require('node:zlib');
const { versionMin, versionMax, headerBytes, recordBytesMax } = workerData;
parentPort.on('message', ({ id, buffer, byteOffset, length }) => {
  const buf = Buffer.from(buffer, byteOffset, length);
  let off = 0;
  for (;;) {
    if (length - off < headerBytes) break;
    const payload = buf.readUInt32LE(off);
    const end = off + headerBytes + payload;
    if (payload === 0 || headerBytes + payload > recordBytesMax || end > length || buf[off + 8] < versionMin || buf[off + 8] > versionMax) break;
    if (crc32(buf.subarray(off + 8, end)) !== buf.readUInt32LE(off + 4)) break;
    off = end;
  }
  parentPort.postMessage({ id, verifiedEnd: off });
});
`;

export class ChecksumThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (verifiedEnd: number) => void>();
  private nextId = 0;
  private failed = false;
  /** Shared copies of chunks, reused; a slot still being checked is never overwritten. */
  private readonly slots: { buf: Buffer; busy: boolean }[] = [];

  constructor() {
    this.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: {
        versionMin: FORMAT_VERSION_MIN,
        versionMax: FORMAT_VERSION,
        headerBytes: HEADER_BYTES,
        recordBytesMax: limits.recordBytesMax,
      },
    });
    this.worker.on('message', (m: { id: number; verifiedEnd: number }) => {
      const resolve = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      resolve?.(m.verifiedEnd);
    });
    // A dead thread vouches for nothing: the main thread then checks every frame itself.
    const fail = (): void => {
      this.failed = true;
      for (const resolve of this.waiting.values()) resolve(0);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', fail);
  }

  /**
   * Resolves to the length of the run of whole, intact frames at the start of `buf`. The thread
   * reads `buf` while the caller goes on, so the caller must not change it until this resolves.
   */
  verify(buf: Buffer): Promise<number> {
    if (this.failed || buf.length === 0) return Promise.resolve(0);
    // Decoding from shared memory is several times slower in msgpackr, so the caller keeps its
    // own buffer and the thread gets a copy (a memcpy, far cheaper than the checksums).
    const slot = this.slot(buf.length);
    buf.copy(slot.buf);
    slot.busy = true;
    const id = this.nextId++;
    return new Promise<number>((resolve) => {
      this.waiting.set(id, (verifiedEnd) => {
        slot.busy = false;
        resolve(verifiedEnd);
      });
      this.worker.postMessage({ id, buffer: slot.buf.buffer, byteOffset: slot.buf.byteOffset, length: buf.length });
    });
  }

  private slot(length: number): { buf: Buffer; busy: boolean } {
    let slot = this.slots.find((s) => !s.busy && s.buf.length >= length);
    if (slot === undefined) {
      slot = { buf: Buffer.from(new SharedArrayBuffer(length)), busy: false };
      this.slots.push(slot);
    }
    return slot;
  }

  async close(): Promise<void> {
    this.failed = true;
    await this.worker.terminate();
  }
}
