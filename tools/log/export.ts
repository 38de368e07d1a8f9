/**
 * `krypton log export`: the documents a host would serve, as JSON lines, for backups and
 * migrations — the latest state of each live document, or with --all-versions every version the
 * index holds (tombstones included, so a deletion survives the trip), optionally as of a seq or a
 * time. Each line is the stored state exactly, common fields and all; lines are ordered by link,
 * then version, so two exports of one log are byte-identical and diff cleanly.
 *
 * Documents whose latest version expired by the as-of time are left out, versions and all, as a
 * host purges them; the retention a host applies decides which older versions exist to export.
 */

import type { Link } from '../../lib/ids.js';
import { pointFlags } from './args.js';
import { reportEnd, type CommandContext } from './command.js';
import { plural } from './format.js';
import { startProgress } from './io.js';
import { totalBytes } from './open.js';
import { asOfMicros, replayIndex } from './replay.js';
import { documentStatus } from './tally.js';

export async function runExport(ctx: CommandContext): Promise<number> {
  const { args, log, io, out } = ctx;
  const point = pointFlags(args);
  const allVersions = args.booleans.has('all-versions');
  const to = await replayIndex(log, point, undefined, { progress: startProgress(io, 'export', totalBytes(log)) });
  const asOf = asOfMicros(point, to, io);

  const links: Link[] = [];
  for (const factory of to.factories) links.push(...to.index.linksUnder(factory));
  links.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let documents = 0;
  let versions = 0;
  for (const link of links) {
    const latest = to.index.latest(link);
    if (latest === undefined) continue;
    const status = documentStatus(latest, asOf);
    if (status === 'expired') continue;
    if (allVersions) {
      // versions() is oldest first, which is version order.
      const held = to.index.versions(link);
      for (const doc of held) out.line(JSON.stringify(doc));
      versions += held.length;
      documents++;
    } else if (status === 'live') {
      out.line(JSON.stringify(latest));
      versions++;
      documents++;
    }
  }
  const what = allVersions ? `${plural(versions, 'version')} of ${plural(documents, 'document')}` : `${plural(documents, 'live document')}`;
  out.note(`krypton log export: ${what}, as of seq ${to.seq}`);
  return reportEnd(ctx, to.read);
}
