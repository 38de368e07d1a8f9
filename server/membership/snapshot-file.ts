/**
 * The file one node group's membership snapshot lives in (`<sandbox>/<port>/node-groups/<name>.json`):
 * read back at start, rewritten atomically whenever the membership changes, with writes that
 * arrive while one is in progress coalesced into one, so a burst of changes costs two writes.
 */

import fs from 'fs-extra';
import type { Logger } from 'pino';
import { parseMembershipSnapshot, type MembershipSnapshot } from '../../lib/group/membership.js';

export class SnapshotFile {
  private writing: Promise<void> | undefined;
  private pending: MembershipSnapshot | undefined;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    private readonly group: string,
  ) {}

  /** The snapshot left in the sandbox, or undefined when there is none; a damaged one throws. */
  async read(): Promise<MembershipSnapshot | undefined> {
    if (!(await fs.pathExists(this.path))) return undefined;
    return parseMembershipSnapshot(await fs.readJson(this.path));
  }

  write(snapshot: MembershipSnapshot): void {
    this.pending = snapshot;
    if (this.writing) return;
    this.writing = (async () => {
      while (this.pending) {
        const s = this.pending;
        this.pending = undefined;
        try {
          const tmp = `${this.path}.tmp`;
          await fs.outputJson(tmp, s);
          await fs.rename(tmp, this.path);
        } catch (err) {
          this.logger.error({ group: this.group, err }, 'could not persist membership');
        }
      }
      this.writing = undefined;
    })();
  }

  /** Resolves once the writes asked for so far are on disk (or failed and were logged). */
  flushed(): Promise<void> | undefined {
    return this.writing;
  }
}
