/**
 * AuthCredentialsService (`/core/auth/credentials`, Xenon's path and fields): a user's password,
 * found by `userEmail`. Clients send `privateKey` (the password) as in Xenon; the host replaces it
 * with `privateKeyHash` (scrypt with a per-credential salt, server/auth/passwords.ts) before the write
 * reaches this service, so only the hash is ever logged, replicated or indexed. A body that
 * still carries `privateKey` here bypassed that step and is refused. Responses never include the
 * hash (server/auth/authz.ts redacts it).
 */

import Type from 'typebox';
import { KryptonError } from '../errors.js';
import type { JsonObject } from '../document.js';
import { CREDENTIALS_LINK, parsePasswordHash } from '../authz.js';
import { limits } from '../limits.js';
import { defineService } from '../service.js';
import { checkEmail } from './authz-users.js';

export const CREDENTIALS_KIND = 'com:vmware:xenon:services:common:AuthCredentialsService:AuthCredentialsServiceState';

export interface CredentialsState extends JsonObject {
  userEmail?: string | null;
  userLink?: string | null;
  type?: string | null;
  privateKey?: string | null;
  privateKeyHash?: string | null;
}

const nullable = <T extends Type.TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

function shape(s: CredentialsState): CredentialsState {
  if (s.privateKey != null) throw new KryptonError('INVALID_BODY', 'privateKey reached the store unhashed');
  const out: CredentialsState = { userEmail: checkEmail(s.userEmail, 'userEmail') };
  if (s.userLink != null) out.userLink = s.userLink;
  out.type = s.type ?? 'Password';
  if (s.privateKeyHash == null) throw new KryptonError('INVALID_BODY', 'privateKey is required');
  if (!parsePasswordHash(s.privateKeyHash, limits.scryptMemoryBytesMax))
    throw new KryptonError('INVALID_BODY', 'privateKeyHash is not a scrypt hash this host can check');
  out.privateKeyHash = s.privateKeyHash;
  return out;
}

export const credentialsService = defineService<CredentialsState>({
  factoryLink: CREDENTIALS_LINK,
  kind: CREDENTIALS_KIND,
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 100,
  bodySchema: Type.Object({
    userEmail: nullable(Type.String()),
    userLink: nullable(Type.String()),
    type: nullable(Type.String()),
    privateKey: nullable(Type.String()),
    privateKeyHash: nullable(Type.String()),
    documentSelfLink: nullable(Type.String()),
  }),
  create: (body) => shape(body),
  put: (_current, body) => shape(body),
  patch: (current, body) =>
    shape({
      userEmail: body.userEmail ?? current.userEmail,
      userLink: body.userLink ?? current.userLink,
      type: body.type ?? current.type,
      privateKey: body.privateKey,
      privateKeyHash: body.privateKeyHash ?? current.privateKeyHash,
    }),
});
