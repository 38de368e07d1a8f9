/**
 * Command-line parsing for `krypton log <command> DIR [flags]`: flags as `--flag=value` or
 * `--flag value` (the same as `krypton host`), boolean flags bare, DIR anywhere among them. Every
 * mistake is a KryptonError with code INVALID_USAGE and a one-line message (exit code 2); nothing
 * is guessed or ignored.
 */

import { KryptonError } from '../../lib/errors.js';
import type { Micros, Seq } from '../../lib/ids.js';

export function usageError(message: string): KryptonError {
  return new KryptonError('INVALID_USAGE', message);
}

export type FlagKind = 'boolean' | 'value';

export interface ParsedArgs {
  dir: string;
  values: Map<string, string>;
  booleans: Set<string>;
}

export function parseArgs(argv: string[], spec: Readonly<Record<string, FlagKind>>): ParsedArgs {
  const values = new Map<string, string>();
  const booleans = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      if (arg.startsWith('-') && arg !== '-' && arg !== '--') throw usageError(`unknown flag ${arg}`);
      if (arg !== '--') positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const kind = spec[name];
    if (kind === undefined) throw usageError(`unknown flag --${name}`);
    if (values.has(name) || booleans.has(name)) throw usageError(`--${name} given twice`);
    if (kind === 'boolean') {
      if (eq >= 0) throw usageError(`--${name} takes no value`);
      booleans.add(name);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) value = argv[++i];
    if (value === undefined || value === '') throw usageError(`--${name} needs a value`);
    values.set(name, value);
  }
  if (positional.length === 0) throw usageError('DIR is missing (a host folder <sandbox>/<port>, or a sandbox holding one)');
  if (positional.length > 1) throw usageError(`one DIR expected, got ${positional.length}: ${positional.join(' ')}`);
  return { dir: positional[0]!, values, booleans };
}

/** A whole number of at least `min`, or undefined when the flag is absent. */
export function intFlag(args: ParsedArgs, name: string, min: number): number | undefined {
  const raw = args.values.get(name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) < min) {
    throw usageError(`--${name} must be a whole number of at least ${min}, got '${raw}'`);
  }
  return Number(raw);
}

/**
 * Microseconds since the epoch from an integer, or from an ISO-8601 date. Fractional seconds
 * keep all six digits a log time has (Date.parse alone would round to milliseconds).
 */
export function parseTime(raw: string): Micros | undefined {
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const m = /^(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d(?::\d\d)?)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?)?$/i.exec(raw.trim());
  if (m === null) return undefined;
  const [, date, time, fraction, zone] = m;
  // A time without a zone is read as UTC, not local time: logs are compared across machines.
  const offset =
    zone === undefined || zone.toUpperCase() === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(time === undefined ? date! : `${date}T${time}${offset}`);
  if (Number.isNaN(ms)) return undefined;
  const micros = fraction === undefined ? 0 : Math.floor(Number(`0.${fraction}`) * 1e6 + 1e-6);
  return ms * 1000 + micros;
}

/** The point a replay or export stops at: after a seq, or after the last record stamped at or before a time. */
export type Point = { kind: 'end' } | { kind: 'seq'; seq: Seq } | { kind: 'time'; micros: Micros };

export function pointFlags(args: ParsedArgs): Point {
  const seq = intFlag(args, 'at-seq', 0);
  const rawTime = args.values.get('at-time');
  if (seq !== undefined && rawTime !== undefined) throw usageError('give --at-seq or --at-time, not both');
  if (seq !== undefined) return { kind: 'seq', seq };
  if (rawTime !== undefined) {
    const micros = parseTime(rawTime);
    if (micros === undefined)
      throw usageError(`--at-time must be an ISO-8601 date (2024-05-01T12:00:00Z) or microseconds since the epoch, got '${rawTime}'`);
    return { kind: 'time', micros };
  }
  return { kind: 'end' };
}
