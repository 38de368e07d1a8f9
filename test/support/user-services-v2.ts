/**
 * The same module as user-services.ts with one service defined differently (the notes keep
 * fewer versions): a host loading it must not share a group with hosts loading the first.
 */

import { defineService } from '../../lib/service-api.js';
import { notes as first, type Note } from './user-services.js';

export { audit, counters, stats } from './user-services.js';

export const notes = defineService<Note>({ ...first, versionRetention: 50 });
