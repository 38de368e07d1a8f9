/**
 * Login sessions (`/core/authz/tokens`, Krypton's own): one document per issued token, named by
 * the SHA-256 of the token (so reading one reveals nothing usable), holding the user's link and
 * expiring with the token. They are replicated like any document, so a token issued by one host
 * is honoured by every host of the group; LOGOUT deletes the document; the index purges expired
 * ones. Only the system user (hosts) may touch this factory.
 */

import Type from 'typebox';
import { KryptonError } from '../errors.js';
import type { JsonObject } from '../document.js';
import { TOKENS_LINK } from '../authz.js';
import { defineService } from '../service.js';

export const TOKEN_KIND = 'krypton:authz:AuthTokenState';

export interface TokenState extends JsonObject {
  userLink?: string | null;
  documentExpirationTimeMicros?: number | null;
}

const nullable = <T extends Type.TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

function shape(s: TokenState): TokenState {
  if (typeof s.userLink !== 'string' || !s.userLink.startsWith('/')) throw new KryptonError('INVALID_BODY', 'userLink is required');
  return { userLink: s.userLink };
}

export const tokenService = defineService<TokenState>({
  factoryLink: TOKENS_LINK,
  kind: TOKEN_KIND,
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 20,
  bodySchema: Type.Object({
    userLink: nullable(Type.String()),
    documentSelfLink: nullable(Type.String()),
    documentExpirationTimeMicros: nullable(Type.Integer({ minimum: 0 })),
  }),
  create(body) {
    if (!body.documentExpirationTimeMicros)
      throw new KryptonError('INVALID_BODY', 'documentExpirationTimeMicros is required: a session always ends');
    return shape(body);
  },
  put: (_current, body) => shape(body),
  patch: (current, body) => shape({ userLink: body.userLink ?? current.userLink }),
  // A session keeps its end unless an update names another one.
  expiration: (current, body) => body.documentExpirationTimeMicros ?? current?.documentExpirationTimeMicros ?? 0,
});
