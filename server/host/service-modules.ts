/**
 * `krypton host --services=a.js,b.js`: imports each module and takes every service definition it
 * exports (one per export, or an array of them; other exports are left alone), checks each one's
 * shape, since a module is the user's code and not typed at this boundary, and refuses a module
 * that exports none, a link defined twice, a link a built-in service holds, or an unknown node
 * selector, with a message naming the module (INVALID_SETUP: `krypton host` prints it, exits 1).
 */

import { pathToFileURL } from 'node:url';
import type { JsonObject } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { ServiceDefinition, StatelessServiceDefinition } from '../../lib/service.js';
import { serviceLinkOf } from '../../lib/service-fingerprint.js';
import { BUILTIN_SERVICES } from '../../lib/services/builtin.js';
import { SELECTOR_SPECS } from '../membership/selectors.js';

export type UserService = ServiceDefinition<JsonObject> | StatelessServiceDefinition;

function setup(message: string): KryptonError {
  return new KryptonError('INVALID_SETUP', message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A definition is recognized by its link field; one that has it is then checked in full. */
function looksLikeDefinition(v: unknown): v is Record<string, unknown> {
  return isRecord(v) && (typeof v.factoryLink === 'string' || v.stateless === true);
}

function checkDefinition(v: Record<string, unknown>, where: string): UserService {
  const fn = (name: string) => v[name] === undefined || typeof v[name] === 'function';
  const link = (l: unknown) => typeof l === 'string' && /^\/[A-Za-z0-9\-_.~/]*[A-Za-z0-9\-_.~]$/.test(l) && !l.includes('//');
  if (v.stateless === true) {
    if (!link(v.link)) throw setup(`${where}: a stateless service needs a link like /app/hello`);
    if (!fn('get') || !fn('post') || (v.get === undefined && v.post === undefined))
      throw setup(`${where}: the stateless service ${String(v.link)} needs a get or post handler`);
    return v as unknown as StatelessServiceDefinition;
  }
  const name = String(v.factoryLink);
  if (!link(v.factoryLink)) throw setup(`${where}: factoryLink '${name}' is not a path like /app/things`);
  if (typeof v.kind !== 'string' || v.kind === '') throw setup(`${where}: ${name} needs a kind (its documentKind)`);
  if (!Array.isArray(v.options)) throw setup(`${where}: ${name} needs options (e.g. ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'])`);
  if (!SELECTOR_SPECS.some((s) => s.selectorLink === v.nodeSelector))
    throw setup(
      `${where}: ${name} names the node selector '${String(v.nodeSelector)}'; known: ${SELECTOR_SPECS.map((s) => s.selectorLink).join(', ')}`,
    );
  if (typeof v.versionRetention !== 'number' || !Number.isInteger(v.versionRetention) || v.versionRetention < 1)
    throw setup(`${where}: ${name} needs a versionRetention of at least 1`);
  if (!isRecord(v.bodySchema)) throw setup(`${where}: ${name} needs a bodySchema (a typebox schema)`);
  for (const h of ['create', 'put', 'patch']) if (typeof v[h] !== 'function') throw setup(`${where}: ${name} needs a ${h} handler`);
  for (const h of ['delete', 'handleStart', 'handleMaintenance', 'runStage', 'expiration'])
    if (!fn(h)) throw setup(`${where}: ${name}.${h} must be a function`);
  if (v.singleton !== undefined) {
    const s = v.singleton as { id?: unknown; initial?: unknown };
    if (!isRecord(s) || typeof s.id !== 'string' || !isRecord(s.initial))
      throw setup(`${where}: ${name}.singleton needs an id and an initial state`);
  }
  return v as unknown as ServiceDefinition<JsonObject>;
}

/** Every definition the modules export, in module then export order. */
export async function loadServiceModules(files: readonly string[]): Promise<UserService[]> {
  const out: UserService[] = [];
  const seen = new Map<string, string>(BUILTIN_SERVICES.map((s) => [s.factoryLink, 'a built-in service']));
  for (const file of files) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (e) {
      throw setup(`cannot load --services module ${file}: ${(e as Error).message}`);
    }
    let found = 0;
    for (const [exportName, value] of Object.entries(mod)) {
      const items = Array.isArray(value) ? value : [value];
      for (const item of items) {
        if (!looksLikeDefinition(item)) continue;
        const def = checkDefinition(item, `${file} (export ${exportName})`);
        const link = serviceLinkOf(def);
        const holder = seen.get(link);
        // The same object exported twice (named and in a default array) is one service.
        if (out.includes(def)) continue;
        if (holder) throw setup(`${file}: ${link} is already defined by ${holder}`);
        seen.set(link, file);
        out.push(def);
        found++;
      }
    }
    if (found === 0) throw setup(`--services module ${file} exports no service definitions (see krypton/service, defineService)`);
  }
  return out;
}
