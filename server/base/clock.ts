/**
 * The host's clock: microseconds since the epoch, strictly increasing within the process (Xenon's
 * Utils.getNowMicrosUtc hands out +1 µs on repeats), and never behind the newest time already in
 * the log, so a restarted host's updates always sort after what it replayed.
 */

export interface Clock {
  nowMicros(): number;
  /** Raises the floor: later readings are greater than `micros`. */
  observe(micros: number): void;
}

export function systemClock(): Clock {
  let last = 0;
  return {
    nowMicros() {
      const t = Math.trunc((performance.timeOrigin + performance.now()) * 1000);
      last = t > last ? t : last + 1;
      return last;
    },
    observe(micros) {
      if (micros > last) last = micros;
    },
  };
}
