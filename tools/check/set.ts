/**
 * The set workload's check: clients add elements with unique ids (one document each under a
 * factory, say) and, once the writes have stopped, one read lists what the set holds. Every add
 * that was acknowledged must be there (else it was lost); an element may only be there if some
 * add of it was acknowledged or had an unknown outcome (a refused add, or one nobody made, must
 * not appear); and no element may be listed twice.
 */

export interface SetAdd {
  element: string; // unique id of the element added
  outcome: 'ok' | 'fail' | 'unknown';
  process?: number;
  call?: number;
  ret?: number;
}

export interface SetHistory {
  adds: readonly SetAdd[];
  /** What the final read returned, in the order it listed them. */
  finalRead: readonly string[];
}

export interface SetVerdict {
  result: 'ok' | 'violation';
  lost: string[]; // acknowledged, not in the final read
  unexpected: string[]; // in the final read with no acknowledged or unknown add
  duplicated: string[]; // listed more than once
  /** Unknown adds that did take effect, and those that did not: not violations, worth counting. */
  unknownPresent: number;
  unknownAbsent: number;
  explanation?: string;
}

export function checkSet(h: SetHistory): SetVerdict {
  const read = new Set<string>();
  const duplicated = new Set<string>();
  for (const e of h.finalRead) {
    if (read.has(e)) duplicated.add(e);
    read.add(e);
  }
  const acked = new Set<string>();
  const maybe = new Set<string>();
  for (const a of h.adds) {
    if (a.outcome === 'ok') acked.add(a.element);
    else if (a.outcome === 'unknown') maybe.add(a.element);
  }
  const lost = [...acked].filter((e) => !read.has(e)).sort();
  const unexpected = [...read].filter((e) => !acked.has(e) && !maybe.has(e)).sort();
  const unknown = [...maybe].filter((e) => !acked.has(e));
  const v: SetVerdict = {
    result: lost.length || unexpected.length || duplicated.size ? 'violation' : 'ok',
    lost,
    unexpected,
    duplicated: [...duplicated].sort(),
    unknownPresent: unknown.filter((e) => read.has(e)).length,
    unknownAbsent: unknown.filter((e) => !read.has(e)).length,
  };
  if (v.result === 'violation') v.explanation = explainSet(v, h);
  return v;
}

/** How many elements of each kind an explanation names before it only counts them. */
const SHOWN = 10;

function explainSet(v: SetVerdict, h: SetHistory): string {
  const adds = new Map<string, SetAdd[]>();
  for (const a of h.adds) adds.set(a.element, [...(adds.get(a.element) ?? []), a]);
  const describe = (e: string) => {
    const as = adds.get(e) ?? [];
    if (!as.length) return `${JSON.stringify(e)} (never added)`;
    const one = (a: SetAdd) =>
      `${a.outcome}${a.process === undefined ? '' : ` p${a.process}`}${a.call === undefined ? '' : ` [${a.call.toFixed(1)}, ${a.ret === undefined ? '?' : a.ret.toFixed(1)}]`}`;
    return `${JSON.stringify(e)} (add ${as.map(one).join(', ')})`;
  };
  const section = (title: string, es: string[]) =>
    es.length
      ? [
          `  ${title}: ${es.length}`,
          ...es.slice(0, SHOWN).map((e) => `    ${describe(e)}`),
          ...(es.length > SHOWN ? [`    ... and ${es.length - SHOWN} more`] : []),
        ]
      : [];
  return [
    `set: final read of ${h.finalRead.length} element(s) disagrees with ${h.adds.length} add(s).`,
    ...section('lost (acknowledged, not read)', v.lost),
    ...section('unexpected (read, never acknowledged nor pending)', v.unexpected),
    ...section('listed more than once', v.duplicated),
  ].join('\n');
}
