/**
 * UserService (`/core/authz/users`, Xenon's shape): a user is an `email`. Users are replicated
 * documents like any other, so every host can check a token's user locally. `userGroupLinks` is
 * accepted and kept for Xenon clients but means nothing here: roles name users directly
 * (lib/authz.ts).
 */

import Type from 'typebox';
import { KryptonError } from '../errors.js';
import type { JsonObject } from '../document.js';
import { USERS_LINK } from '../authz.js';
import { defineService } from '../service.js';

export const USER_KIND = 'com:vmware:xenon:services:common:UserService:UserState';

export interface UserState extends JsonObject {
  email?: string | null;
  userGroupLinks?: string[] | null;
}

const nullable = <T extends Type.TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

/** Xenon refuses a user without a plausible address; so does Krypton. */
export function checkEmail(email: unknown, field: string): string {
  if (email == null || email === '') throw new KryptonError('INVALID_BODY', `${field} is required`);
  if (typeof email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 320) {
    throw new KryptonError('INVALID_BODY', `${field} is not a valid email address`);
  }
  return email;
}

function shape(s: UserState): UserState {
  const out: UserState = { email: checkEmail(s.email, 'email') };
  if (s.userGroupLinks != null) out.userGroupLinks = [...new Set(s.userGroupLinks)];
  return out;
}

export const userService = defineService<UserState>({
  factoryLink: USERS_LINK,
  kind: USER_KIND,
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 100,
  bodySchema: Type.Object({
    email: nullable(Type.String()),
    userGroupLinks: nullable(Type.Array(Type.String())),
    documentSelfLink: nullable(Type.String()),
  }),
  create: (body) => shape(body),
  put: (_current, body) => shape(body),
  patch: (current, body) => shape({ email: body.email ?? current.email, userGroupLinks: body.userGroupLinks ?? current.userGroupLinks }),
});
