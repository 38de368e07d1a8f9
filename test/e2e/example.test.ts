/**
 * The example project (examples/notes) as a user builds and runs it: `npm install` (offline: its
 * one dependency is krypton, linked by path), `npm run build`, then a real `krypton host` with
 * `--services=./dist/services.js` and the example's program against it, which checks every
 * answer and exits 0 only when all are right. Prints what the install and build cost.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../support/hosts.js';
import { startHostProcess } from '../support/process.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE = path.join(ROOT, 'examples/notes');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('examples/notes installs, builds and runs its checks against a host that loads its services', async () => {
  const t0 = performance.now();
  await run(NPM, ['install', '--no-audit', '--no-fund', '--offline'], { cwd: EXAMPLE });
  const t1 = performance.now();
  await run(NPM, ['run', 'build'], { cwd: EXAMPLE });
  const t2 = performance.now();
  process.stdout.write(`  example: npm install ${Math.round(t1 - t0)} ms, build ${Math.round(t2 - t1)} ms\n`);

  // The package's three entry points resolve from the project, each with its types.
  const { stdout: entries } = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "const [h, c, s] = await Promise.all([import('krypton'), import('krypton/client'), import('krypton/service')]); console.log(typeof h.Host.start, typeof c.KryptonClient, typeof s.defineService, typeof s.withEffects);",
    ],
    { cwd: EXAMPLE },
  );
  assert.is(entries.trim(), 'function function function function');
  for (const types of ['dist/server/host/api.d.ts', 'dist/client/index.d.ts', 'dist/lib/service-api.d.ts']) {
    assert.ok(
      await fs.stat(path.join(ROOT, types)).then(
        () => true,
        () => false,
      ),
      `${types} is built`,
    );
  }

  const sandbox = await tempDir();
  const host = await startHostProcess(['--port=0', `--sandbox=${sandbox.path}`, `--services=${path.join(EXAMPLE, 'dist/services.js')}`]);
  try {
    const { stdout } = await run(process.execPath, [path.join(EXAMPLE, 'dist/main.js'), host.url], { cwd: EXAMPLE });
    assert.match(stdout, /the watch saw versions 0,1,2,3/);
    assert.match(stdout, /the stateless search service answers/);
    assert.match(stdout, /counted 2 added tags/);
    assert.match(stdout, /all checks passed/);
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    assert.unreachable(`the example failed:\n${err.stdout ?? ''}${err.stderr ?? String(e)}\nhost:\n${host.output()}`);
  } finally {
    await host.kill('SIGTERM');
    await sandbox.remove();
  }
});

test.run();
