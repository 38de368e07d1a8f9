/**
 * The shapes of a QueryTask and its results, and what results carry beyond links and documents: EXPAND_SELECTED_FIELDS (documents cut
 * down to the selected fields), SELECT_LINKS (`selectedLinksPerDocument`, `selectedLinks`) and
 * the group values GROUP_BY splits hits by. The linked documents of EXPAND_LINKS and the group
 * pages are the task's (query-tasks.ts), since they run queries of their own.
 */

import type { JsonObject, ServiceDocument } from '../../lib/document.js';
import type { ContinuousCounts } from './continuous.js';
import type { SortKey } from '../../lib/query/merge.js';
import { selectedLinksOf } from '../../lib/query/select.js';
import type { GroupBy, QueryPlan } from '../../lib/query/spec.js';
import { someValueAt } from '../../index/fields.js';

export interface QueryResults extends JsonObject {
  documentLinks: string[];
  documents?: Record<string, ServiceDocument>;
  documentCount: number;
  queryTimeMicros: number;
  nextPageLink?: string;
  prevPageLink?: string;
  selectedLinksPerDocument?: Record<string, Record<string, string>>;
  selectedLinks?: string[];
  selectedDocuments?: Record<string, JsonObject>;
  nextPageLinksPerGroup?: Record<string, string>;
  continuousResults?: ContinuousCounts;
  documentOwner: string;
}

export interface QueryTaskState extends JsonObject {
  taskInfo: { stage: 'CREATED' | 'STARTED' | 'FINISHED' | 'FAILED'; isDirect: boolean; durationMicros?: number };
  querySpec: JsonObject;
  results?: QueryResults;
  indexLink: string;
  nodeSelectorLink: string;
  documentSelfLink: string;
  documentKind: string;
  documentVersion: number;
  documentUpdateTimeMicros: number;
  documentExpirationTimeMicros: number;
  documentOwner: string;
}

export interface ShapedExtras {
  documents?: Record<string, ServiceDocument>;
  selectedLinksPerDocument?: Record<string, Record<string, string>>;
  selectedLinks?: string[];
}

/** The state a result shows under EXPAND_CONTENT or EXPAND_SELECTED_FIELDS. */
export function shownDocument(doc: ServiceDocument, plan: QueryPlan): ServiceDocument {
  if (plan.builtinOnly) {
    const out: Record<string, unknown> = {};
    for (const f in doc) if (f.startsWith('document')) out[f] = doc[f];
    return out as ServiceDocument;
  }
  if (plan.selectFields === undefined) return doc;
  const out: Record<string, unknown> = {};
  for (const f of plan.selectFields) if (Object.hasOwn(doc, f)) out[f] = doc[f];
  return out as ServiceDocument;
}

/** SELECT_LINKS over the shown hits: per document and the distinct values, in first-seen order. */
export function selectLinks(
  hits: readonly { doc?: Record<string, unknown> | undefined }[],
  links: readonly string[],
  fields: readonly string[],
): Pick<ShapedExtras, 'selectedLinksPerDocument' | 'selectedLinks'> {
  const per: Record<string, Record<string, string>> = {};
  const all = new Set<string>();
  hits.forEach((h, i) => {
    if (h.doc === undefined) return;
    const sel = selectedLinksOf(h.doc, fields);
    if (Object.keys(sel).length === 0) return;
    per[links[i]!] = sel;
    for (const v of Object.values(sel)) all.add(v);
  });
  return { selectedLinksPerDocument: per, selectedLinks: [...all] };
}

/** Every value `doc` has under the group field (strings, or numbers for a numeric group). */
export function groupValuesOf(doc: Record<string, unknown>, g: GroupBy): SortKey[] {
  const out: SortKey[] = [];
  someValueAt(doc as ServiceDocument, g.propertyName, (v) => {
    if ((typeof v === 'number') === g.numeric) out.push(v);
    return false;
  });
  return out;
}
