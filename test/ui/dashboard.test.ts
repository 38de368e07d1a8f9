/**
 * The dashboard at /core/ui in a real browser (Debian's chromium, headless, driven by
 * playwright-core; tools/ui/setup.sh installs it, .ci/run calls that), against a 3-host group:
 * the test clicks through every view as a user would (group, live charts, a document's versions
 * and their diff, a query task and an OData filter, the process log, a live watch) and then signs
 * in on a host with authorization on. Each view's screenshot is saved under the test's temp
 * folder; with KRYPTON_UI_SCREENSHOTS=DIR they are also copied there (docs/screenshots holds the
 * README's). Skips, saying so, only when /usr/bin/chromium is absent.
 */

import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closeAll, startGroup, startHost, tempDir, type TestHost } from '../support/hosts.js';

const CHROMIUM = '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface Ctx {
  hosts: TestHost[];
  dir: { path: string; remove(): Promise<void> };
  browser: BrowserContext;
  page: Page;
}

const t = suite<Ctx>('dashboard');

t.before(async (ctx) => {
  if (!present) return;
  ctx.dir = await tempDir('krypton-ui-');
  ctx.hosts = await startGroup(3, (i) => ({ id: `ui-host-${i}` }));
  // A fresh profile each run; playwright takes the folder as the persistent context's user-data-dir.
  ctx.browser = await chromium.launchPersistentContext(path.join(ctx.dir.path, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  ctx.page = ctx.browser.pages()[0] ?? (await ctx.browser.newPage());
  ctx.page.setDefaultTimeout(10_000);
});

t.after(async (ctx) => {
  if (!present) return;
  await ctx.browser?.close();
  await closeAll(ctx.hosts);
  if (!process.env.KRYPTON_UI_KEEP) await ctx.dir?.remove();
});

async function shot(ctx: Ctx, name: string): Promise<void> {
  const file = path.join(ctx.dir.path, `${name}.png`);
  await ctx.page.screenshot({ path: file, fullPage: false });
  const out = process.env.KRYPTON_UI_SCREENSHOTS;
  if (out) {
    fs.mkdirSync(out, { recursive: true });
    fs.copyFileSync(file, path.join(out, `dashboard-${name}.png`));
  }
  assert.ok(fs.statSync(file).size > 1000, `${name}.png written`);
}

/** The cells of the first row matching `selector` whose first cell is `first`. */
async function rowCells(page: Page, selector: string, first: string): Promise<string[]> {
  for (const row of await page.locator(selector).all()) {
    const cells = await row.locator('td').allTextContents();
    if (cells[0] === first) return cells;
  }
  return [];
}

const skipped = () => {
  console.log(`  skipped: ${CHROMIUM} is absent (tools/ui/setup.sh installs Debian's chromium; .ci/run calls it)`);
};

t('group: every member, its status, the quorum and its share of the links', async (ctx) => {
  if (!present) return skipped();
  const [a] = ctx.hosts as [TestHost];
  // A user's documents first, so the other views have something to show.
  for (let i = 0; i < 6; i++)
    assert.is(
      (await a.client.post('/core/examples', { documentSelfLink: `/core/examples/ui-${i}`, name: `doc ${i}`, counter: i })).status,
      200,
    );
  for (let v = 1; v <= 3; v++)
    assert.is((await a.client.patch('/core/examples/ui-0', { counter: 10 * v, keyValues: { step: `s${v}` } })).status, 200);

  await ctx.page.goto(`${a.host.uri}/core/ui`);
  await ctx.page.locator('#group-members tr.member').nth(2).waitFor();
  assert.is(await ctx.page.locator('#group-members tr.member').count(), 3);
  assert.is(await ctx.page.locator('#group-members .status.AVAILABLE').count(), 3);
  await ctx.page.locator('#ready.ok').waitFor();
  // The sampled shares add up to the whole key space.
  await ctx.page.locator('#group-members .bar').nth(2).waitFor();
  const shares = await ctx.page.locator('#group-members tr.member td:last-child').allInnerTexts();
  assert.is(
    shares.reduce((n, s) => n + Number(/(\d+)%/.exec(s)?.[1] ?? 0), 0),
    100,
    shares.join(' / '),
  );
  await shot(ctx, 'group');
});

t('throughput and latency: live charts from the host’s own /metrics', async (ctx) => {
  if (!present) return skipped();
  const [a] = ctx.hosts as [TestHost];
  await ctx.page.click('#tab-metrics');
  await ctx.page.locator('#chart-throughput canvas').waitFor();
  // Traffic while the charts draw: a few seconds of writes.
  const end = Date.now() + 3000;
  for (let i = 0; Date.now() < end; i++) await a.client.post('/core/examples', { name: `load ${i}` });
  const answered = Number(await ctx.page.locator('#metrics-now span:nth-child(2)').textContent());
  assert.ok(answered > 20, `requests answered ${answered}`);
  assert.is(await ctx.page.locator('#chart-latency canvas').count(), 1);
  await shot(ctx, 'metrics');
});

t('documents: every version of a document and the diff between two', async (ctx) => {
  if (!present) return skipped();
  await ctx.page.click('#tab-documents');
  await ctx.page.locator('#document-links a', { hasText: /^ui-0$/ }).click();
  await ctx.page.locator('#versions tr.version').nth(3).waitFor();
  assert.is(await ctx.page.locator('#versions tr.version').count(), 4);
  // Versions 2 -> 3 by default: the counter and the keyValue changed.
  assert.equal(await rowCells(ctx.page, '#diff tbody tr', 'counter'), ['counter', '20', '30']);
  assert.equal(await rowCells(ctx.page, '#diff tbody tr', 'keyValues.step'), ['keyValues.step', '"s2"', '"s3"']);
  // Version 0 against the latest.
  await ctx.page.locator('#versions tr.version').nth(3).locator('input[name=a]').check();
  assert.match((await ctx.page.locator('#diff h2').textContent()) ?? '', /version 0 → 3/);
  assert.equal(await rowCells(ctx.page, '#diff tbody tr', 'counter'), ['counter', '0', '30']);
  await shot(ctx, 'documents');
});

t('query: a query task built from clauses, and an OData filter', async (ctx) => {
  if (!present) return skipped();
  await ctx.page.click('#tab-query');
  await ctx.page.locator('.clause .value').fill('doc *');
  assert.match((await ctx.page.locator('#query-spec').textContent()) ?? '', /"matchValue": "doc \*"/);
  await ctx.page.click('#run-query');
  await ctx.page.locator('#query-results tr.result').nth(5).waitFor();
  assert.is(await ctx.page.locator('#query-results tr.result').count(), 6);
  await ctx.page.locator('#odata-filter').fill("name eq 'doc 3'");
  await ctx.page.click('#run-odata');
  await ctx.page.locator('#query-results', { hasText: 'OData: status 200' }).waitFor();
  assert.is(await ctx.page.locator('#query-results tr.result').count(), 1);
  assert.match((await ctx.page.locator('#query-results tr.result').textContent()) ?? '', /ui-3/);
  await shot(ctx, 'query');
});

t('process log: the host’s latest lines, membership changes among them', async (ctx) => {
  if (!present) return skipped();
  await ctx.page.click('#tab-log');
  await ctx.page.locator('#log-lines tr').first().waitFor();
  await ctx.page.locator('#log-lines tr', { hasText: 'listening on' }).first().waitFor();
  await ctx.page.locator('#log-filter').fill('membership:');
  await ctx.page.locator('#log-lines tr', { hasText: 'joined' }).first().waitFor();
  await shot(ctx, 'log');
  await ctx.page.locator('#log-filter').fill('');
});

t('watch: a document’s updates arrive live over the event stream', async (ctx) => {
  if (!present) return skipped();
  const [, b] = ctx.hosts as [TestHost, TestHost];
  await ctx.page.click('#tab-watch');
  await ctx.page.locator('#watch-link').fill('/core/examples/ui-0');
  await ctx.page.click('#watch-start');
  await ctx.page.locator('#watch-state', { hasText: 'streaming' }).waitFor();
  // The current state first, then an update made through another host.
  await ctx.page.locator('#watch-events tr.event').first().waitFor();
  assert.is((await b.client.patch('/core/examples/ui-0', { counter: 99 })).status, 200);
  await ctx.page.locator('#watch-events tr.event', { hasText: '"counter":99' }).waitFor();
  const newest = await ctx.page.locator('#watch-events tr.event').first().locator('td').allTextContents();
  assert.equal(newest.slice(1, 3), ['update', '4']);
  await shot(ctx, 'watch');
});

t('with authorization on: the login form, then the dashboard with the token', async (ctx) => {
  if (!present) return skipped();
  const h = await startHost({ isAuthorizationEnabled: true, adminUser: 'admin@localhost', adminPassword: 'ui-secret' });
  try {
    await h.host.cluster.admin!.ready;
    await ctx.page.goto(`${h.host.uri}/core/ui/#group`);
    await ctx.page.locator('form.login').waitFor();
    await ctx.page.locator('input[name=password]').fill('wrong');
    await ctx.page.click('form.login button');
    await ctx.page.locator('form.login .error', { hasText: 'wrong password' }).waitFor();
    await shot(ctx, 'login');
    await ctx.page.locator('input[name=password]').fill('ui-secret');
    await ctx.page.click('form.login button');
    await ctx.page.locator('#group-members tr.member').first().waitFor();
    await ctx.page.click('#tab-log');
    await ctx.page.locator('#log-lines tr').first().waitFor();
  } finally {
    await h.close();
  }
});

t.run();
