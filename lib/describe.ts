/**
 * A service's property descriptions, read from its body schema: the type Xenon would name for
 * each field (ServiceDocumentDescription.TypeName), for a factory's `/template` and for OData's
 * `$orderby`, which sorts by the declared type as a Xenon factory does. Krypton services declare
 * a typebox schema instead of annotated Java fields, so this is all a description can hold: no
 * usage or indexing options beyond what the schema says.
 */

import type { ServiceDefinition } from './service.js';
import type { PropertyType } from './query/spec.js';

export interface PropertyDescription {
  typeName: PropertyType;
  /** For a collection or a map: the type of its items or values. */
  elementTypeName?: PropertyType;
}

/** The common document fields every state carries, as Xenon describes them. */
const COMMON: Readonly<Record<string, PropertyType>> = {
  documentVersion: 'LONG',
  documentEpoch: 'LONG',
  documentKind: 'STRING',
  documentSelfLink: 'STRING',
  documentUpdateTimeMicros: 'LONG',
  documentUpdateAction: 'STRING',
  documentExpirationTimeMicros: 'LONG',
  documentOwner: 'STRING',
};

type SchemaNode = { readonly [key: string]: unknown };

function isNode(v: unknown): v is SchemaNode {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The type of one schema node; a nullable union takes its non-null member. */
function typeOf(node: SchemaNode): PropertyDescription | undefined {
  const union = node.anyOf ?? node.oneOf;
  if (Array.isArray(union)) {
    const members = union.filter((m): m is SchemaNode => isNode(m) && m.type !== 'null');
    return members.length === 1 ? typeOf(members[0]!) : undefined;
  }
  switch (node.type) {
    case 'integer':
      return { typeName: 'LONG' };
    case 'number':
      return { typeName: 'DOUBLE' };
    case 'boolean':
      return { typeName: 'BOOLEAN' };
    case 'string':
      return { typeName: Array.isArray(node.enum) ? 'ENUM' : 'STRING' };
    case 'array': {
      const item = isNode(node.items) ? typeOf(node.items) : undefined;
      return item ? { typeName: 'COLLECTION', elementTypeName: item.typeName } : { typeName: 'COLLECTION' };
    }
    case 'object': {
      if (isNode(node.properties) && Object.keys(node.properties).length > 0) return { typeName: 'PODO' };
      const values = isNode(node.additionalProperties) ? typeOf(node.additionalProperties) : undefined;
      const patterns = isNode(node.patternProperties) ? Object.values(node.patternProperties).filter(isNode) : [];
      const value = values ?? (patterns.length === 1 ? typeOf(patterns[0]!) : undefined);
      return value ? { typeName: 'MAP', elementTypeName: value.typeName } : { typeName: 'MAP' };
    }
    default:
      return undefined;
  }
}

/**
 * Every field of the service's state with its type: the schema's own fields (those a client may
 * send that are not common document fields, and not the `kind` of a request body), then the
 * common ones.
 */
export function describeProperties(def: Pick<ServiceDefinition, 'bodySchema'>): Record<string, PropertyDescription> {
  const out: Record<string, PropertyDescription> = {};
  const schema: unknown = def.bodySchema;
  const props = isNode(schema) && isNode(schema.properties) ? schema.properties : {};
  for (const [name, node] of Object.entries(props)) {
    if (name in COMMON || name === 'kind' || !isNode(node)) continue;
    const d = typeOf(node);
    if (d) out[name] = d;
  }
  for (const [name, typeName] of Object.entries(COMMON)) out[name] = { typeName };
  return out;
}

/** The declared type of a top-level field, or undefined for nested names and unknown fields. */
export function declaredType(def: Pick<ServiceDefinition, 'bodySchema'>, name: string): PropertyType | undefined {
  return describeProperties(def)[name]?.typeName;
}

/**
 * The indexed names of the service's own text fields, what Xenon's OData `ALL_FIELDS` unfolds
 * to: top-level strings (and enums), and the items of collections of strings (`tags.item`).
 * Numbers, booleans, maps, nested objects and the common document fields are not among them.
 */
export function textFieldNames(def: Pick<ServiceDefinition, 'bodySchema'>): string[] {
  const out: string[] = [];
  for (const [name, d] of Object.entries(describeProperties(def))) {
    if (name in COMMON) continue;
    if (d.typeName === 'STRING' || d.typeName === 'ENUM') out.push(name);
    else if (d.typeName === 'COLLECTION' && d.elementTypeName === 'STRING') out.push(`${name}.item`);
  }
  return out;
}
