/**
 * Keeps two hosts from opening the same sandbox folder: a LOCK file created exclusively, holding
 * the owner's pid. A lock left by a process that no longer exists (a host killed with SIGKILL)
 * is taken over, so a crashed host can always be restarted.
 */

import fs from 'node:fs/promises';
import { KryptonError } from '../../lib/errors.js';

export interface Lock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLock(file: string): Promise<Lock> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fs.open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return { release: () => fs.rm(file, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new KryptonError('INVALID_SETUP', `sandbox ${file.replace(/\/LOCK$/, '')} is in use by process ${pid}`);
      }
      if (pid === process.pid) {
        throw new KryptonError('INVALID_SETUP', `sandbox ${file.replace(/\/LOCK$/, '')} is already open in this process`);
      }
      await fs.rm(file, { force: true });
    }
  }
  throw new KryptonError('INVALID_SETUP', `could not lock ${file}`);
}
