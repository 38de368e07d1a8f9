/**
 * The repository's layout rules, checked over tracked files (`npm run lint` runs this after Biome):
 * which top-level layer may import which, lib/'s purity (no I/O, clock, randomness or timers), the
 * order of server/'s rooms (a room imports only itself and rooms before it), server/'s file size
 * limit, and text no tracked file may carry. The tables live here and nowhere else; a failure
 * prints the ones it broke. Violations that are on main now and being removed by work in flight
 * are listed in TEMPORARY_EXCEPTIONS so main stays green; each entry says who removes it and why.
 */

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What each layer may import by relative path; layers absent here (tools/, test/) import anything. */
export const LAYER_IMPORTS: Readonly<Record<string, readonly string[]>> = {
  lib: ['lib'],
  wal: ['lib', 'wal'],
  index: ['lib', 'index'],
  server: ['lib', 'wal', 'index', 'server'],
  // The client library runs in users' programs: it shares lib/'s pure rules (owner selection,
  // query shapes) and never the host's code, which opens files and sockets of its own.
  client: ['lib', 'client'],
  // Examples are projects of their own that use Krypton through its package names only.
  examples: ['examples'],
};

/**
 * server/'s rooms, lowest first: a room may import itself and the rooms before it, never one after,
 * so the dependency graph between rooms has no cycles and reads bottom-up.
 */
export const SERVER_ROOMS: readonly string[] = [
  'base',
  'net',
  'documents',
  'membership',
  'routing',
  'replication',
  'synch',
  'tasks',
  'watches',
  'auth',
  'http',
  'host',
];

/** lib/ is pure domain code: these modules (and their subpaths) bring I/O into it. */
export const LIB_FORBIDDEN_MODULES: readonly string[] = [
  'node:fs',
  'fs',
  'node:net',
  'net',
  'node:http',
  'http',
  'node:https',
  'https',
  'node:child_process',
  'child_process',
  'koa',
  '@koa/router',
  'undici',
];

/** ...and these calls bring the clock, randomness or timers; the host passes them in instead. */
export const LIB_FORBIDDEN_CALLS: readonly string[] = ['Date.now(', 'Math.random(', 'setTimeout(', 'setInterval('];

export const SERVER_FILE_LINES_MAX = 400;

/**
 * Text no tracked file may contain (package-lock.json aside): pointers to a sibling checkout and
 * to section numbers of a document that is not in the repository. Spelled in pieces so that this
 * file does not match itself.
 */
export const FORBIDDEN_TEXT: readonly string[] = ['..' + '/shared', 'reference' + ' §'];
const FORBIDDEN_TEXT_EXEMPT = new Set(['package-lock.json']);

export interface Exceptions {
  /** Relative imports allowed although a rule forbids them, by importing and imported file. */
  imports: readonly { from: string; to: string; why: string }[];
  /** server/ files allowed over SERVER_FILE_LINES_MAX lines. */
  oversized: readonly { file: string; why: string }[];
  /** While true, FORBIDDEN_TEXT findings are printed but do not fail the check. */
  forbiddenTextReportOnly: boolean;
}

/**
 * Violations present on main when this check was added, each being removed by work in progress.
 * The lead deletes an entry once its fix lands (the check prints the entries nothing needs any
 * more) and flips forbiddenTextReportOnly to false once no tracked file matches FORBIDDEN_TEXT.
 */
export const TEMPORARY_EXCEPTIONS: Exceptions = {
  imports: [],
  oversized: [],
  forbiddenTextReportOnly: false,
};

export type Rule = 'layer' | 'lib-purity' | 'room' | 'file-size' | 'forbidden-text';

export interface Violation {
  rule: Rule;
  file: string;
  line: number;
  message: string;
}

export interface SourceFile {
  /** Path from the repository root, with forward slashes. */
  path: string;
  text: string;
}

export interface LayoutReport {
  /** Violations that fail the check. */
  failures: Violation[];
  /** Violations shown but not failing (forbidden text while report-only). */
  notices: Violation[];
  /** Exceptions no file needs any more: the lead deletes them. */
  unusedExceptions: string[];
}

/** Checks `files` (every tracked file; the import and size rules look at the .ts ones only). */
export function checkLayout(files: readonly SourceFile[], exceptions: Exceptions = TEMPORARY_EXCEPTIONS): LayoutReport {
  const found: Violation[] = [];
  const usedImports = new Set<string>();
  const usedOversized = new Set<string>();
  for (const f of files) {
    if (f.path.endsWith('.ts')) {
      found.push(...checkImports(f, exceptions, usedImports));
      if (f.path.startsWith('lib/')) found.push(...checkLibCalls(f));
      const size = checkSize(f, exceptions);
      if (size === 'excepted') usedOversized.add(f.path);
      else if (size) found.push(size);
    }
    if (!FORBIDDEN_TEXT_EXEMPT.has(f.path)) found.push(...checkForbiddenText(f));
  }
  const reportOnly = (v: Violation) => v.rule === 'forbidden-text' && exceptions.forbiddenTextReportOnly;
  const unusedExceptions = [
    ...exceptions.imports.filter((e) => !usedImports.has(`${e.from} -> ${e.to}`)).map((e) => `import ${e.from} -> ${e.to}`),
    ...exceptions.oversized.filter((e) => !usedOversized.has(e.file)).map((e) => `oversized ${e.file}`),
  ];
  return { failures: found.filter((v) => !reportOnly(v)), notices: found.filter(reportOnly), unusedExceptions };
}

