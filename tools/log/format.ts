/**
 * Plain-text formatting shared by the log tools: aligned tables, times at the microsecond
 * precision the log stores them in, and counts with thousands separators.
 */

import type { Micros } from '../../lib/ids.js';

/** `2023-11-14T22:13:20.001000Z`: ISO-8601 in UTC, with the microseconds the log holds. */
export function isoMicros(micros: Micros): string {
  if (!Number.isFinite(micros)) return String(micros);
  const ms = Math.floor(micros / 1000);
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return String(micros);
  const sub = String(Math.round(micros - ms * 1000)).padStart(3, '0');
  return date.toISOString().replace('Z', `${sub}Z`);
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

export type Align = 'left' | 'right';

/**
 * Rows padded to the widest cell of each column, two spaces apart; the last column is not padded
 * when left-aligned, so lines carry no trailing spaces. `paint` colours a cell after padding.
 */
export function table(rows: string[][], align: Align[], paint?: (cell: string, row: number, col: number) => string): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row, r) =>
    row
      .map((cell, i) => {
        const last = i === row.length - 1;
        const padded = align[i] === 'right' ? cell.padStart(widths[i]!) : last ? cell : cell.padEnd(widths[i]!);
        return paint === undefined ? padded : paint(padded, r, i);
      })
      .join('  '),
  );
}

/** A duration in micros, in the largest unit that keeps it readable. */
export function span(micros: Micros): string {
  const units: [number, string][] = [
    [86_400_000_000, 'd'],
    [3_600_000_000, 'h'],
    [60_000_000, 'min'],
    [1_000_000, 's'],
    [1000, 'ms'],
  ];
  for (const [size, unit] of units) if (micros >= size) return `${(micros / size).toFixed(micros >= 10 * size ? 0 : 1)} ${unit}`;
  return `${micros} µs`;
}

/** `1 record`, `2 records`. */
export function plural(n: number, noun: string): string {
  return `${count(n)} ${noun}${n === 1 ? '' : 's'}`;
}
