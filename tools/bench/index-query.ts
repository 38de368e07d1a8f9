/**
 * Index micro benchmark: loads ExampleService-shaped documents (100,000 x 10 versions by default)
 * into a DocumentIndex through `apply`, then reports the median latency of a selective term query
 * (`name` = one document's unique name, latest versions) and of an INCLUDE_ALL_VERSIONS query for
 * one link's history (`documentSelfLink` = X), each over 200 runs, plus the heap cost per version.
 *
 * Memory is `heapUsed + arrayBuffers` (posting lists live in typed arrays) before and after
 * loading. `bytesPerVersion` is everything a host holds per version, the state objects included;
 * `stateBytesPerVersion` is the states alone (measured while they sit in an array before
 * loading) and `indexBytesPerVersion` the difference, the index's own overhead. The figures need
 * a full GC before each reading: with `node --expose-gc` the script uses `global.gc`, without it it
 * enables the flag at run time, which V8 allows but does not promise; run with --expose-gc for
 * trustworthy numbers.
 *
 * Run: node --import tsx tools/bench/index-query.ts [docs] [versions]
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pathToFileURL } from 'node:url';
import { KINDS, type ServiceDocument } from '../../lib/document.js';
import { parseQuerySpec } from '../../lib/query/spec.js';
import { DocumentIndex } from '../../index/views.js';

export interface IndexBenchResult {
  termP50Micros: number;
  allVersionsP50Micros: number;
  bytesPerVersion: number;
  stateBytesPerVersion: number;
  indexBytesPerVersion: number;
  loadMillis: number;
  docs: number;
  versions: number;
}

const RUNS = 200;
const T0 = 1_700_000_000_000_000;

function findGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

function heapBytes(gc: (() => void) | undefined): number {
  if (gc !== undefined) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function linkOf(i: number): string {
  return `/core/examples/${(0x5eed0000 + i).toString(16)}-${i}`;
}

/** A fresh state per version, as the log decoder would hand the index. */
function exampleState(i: number, v: number): ServiceDocument {
  return {
    keyValues: { colour: `c${i % 17}`, region: `r${(i + v) % 5}` },
    counter: i * 10 + v,
    sortedCounter: i,
    name: `example-${i}`,
    tags: [`t${i % 10}`, `g${v % 3}`],
    isFromMigration: false,
    documentVersion: v,
    documentEpoch: 0,
    documentKind: KINDS.example,
    documentSelfLink: linkOf(i),
    documentUpdateTimeMicros: T0 + v * 1_000_000 + i,
    documentUpdateAction: v === 0 ? 'POST' : 'PATCH',
    documentExpirationTimeMicros: 0,
    documentOwner: 'host-1',
  };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** A small deterministic generator, so every run asks for the same documents. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

function p50Micros(run: (k: number) => number, expect: number): number {
  const times: number[] = [];
  for (let k = 0; k < RUNS; k++) {
    const t = process.hrtime.bigint();
    const n = run(k);
    times.push(Number(process.hrtime.bigint() - t) / 1000);
    if (n !== expect) throw new Error(`benchmark query returned ${n} results, expected ${expect}`);
  }
  return median(times);
}

export async function benchIndexQuery(opts: { docs?: number; versions?: number } = {}): Promise<IndexBenchResult> {
  const docs = opts.docs ?? 100_000;
  const versionsPerDoc = opts.versions ?? 10;
  const total = docs * versionsPerDoc;
  const gc = findGc();

  const base = heapBytes(gc);
  // States first, held in an array, so their own size can be told apart from the index's.
  let states: ServiceDocument[] | undefined = new Array<ServiceDocument>(total);
  for (let v = 0, k = 0; v < versionsPerDoc; v++) for (let i = 0; i < docs; i++) states[k++] = exampleState(i, v);
  const withStates = heapBytes(gc);
  const stateBytes = withStates - base - 8 * total; // minus the array's own slots

  const idx = new DocumentIndex({ retentionFor: (link) => (link.startsWith('/core/examples/') ? 100 : 1000) });
  const start = process.hrtime.bigint();
  // Version by version across all documents, the way concurrent updates interleave in a log.
  for (let k = 0; k < total; k++) {
    const state = states[k]!;
    idx.apply({
      seq: k + 1,
      link: state.documentSelfLink,
      action: state.documentUpdateAction,
      version: state.documentVersion,
      epoch: 0,
      timeMicros: state.documentUpdateTimeMicros,
      state,
    });
  }
  const loadMillis = Number(process.hrtime.bigint() - start) / 1e6;
  states = undefined;
  const loaded = heapBytes(gc);

  const now = T0 + versionsPerDoc * 1_000_000;
  const pick = lcg(42);
  const termPlans = Array.from({ length: RUNS }, () =>
    parseQuerySpec({ query: { term: { propertyName: 'name', matchValue: `example-${pick() % docs}` } } }),
  );
  const allPlans = Array.from({ length: RUNS }, () =>
    parseQuerySpec({
      query: { term: { propertyName: 'documentSelfLink', matchValue: linkOf(pick() % docs) } },
      options: ['INCLUDE_ALL_VERSIONS'],
    }),
  );
  // Warm the code paths before timing.
  for (let k = 0; k < 50; k++) {
    idx.query(termPlans[k]!, now);
    idx.query(allPlans[k]!, now);
  }
  const termP50Micros = p50Micros((k) => idx.query(termPlans[k]!, now).length, 1);
  const allVersionsP50Micros = p50Micros((k) => idx.query(allPlans[k]!, now).length, Math.min(versionsPerDoc, 100));

  const bytesPerVersion = (loaded - base) / total;
  const stateBytesPerVersion = stateBytes / total;
  return {
    termP50Micros: round(termP50Micros),
    allVersionsP50Micros: round(allVersionsP50Micros),
    bytesPerVersion: Math.round(bytesPerVersion),
    stateBytesPerVersion: Math.round(stateBytesPerVersion),
    indexBytesPerVersion: Math.round(bytesPerVersion - stateBytesPerVersion),
    loadMillis: Math.round(loadMillis),
    docs,
    versions: idx.stats().versions,
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [docs, versions] = process.argv.slice(2).map(Number);
  const result = await benchIndexQuery({
    ...(docs !== undefined && docs > 0 ? { docs } : {}),
    ...(versions !== undefined && versions > 0 ? { versions } : {}),
  });
  console.log(JSON.stringify(result, null, 2));
}
