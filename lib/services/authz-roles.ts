/**
 * RoleService (`/core/authz/roles`): a role grants `verbs` on the paths under its
 * `pathPrefixes` to the users its `userLinks` name (a link, or a prefix such as
 * `/core/authz/users` for every user; `/core/authz/guest-user` for callers without a token).
 * Xenon's role points at a user group and a resource group (queries) instead; Krypton refuses
 * those fields rather than ignore them. As in Xenon, `policy` must be ALLOW (DENY is refused),
 * `priority` is kept but changes nothing, roles add up, and POST on an existing role replaces it.
 */

import Type from 'typebox';
import { KryptonError } from '../errors.js';
import { limits } from '../limits.js';
import type { JsonObject } from '../document.js';
import { isVerb, ROLES_LINK, VERBS, type Verb } from '../authz.js';
import { defineService } from '../service.js';

export const ROLE_KIND = 'com:vmware:xenon:services:common:RoleService:RoleState';

export interface RoleState extends JsonObject {
  userLinks?: string[] | null;
  pathPrefixes?: string[] | null;
  verbs?: string[] | null;
  policy?: string | null;
  priority?: number | null;
  userGroupLink?: string | null;
  resourceGroupLink?: string | null;
}

const nullable = <T extends Type.TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

function links(v: string[] | null | undefined, field: string): string[] {
  if (!v || v.length === 0) throw new KryptonError('INVALID_BODY', `${field} is required`);
  if (v.length > limits.roleEntriesMax)
    throw new KryptonError('INVALID_BODY', `${field} may list at most ${limits.roleEntriesMax} entries`);
  for (const s of v) if (!s.startsWith('/')) throw new KryptonError('INVALID_BODY', `${field} entries must start with '/': '${s}'`);
  return [...new Set(v)];
}

function shape(s: RoleState): RoleState {
  if (s.userGroupLink != null || s.resourceGroupLink != null) {
    throw new KryptonError(
      'INVALID_BODY',
      'userGroupLink and resourceGroupLink are not supported: name users in userLinks and paths in pathPrefixes',
    );
  }
  const userLinks = links(s.userLinks, 'userLinks');
  const pathPrefixes = links(s.pathPrefixes, 'pathPrefixes');
  if (!s.verbs || s.verbs.length === 0) throw new KryptonError('INVALID_BODY', 'verbs is required');
  const bad = s.verbs.find((v) => !isVerb(v));
  if (bad !== undefined) throw new KryptonError('INVALID_BODY', `unknown verb '${bad}' (expected ${VERBS.join(', ')})`);
  if (s.policy == null) throw new KryptonError('INVALID_BODY', 'policy is required');
  if (s.policy === 'DENY') throw new KryptonError('INVALID_BODY', 'DENY policy is not supported');
  if (s.policy !== 'ALLOW') throw new KryptonError('INVALID_BODY', `unknown policy '${s.policy}'`);
  const verbs = VERBS.filter((v: Verb) => s.verbs!.includes(v));
  return { userLinks, pathPrefixes, verbs, policy: 'ALLOW', priority: s.priority ?? 0 };
}

export const roleService = defineService<RoleState>({
  factoryLink: ROLES_LINK,
  kind: ROLE_KIND,
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION', 'IDEMPOTENT_POST'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 100,
  bodySchema: Type.Object({
    userLinks: nullable(Type.Array(Type.String())),
    pathPrefixes: nullable(Type.Array(Type.String())),
    verbs: nullable(Type.Array(Type.String())),
    policy: nullable(Type.String()),
    priority: nullable(Type.Integer()),
    userGroupLink: nullable(Type.String()),
    resourceGroupLink: nullable(Type.String()),
    documentSelfLink: nullable(Type.String()),
  }),
  create: (body) => shape(body),
  put: (_current, body) => shape(body),
  patch: (current, body) =>
    shape({
      userLinks: body.userLinks ?? current.userLinks,
      pathPrefixes: body.pathPrefixes ?? current.pathPrefixes,
      verbs: body.verbs ?? current.verbs,
      policy: body.policy ?? current.policy,
      priority: body.priority ?? current.priority,
      userGroupLink: body.userGroupLink,
      resourceGroupLink: body.resourceGroupLink,
    }),
});
