/**
 * The layout check (tools/check/layout.ts) on small in-memory trees: each rule finds a file that
 * breaks it and passes one that keeps it, exceptions silence exactly their entry and are reported
 * once nothing needs them, and the tracked tree itself passes.
 */

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkLayout,
  type Exceptions,
  formatReport,
  importsOf,
  lineCount,
  SERVER_ROOMS,
  type SourceFile,
  trackedFiles,
} from '../tools/check/layout.js';

const NONE: Exceptions = { imports: [], oversized: [], forbiddenTextReportOnly: false };

const file = (p: string, text: string): SourceFile => ({ path: p, text });
const failuresOf = (files: SourceFile[], exceptions = NONE) =>
  checkLayout(files, exceptions).failures.map((v) => `${v.rule} ${v.file}:${v.line}`);

test('importsOf: static, type-only, re-exports, multi-line and dynamic imports; not comments or import.meta', () => {
  const refs = importsOf(
    [
      "import fs from 'node:fs';",
      "import type { A } from './a.js';",
      'import {',
      '  b,',
      '  type C,',
      "} from '../b.js';",
      "export * from './c.js';",
      "export { d } from './d.js';",
      "import './side-effect.js';",
      "// import { x } from './commented.js';",
      "/* import('./block.js') */",
      "const m = await import('./dynamic.js');",
      "type T = import('./type-position.js').T;",
      'const here = import.meta.url;',
      "const s = 'from here';",
    ].join('\n'),
  );
  assert.equal(
    refs.map((r) => `${r.line} ${r.specifier}`),
    ['1 node:fs', '2 ./a.js', '3 ../b.js', '7 ./c.js', '8 ./d.js', '9 ./side-effect.js', '12 ./dynamic.js', '13 ./type-position.js'],
  );
});

test('layers: lib imports only lib, wal only lib and wal, index only lib and index, server not tools', () => {
  const files = [
    file('lib/a.ts', "import { b } from './b.js';\nimport type { C } from './group/c.js';"),
    file('lib/bad.ts', "import { log } from '../wal/log.js';"),
    file('wal/ok.ts', "import { a } from '../lib/a.js';\nimport { r } from './record.js';"),
    file('wal/bad.ts', "import type { Q } from '../index/query.js';"),
    file('index/ok.ts', "import { a } from '../lib/a.js';"),
    file('index/bad.ts', "\n\nimport { w } from '../wal/log.js';"),
    file('server/base/ok.ts', "import { w } from '../../wal/log.js';\nimport { q } from '../../index/query.js';"),
    file('server/base/bad.ts', "import { krypton } from '../../tools/krypton.js';"),
    file('tools/any.ts', "import { h } from '../server/host/host.js';\nimport { s } from '../test/support/http.js';"),
    file('test/any.ts', "import { t } from '../tools/krypton.js';"),
  ];
  assert.equal(failuresOf(files), ['layer lib/bad.ts:1', 'layer wal/bad.ts:1', 'layer index/bad.ts:3', 'layer server/base/bad.ts:1']);
});

test('layers: the client imports lib and itself, never the host; examples import only themselves', () => {
  const files = [
    file(
      'client/ok.ts',
      "import { ownerOf } from '../lib/group/selector.js';\nimport { t } from './transport.js';\nimport { Pool } from 'undici';",
    ),
    file('client/bad.ts', "import { Host } from '../server/host/host.js';"),
    file('examples/notes/src/ok.ts', "import { KryptonClient } from 'krypton/client';\nimport { notes } from './services.js';"),
    file('examples/notes/src/bad.ts', "import { fnv64 } from '../../../lib/hash.js';"),
  ];
  assert.equal(failuresOf(files), ['layer client/bad.ts:1', 'layer examples/notes/src/bad.ts:1']);
});

test('lib purity: no I/O modules, clock, randomness or timers in code; comments and injected clocks are fine', () => {
  const files = [
    file('lib/io.ts', "import fs from 'node:fs/promises';\nimport Koa from 'koa';\nimport { request } from 'undici';"),
    file('lib/calls.ts', 'const t = Date.now();\nconst r = Math.random();\nsetTimeout(() => {}, 1);\nsetInterval(f, 5);'),
    file(
      'lib/fine.ts',
      '// Date.now() would break replay, so the clock is a parameter\nconst t = clock.nowMicros();\nconst s = deps.setTimeout(f, 1);',
    ),
    file('wal/io.ts', "import fs from 'node:fs';\nconst t = Date.now();"),
  ];
  assert.equal(failuresOf(files), [
    'lib-purity lib/io.ts:1',
    'lib-purity lib/io.ts:2',
    'lib-purity lib/io.ts:3',
    'lib-purity lib/calls.ts:1',
    'lib-purity lib/calls.ts:2',
    'lib-purity lib/calls.ts:3',
    'lib-purity lib/calls.ts:4',
  ]);
});