/** A module specifier in a file, with the line it is on. */
export interface ImportRef {
  specifier: string;
  line: number;
}

/**
 * Static imports and re-exports (`import type` included) and dynamic `import('…')`, type-position
 * ones too, from source with comments removed. A regex pass, not a parser: enough for this
 * repository's code, which writes imports the one way Biome formats them.
 */
export function importsOf(text: string): ImportRef[] {
  const code = stripComments(text);
  const refs: ImportRef[] = [];
  const lineAt = (index: number) => 1 + countNewlines(code, index);
  const forms = [
    /\b(?:import|export)\s+(?:type\s+)?(?:[\w$*{][^'"`;]*?\s+from\s+)?['"]([^'"\n]+)['"]/g,
    /\bimport\s*\(\s*['"`]([^'"`\n]+)['"`]\s*\)/g,
  ];
  for (const re of forms) {
    for (const m of code.matchAll(re)) refs.push({ specifier: m[1]!, line: lineAt(m.index) });
  }
  return refs.sort((a, b) => a.line - b.line);
}

function checkImports(f: SourceFile, exceptions: Exceptions, used: Set<string>): Violation[] {
  const out: Violation[] = [];
  const from = placeOf(f.path);
  for (const { specifier, line } of importsOf(f.text)) {
    if (!specifier.startsWith('.')) {
      if (from.layer === 'lib' && isForbiddenModule(specifier)) {
        out.push({ rule: 'lib-purity', file: f.path, line, message: `lib/ imports '${specifier}': lib/ does no I/O` });
      }
      continue;
    }
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(f.path), specifier)).replace(/\.js$/, '.ts');
    const problem = importProblem(from, placeOf(target));
    if (!problem) continue;
    const key = `${f.path} -> ${target}`;
    if (exceptions.imports.some((e) => `${e.from} -> ${e.to}` === key)) {
      used.add(key);
      continue;
    }
    out.push({ rule: problem.rule, file: f.path, line, message: `imports ${target}: ${problem.message}` });
  }
  return out;
}

interface Place {
  /** The top-level folder ('' for a file at the root, '..' for one outside the repository). */
  layer: string;
  /** For server/ files, the room (the folder under server/); '' for a file directly in server/. */
  room: string;
}

function placeOf(file: string): Place {
  const parts = file.split('/');
  const layer = parts.length > 1 ? parts[0]! : '';
  return { layer, room: layer === 'server' && parts.length > 2 ? parts[1]! : '' };
}

function importProblem(from: Place, to: Place): { rule: Rule; message: string } | undefined {
  const allowed = LAYER_IMPORTS[from.layer];
  if (allowed && !allowed.includes(to.layer)) {
    return { rule: 'layer', message: `${from.layer}/ may import only ${allowed.map((l) => `${l}/`).join(', ')}` };
  }
  if (from.layer !== 'server' || to.layer !== 'server') return undefined;
  const fromRank = SERVER_ROOMS.indexOf(from.room);
  const toRank = SERVER_ROOMS.indexOf(to.room);
  if (fromRank < 0) return { rule: 'room', message: `server/${from.room || '*.ts'} is not a room in the table` };
  if (toRank < 0) return { rule: 'room', message: `server/${to.room || '*.ts'} is not a room in the table` };
  if (toRank > fromRank) return { rule: 'room', message: `${from.room}/ comes before ${to.room}/, so may not import it` };
  return undefined;
}

function isForbiddenModule(specifier: string): boolean {
  return LIB_FORBIDDEN_MODULES.some((m) => specifier === m || specifier.startsWith(`${m}/`));
}

function checkLibCalls(f: SourceFile): Violation[] {
  const out: Violation[] = [];
  const lines = stripComments(f.text).split('\n');
  for (const [i, text] of lines.entries()) {
    for (const call of LIB_FORBIDDEN_CALLS) {
      const name = call.slice(0, -1);
      if (new RegExp(`(?<![\\w$.])${escapeRegex(name)}\\s*\\(`).test(text)) {
        out.push({
          rule: 'lib-purity',
          file: f.path,
          line: i + 1,
          message: `lib/ calls ${name}(): take the clock, randomness or timer as a parameter`,
        });
      }
    }
  }
  return out;
}

function checkSize(f: SourceFile, exceptions: Exceptions): Violation | 'excepted' | undefined {
  if (!f.path.startsWith('server/')) return undefined;
  const lines = lineCount(f.text);
  if (lines <= SERVER_FILE_LINES_MAX) return undefined;
  if (exceptions.oversized.some((e) => e.file === f.path)) return 'excepted';
  return {
    rule: 'file-size',
    file: f.path,
    line: SERVER_FILE_LINES_MAX + 1,
    message: `${lines} lines; server/ files stay within ${SERVER_FILE_LINES_MAX}`,
  };
}

function checkForbiddenText(f: SourceFile): Violation[] {
  const out: Violation[] = [];
  for (const bad of FORBIDDEN_TEXT) {
    let at = f.text.indexOf(bad);
    while (at >= 0) {
      out.push({ rule: 'forbidden-text', file: f.path, line: 1 + countNewlines(f.text, at), message: `contains '${bad}'` });
      at = f.text.indexOf(bad, at + bad.length);
    }
  }
  return out;
}

/** A file's line count, not counting the empty string after a final newline. */
export function lineCount(text: string): number {
  if (text === '') return 0;
  return countNewlines(text, text.length) + (text.endsWith('\n') ? 0 : 1);
}

function countNewlines(s: string, end: number): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0 && i < end; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Source with comments blanked (newlines kept, so line numbers hold) and strings left alone. It
 * knows quotes and template literals but not regex literals: a `//` inside one blanks the rest of
 * that line, which can only hide a finding, never invent one.
 */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      const stop = stringEnd(text, i);
      out += text.slice(i, stop);
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Index just past the string literal opening at `start` (a line break ends an unclosed quote). */
function stringEnd(text: string, start: number): number {
  const quote = text[start]!;
  let i = start + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\\') i += 2;
    else if (c === quote) return i + 1;
    else if (c === '\n' && quote !== '`') return i;
    else i++;
  }
  return i;
}

/** Every tracked file of the repository at `root`, read as UTF-8. */
export function trackedFiles(root: string): SourceFile[] {
  const listed = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return listed
    .split('\0')
    .filter((p) => p !== '' && fs.existsSync(path.join(root, p)))
    .map((p) => ({ path: p, text: fs.readFileSync(path.join(root, p), 'utf8') }));
}

const RULE_TITLES: Record<Rule, string> = {
  layer: 'Layer imports',
  'lib-purity': 'lib/ purity',
  room: 'server/ room order',
  'file-size': 'server/ file size',
  'forbidden-text': 'Forbidden text',
};

/** The report as text for a terminal: violations by rule, the tables they break, notices. */
export function formatReport(r: LayoutReport, fileCount: number): string {
  const out: string[] = [];
  const byRule = (vs: Violation[]) =>
    (Object.keys(RULE_TITLES) as Rule[])
      .map((rule) => [rule, vs.filter((v) => v.rule === rule)] as const)
      .filter(([, list]) => list.length > 0);
  for (const [rule, list] of byRule(r.failures)) {
    out.push(`${RULE_TITLES[rule]}: ${list.length} violation${list.length === 1 ? '' : 's'}`);
    for (const v of list) out.push(`  ${v.file}:${v.line}  ${v.message}`);
    out.push(...ruleTable(rule), '');
  }
  for (const [rule, list] of byRule(r.notices)) {
    out.push(`${RULE_TITLES[rule]} (report only for now, see TEMPORARY_EXCEPTIONS): ${list.length} finding${list.length === 1 ? '' : 's'}`);
    for (const v of list) out.push(`  ${v.file}:${v.line}  ${v.message}`);
    out.push('');
  }
  if (r.unusedExceptions.length > 0) {
    out.push('Exceptions nothing needs any more (delete them from TEMPORARY_EXCEPTIONS in tools/check/layout.ts):');
    for (const e of r.unusedExceptions) out.push(`  ${e}`);
    out.push('');
  }
  const n = r.failures.length;
  out.push(
    n === 0 ? `layout: ok (${fileCount} tracked files)` : `layout: ${n} violation${n === 1 ? '' : 's'} in ${fileCount} tracked files`,
  );
  return out.join('\n');
}

function ruleTable(rule: Rule): string[] {
  switch (rule) {
    case 'layer':
      return [
        '  Allowed relative imports by layer (tools/ and test/ import anything):',
        ...Object.entries(LAYER_IMPORTS).map(([l, to]) => `    ${`${l}/`.padEnd(8)} -> ${to.map((t) => `${t}/`).join(', ')}`),
      ];
    case 'room':
      return [
        '  server/ rooms, lowest first; a room imports itself and rooms above it in this list only:',
        ...SERVER_ROOMS.map((room, i) => `    ${String(i + 1).padStart(2)}. ${room}`),
      ];
    case 'lib-purity':
      return [
        `  lib/ may not import ${LIB_FORBIDDEN_MODULES.join(', ')}`,
        `  nor call ${LIB_FORBIDDEN_CALLS.map((c) => `${c})`).join(', ')}`,
      ];
    case 'file-size':
      return [`  At most ${SERVER_FILE_LINES_MAX} lines per server/ file: split it along what its parts own.`];
    case 'forbidden-text':
      return [`  No tracked file (package-lock.json aside) may contain ${FORBIDDEN_TEXT.map((t) => `'${t}'`).join(' or ')}.`];
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const files = trackedFiles(root);
  const report = checkLayout(files);
  const text = formatReport(report, files.length);
  if (report.failures.length > 0) {
    process.stderr.write(`${text}\n`);
    process.exitCode = 1;
  } else process.stdout.write(`${text}\n`);
}
