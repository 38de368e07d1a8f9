/**
 * A seeded pseudo-random source (mulberry32), so a run's choices of operations, fault kinds,
 * targets and durations follow from its --seed; timing on a real machine still varies.
 */

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  /** A child source for one client, independent of how many numbers the others draw. */
  fork(n: number): Rng {
    return new Rng(Math.imul(this.s ^ (n + 1), 0x85ebca6b) ^ n);
  }
}
