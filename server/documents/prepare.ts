/**
 * The entry host's check of a factory POST body and its choice of the child link (the client's
 * suffix, or a generated id), done once so a forwarded POST carries the link it was given.
 */

import type { JsonObject } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import type { RegisteredService, ServiceContext } from '../../lib/service.js';
import { childLinkFor } from '../../lib/verbs.js';

/**
 * Validates `rawBody` for `svc` and picks its link; with `ownedHere`, a generated id is one this
 * host owns when one of limits.localIdTriesMax candidates is.
 */
export function prepareCreate(
  svc: RegisteredService,
  rawBody: unknown,
  ctx: () => ServiceContext,
  ownedHere?: (link: Link) => boolean,
): { body: JsonObject; link: Link } {
  // TaskService and StatefulService word the same refusal differently in Xenon.
  if (rawBody === undefined)
    throw new KryptonError('INVALID_BODY', svc.def.runStage ? 'POST body is required' : 'initial state is required');
  if (
    rawBody !== null &&
    typeof rawBody === 'object' &&
    'documentSourceLink' in rawBody &&
    (rawBody as JsonObject).documentSourceLink != null
  ) {
    throw new KryptonError('INVALID_BODY', 'clone request not supported');
  }
  const body = svc.parseBody(rawBody);
  const requested = body.documentSelfLink;
  let link = childLinkFor(svc.def.factoryLink, requested, ctx());
  if (ownedHere && (requested === undefined || requested === null || requested === '')) {
    // An id this host generates may as well be one it owns: the create then runs here, with
    // no forwarding hop. Each candidate takes a later clock reading, so all stay unique.
    for (let i = 1; i < limits.localIdTriesMax && !ownedHere(link); i++) link = childLinkFor(svc.def.factoryLink, undefined, ctx());
  }
  return { body, link };
}
