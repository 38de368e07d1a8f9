/**
 * A query task's answer as JSON text, built so a document's JSON is made once per version rather
 * than once per answer: a version's state never changes, so its text is kept beside it (a
 * WeakMap, gone with the state) and an answer with 1,000 documents splices 1,000 ready strings
 * into the task's own, much smaller, JSON. Credentials' password hashes are left out of that
 * text, as the access layer leaves them out of any query answer.
 */

import { randomUUID } from 'node:crypto';
import { PASSWORD_HASH_FIELD } from '../../lib/authz.js';
import type { JsonObject } from '../../lib/document.js';
import { CREDENTIALS_KIND } from '../../lib/services/authz-credentials.js';

const texts = new WeakMap<object, string>();
/** A state's `"<its self link>":<its JSON>` entry of a documents map, as UTF-8, made once per state. */
const entries = new WeakMap<object, Buffer>();

/**
 * Stand in for the maps of documents until their text replaces them; a random part, so no string
 * a client put in a query or a document can be mistaken for one.
 */
const NONCE = randomUUID();
const MAPS = ['documents', 'selectedDocuments'] as const;
const holeOf = (field: string) => `\u0000${field}-${NONCE}\u0000`;

/** The JSON text of one document state (hash-free for credentials), made once per state. */
export function documentJson(doc: JsonObject): string {
  let t = texts.get(doc);
  if (t === undefined) {
    if (doc.documentKind === CREDENTIALS_KIND && PASSWORD_HASH_FIELD in doc) {
      const { [PASSWORD_HASH_FIELD]: _hash, ...rest } = doc;
      t = JSON.stringify(rest);
    } else t = JSON.stringify(doc);
    texts.set(doc, t);
  }
  return t;
}

function entryOf(link: string, doc: JsonObject): Buffer {
  if (link !== doc.documentSelfLink) return Buffer.from(`${JSON.stringify(link)}:${documentJson(doc)}`, 'utf8');
  let b = entries.get(doc);
  if (b === undefined) {
    b = Buffer.from(`${JSON.stringify(link)}:${documentJson(doc)}`, 'utf8');
    entries.set(doc, b);
  }
  return b;
}

const COMMA = Buffer.from(',');
const OPEN = Buffer.from('{');
const CLOSE = Buffer.from('}');

/**
 * `task` as UTF-8 JSON, the states in `results.documents` and `results.selectedDocuments` copied
 * from their kept entries rather than serialized again.
 */
export function queryTaskJson(task: JsonObject): Buffer {
  const results = task.results as JsonObject | undefined;
  const present =
    results === undefined || results === null ? [] : MAPS.filter((f) => typeof results[f] === 'object' && results[f] !== null);
  if (present.length === 0) return Buffer.from(JSON.stringify(task), 'utf8');
  const holed: JsonObject = { ...results! };
  for (const f of present) holed[f] = holeOf(f);
  let text = JSON.stringify({ ...task, results: holed });
  const out: Buffer[] = [];
  for (const f of present) {
    const hole = JSON.stringify(holeOf(f));
    const at = text.indexOf(hole);
    out.push(Buffer.from(text.slice(0, at), 'utf8'), OPEN);
    const docs = results![f] as Record<string, JsonObject>;
    let first = true;
    for (const link in docs) {
      if (!first) out.push(COMMA);
      first = false;
      out.push(entryOf(link, docs[link]!));
    }
    out.push(CLOSE);
    text = text.slice(at + hole.length);
  }
  out.push(Buffer.from(text, 'utf8'));
  return Buffer.concat(out);
}