test('rooms: a room imports itself and earlier rooms, never a later one (type-only and dynamic imports too)', () => {
  assert.equal(SERVER_ROOMS[0], 'base');
  assert.equal(SERVER_ROOMS.at(-1), 'host');
  const files = [
    file(
      'server/http/app.ts',
      "import { c } from '../base/clock.js';\nimport { d } from './endpoint.js';\nimport type { H } from '../documents/documents.js';",
    ),
    file('server/host/host.ts', "import { app } from '../http/app.js';\nimport { g } from '../membership/groups.js';"),
    file('server/documents/documents.ts', "import type { Replicator } from '../replication/replicator.js';"),
    file('server/base/config.ts', "const m = await import('../http/app.js');"),
    file('server/net/peers.ts', "import { x } from '../nowhere/x.js';"),
    file('server/loose.ts', "import { c } from './base/clock.js';"),
  ];
  assert.equal(failuresOf(files), [
    'room server/documents/documents.ts:1',
    'room server/base/config.ts:1',
    'room server/net/peers.ts:1',
    'room server/loose.ts:1',
  ]);
  const report = formatReport(checkLayout(files, NONE), files.length);
  assert.match(report, 'server/documents/documents.ts:1  imports server/replication/replicator.ts: documents/ comes before replication/');
  assert.match(report, ' 1. base');
  assert.match(report, '12. host');
});

test('exceptions: an excepted import passes, its unexcepted neighbour fails, and an unneeded entry is reported', () => {
  const files = [
    file(
      'server/documents/documents.ts',
      "import type { R } from '../replication/replicator.js';\nimport { s } from '../synch/synchronizer.js';",
    ),
  ];
  const exceptions: Exceptions = {
    ...NONE,
    imports: [
      { from: 'server/documents/documents.ts', to: 'server/replication/replicator.ts', why: 'test' },
      { from: 'server/documents/changes.ts', to: 'server/http/app.ts', why: 'fixed already' },
    ],
  };
  const r = checkLayout(files, exceptions);
  assert.equal(
    r.failures.map((v) => v.message),
    ['imports server/synch/synchronizer.ts: documents/ comes before synch/, so may not import it'],
  );
  assert.equal(r.unusedExceptions, ['import server/documents/changes.ts -> server/http/app.ts']);
});

test('file size: server/ files stay within 400 lines unless excepted; other folders are not limited', () => {
  const lines = (n: number) => 'x;\n'.repeat(n);
  assert.is(lineCount(lines(400)), 400);
  assert.is(lineCount('a\nb'), 2);
  assert.is(lineCount(''), 0);
  const files = [
    file('server/base/ok.ts', lines(400)),
    file('server/base/big.ts', lines(401)),
    file('server/synch/excepted.ts', lines(900)),
    file('tools/bench/long.ts', lines(900)),
  ];
  const exceptions: Exceptions = {
    ...NONE,
    oversized: [
      { file: 'server/synch/excepted.ts', why: 'test' },
      { file: 'server/host/split-already.ts', why: 'test' },
    ],
  };
  const r = checkLayout(files, exceptions);
  assert.equal(
    r.failures.map((v) => `${v.file} ${v.message}`),
    ['server/base/big.ts 401 lines; server/ files stay within 400'],
  );
  assert.equal(r.unusedExceptions, ['oversized server/host/split-already.ts']);
});

test('forbidden text: found in any tracked file but package-lock.json; report-only turns failures into notices', () => {
  const sibling = '..' + '/shared';
  const section = 'reference' + ' §';
  const files = [
    file('README.md', `intro\nsee ${sibling}/spec.md\n`),
    file('lib/a.ts', `/** Owner selection (${section}5). */\nexport const a = 1;\n`),
    file('package-lock.json', `"resolved": "${sibling}"`),
    file('docs/clean.md', 'nothing here'),
  ];
  assert.equal(failuresOf(files), ['forbidden-text README.md:2', 'forbidden-text lib/a.ts:1']);
  const r = checkLayout(files, { ...NONE, forbiddenTextReportOnly: true });
  assert.equal(r.failures, []);
  assert.equal(
    r.notices.map((v) => v.file),
    ['README.md', 'lib/a.ts'],
  );
  assert.match(formatReport(r, files.length), 'layout: ok');
});

test('the tracked tree passes (with the temporary exceptions)', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const files = trackedFiles(root);
  assert.ok(files.length > 100);
  const r = checkLayout(files);
  assert.equal(r.failures, [], formatReport(r, files.length));
});

test.run();
