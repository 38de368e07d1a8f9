/**
 * A strict parser of Prometheus' text exposition format (version 0.0.4) for tests: every line is
 * a HELP, a TYPE, a sample or blank; every sample belongs to a family declared by TYPE (a
 * histogram's `_bucket`, `_sum` and `_count` included); label values are quoted and escaped;
 * values are floats. Anything else throws, so a malformed /metrics fails the test that reads it.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const fail = (n: number, why: string): never => {
    throw new Error(`line ${n + 1}: ${why}`);
  };
  for (const [n, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) fail(n, `comment that is not HELP or TYPE: ${line}`);
      const [, kind, name, rest] = m! as unknown as [string, string, string, string];
      if (!NAME.test(name)) fail(n, `bad metric name ${name}`);
      const f = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
      if (kind === 'HELP') f.help = rest;
      else if (!TYPES.has(rest)) fail(n, `unknown type ${rest}`);
      else f.type = rest;
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) fail(n, `not a sample: ${line}`);
    const [, name, , rawLabels, rawValue] = m! as unknown as [string, string, string | undefined, string | undefined, string];
    const value = parseValue(rawValue);
    if (value === undefined) fail(n, `bad value ${rawValue}`);
    const labels = rawLabels === undefined ? {} : parseLabels(rawLabels, (why) => fail(n, why));
    const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
    if (!family) fail(n, `sample of an undeclared family: ${name}`);
    if (family!.name !== name && family!.type !== 'histogram' && family!.type !== 'summary')
      fail(n, `${name} in non-histogram ${family!.name}`);
    family!.samples.push({ name, labels, value: value! });
  }
  return families;
}

function parseValue(s: string): number | undefined {
  if (s === '+Inf') return Number.POSITIVE_INFINITY;
  if (s === '-Inf') return Number.NEGATIVE_INFINITY;
  if (s === 'NaN') return Number.NaN;
  return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : undefined;
}

function parseLabels(s: string, fail: (why: string) => never): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(s.slice(i));
    if (!m) fail(`bad label at ${s.slice(i)}`);
    i += m![0].length;
    let v = '';
    for (;;) {
      if (i >= s.length) fail('unterminated label value');
      const c = s[i]!;
      if (c === '\\') {
        const e = s[i + 1];
        v += e === 'n' ? '\n' : e === '"' ? '"' : e === '\\' ? '\\' : fail(`bad escape \\${e}`);
        i += 2;
      } else if (c === '"') {
        i++;
        break;
      } else {
        v += c;
        i++;
      }
    }
    out[m![1]!] = v;
    if (s[i] === ',') i++;
    else if (i < s.length) fail(`expected , after a label at ${s.slice(i)}`);
  }
  return out;
}

/** The sum of a family's samples named `name` whose labels include `match`. */
export function metricValue(families: Map<string, Family>, name: string, match: Record<string, string> = {}): number {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
  let sum = 0;
  for (const s of family?.samples ?? []) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

/** The metrics docs/metrics.md lists: `| `name` | type | labels | meaning |` rows. */
export function documentedMetrics(markdown: string): Map<string, { type: string; labels: string[] }> {
  const out = new Map<string, { type: string; labels: string[] }>();
  for (const m of markdown.matchAll(/^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(\w+)\s*\|([^|]*)\|/gm)) {
    const labels = m[3]!.trim() ? m[3]!.split(',').map((l) => l.trim()) : [];
    out.set(m[1]!, { type: m[2]!, labels });
  }
  return out;
}
