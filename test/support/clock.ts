/**
 * A host clock tests can move forward: the system clock plus an offset, so a host runs normally
 * (gossip, stability windows) while a test jumps past an expiry without waiting for it.
 */

import { systemClock, type Clock } from '../../server/base/clock.js';

export interface ShiftableClock extends Clock {
  advance(micros: number): void;
}

export function shiftableClock(): ShiftableClock {
  const base = systemClock();
  let offset = 0;
  return {
    nowMicros: () => base.nowMicros() + offset,
    observe: (micros) => base.observe(micros - offset),
    advance(micros) {
      offset += micros;
    },
  };
}
