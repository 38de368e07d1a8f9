/**
 * GET /metrics on a 3-host group, as an operator's Prometheus sees it: the text parses with a
 * strict parser, it serves exactly the metrics docs/metrics.md lists (types and labels too), and
 * each one moves when its event happens: client writes (requests, the log, forwarding,
 * replication, the index), the group forming and a host leaving (membership, synchronization,
 * takeovers, promises). The few whose events this group does not make are named with the test
 * that moves them or the reason none does.
 */

import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';
import { documentedMetrics, parsePrometheusText, metricValue, type Family } from '../support/prom-text.js';
import { waitFor } from '../support/wait.js';

const docs = documentedMetrics(readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8'));

/** Documented metrics this file does not move, and where they are moved or why they are not. */
const MOVED_ELSEWHERE: Record<string, string> = {
  krypton_parked_requests: 'test/server/health.test.ts parks a request on a host short of its quorum',
  krypton_log_slow_fsyncs_total: 'test/server/health.test.ts slows one fsync of an in-memory log',
  krypton_replication_failures_total: 'test/e2e/replication-metrics.test.ts pauses a replica (SIGSTOP) while a batch is in flight to it',
  krypton_replication_lag_records: 'test/e2e/replication-metrics.test.ts reads it while a batch waits on a paused replica',
  krypton_synch_adopted_total: 'needs a host holding an older copy than a peer (a restart after missed writes)',
  krypton_synch_pushed_total: 'test/server/synch.test.ts restarts a host that missed writes; its peers push them',
  krypton_synch_push_failures_total: 'needs a push to fail',
  krypton_synch_skipped_no_quorum_total: 'needs a pass with too few replicas answering',
  krypton_takeovers_deferred_total: 'needs a takeover short of promises',
  krypton_synch_handovers_total: 'test/server/synch.test.ts: old owners hand moved links over while the group settles',
  nodejs_eventloop_lag_p99_seconds: 'a gauge that can read 0 on an idle loop; read for presence',
  krypton_snapshots_total: 'test/server/snapshots.test.ts takes a snapshot and reads it on /metrics',
  krypton_snapshot_last_seq: 'test/server/snapshots.test.ts',
  krypton_snapshot_bytes: 'test/server/snapshots.test.ts',
  krypton_log_segments_removed_total: 'test/server/snapshots.test.ts',
  krypton_disk_bytes: 'test/server/snapshots.test.ts',
  krypton_disk_quota_bytes: 'test/server/snapshots.test.ts (a host with --maxDiskBytes)',
  krypton_lease_waits_total: 'needs an owner without a lease (test/e2e/lease.test.ts: a partitioned owner)',
  krypton_lease_refused_total: 'needs an owner without a lease by a read deadline (test/e2e/lease.test.ts answers 503 so)',
  krypton_lease_promise_wait_seconds_total: 'needs a takeover from an owner that went silent (a kill -9), not one that left',
};

const t = suite<{ hosts: TestHost[] }>('metrics');

t.before(async (ctx) => {
  ctx.hosts = await startGroup(3, (i) => ({ id: `m-${i}` }));
});

t.after(async ({ hosts }) => {
  await closeAll(hosts);
});

async function scrape(h: TestHost): Promise<Map<string, Family>> {
  const r = await h.client.get('/metrics');
  assert.is(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(r.text);
}

/** The host's process log (/core/management/process-log), parsed. */
async function processLog(h: TestHost): Promise<{ msg: string; host: string; cause?: string }[]> {
  const r = await h.client.get<{ items: string[] }>('/core/management/process-log');
  return r.body.items.map((l) => JSON.parse(l) as { msg: string; host: string; cause?: string });
}

const sum = (all: Map<string, Family>[], name: string, match: Record<string, string> = {}) =>
  all.reduce((n, f) => n + metricValue(f, name, match), 0);

t('GET /metrics serves exactly what docs/metrics.md lists, with help text, types and labels', async ({ hosts }) => {
  const families = await scrape(hosts[0]!);
  const served = [...families.keys()].sort();
  assert.equal(served, [...docs.keys()].sort(), 'served and documented metrics differ');
  for (const [name, d] of docs) {
    const f = families.get(name)!;
    assert.is(f.type, d.type, `${name} type`);
    assert.ok(f.help.length > 10, `${name} has help text`);
    assert.ok(/_total$/.test(name) === (d.type === 'counter'), `${name}: counters and only counters end in _total`);
  }
  // Labelled families show their labels once something happened; the group forming made peer traffic.
  for (const s of families.get('krypton_membership_members')!.samples) assert.equal(Object.keys(s.labels), ['status']);
});

t('each metric moves when its event happens', async ({ hosts }) => {
  const [a, , c] = hosts as [TestHost, TestHost, TestHost];
  const before = await Promise.all(hosts.map(scrape));
  const moved = new Set<string>();
  /** `after` is every host's scrape, or `[a's]` alone, compared with the same hosts' earlier scrapes. */
  const grew = (after: Map<string, Family>[], name: string, sample = name, match: Record<string, string> = {}) => {
    const was = sum(after.length === 1 ? before.slice(0, 1) : before, sample, match);
    const now = sum(after, sample, match);
    assert.ok(now > was, `${sample} ${JSON.stringify(match)} should grow: ${was} -> ${now}`);
    moved.add(name);
  };
  const positive = (after: Map<string, Family>[], name: string, match: Record<string, string> = {}) => {
    assert.ok(sum(after, name, match) > 0, `${name} ${JSON.stringify(match)} should be > 0`);
    moved.add(name);
  };

  // A user's writes through one host: named creates, so those another host owns are forwarded.
  const links = Array.from({ length: 24 }, (_, i) => `/core/examples/metrics-${i}`);
  const created = await Promise.all(links.map((l, i) => a.client.post('/core/examples', { documentSelfLink: l, name: `n${i}` })));
  for (const r of created) assert.is(r.status, 200, r.text);
  assert.is((await a.client.get(links[0]!)).status, 200);
  const missing = await a.client.get('/no/such/service');
  assert.is(missing.status, 404);
  assert.match(String((missing.body as { message: string }).message), new RegExp(`^Service not found: ${a.host.uri}/no/such/service$`));

  let after = await Promise.all(hosts.map(scrape));
  const aAfter = [after[0]!];
  grew(aAfter, 'krypton_http_requests_total', 'krypton_http_requests_total', { verb: 'POST', factory: '/core/examples', status: '200' });
  grew(aAfter, 'krypton_http_requests_total', 'krypton_http_requests_total', { verb: 'GET', factory: 'other', status: '404' });
  grew(aAfter, 'krypton_http_request_duration_seconds', 'krypton_http_request_duration_seconds_count', {
    verb: 'POST',
    factory: '/core/examples',
  });
  for (const h of [
    'krypton_log_append_duration_seconds',
    'krypton_log_fsync_duration_seconds',
    'krypton_log_group_commit_records',
    'krypton_log_write_bytes',
  ])
    grew(after, h, `${h}_count`);
  grew(after, 'krypton_log_bytes');
  grew(after, 'krypton_log_last_seq');
  grew(after, 'krypton_log_appends_total');
  grew(after, 'krypton_log_fsyncs_total');
  positive(after, 'krypton_log_segments');
  grew(after, 'krypton_index_links');
  grew(after, 'krypton_index_versions');
  grew(aAfter, 'krypton_forwarded_requests_total');
  grew(aAfter, 'krypton_forward_batches_total');
  grew(after, 'krypton_replication_batches_total');
  grew(after, 'krypton_replication_records_total');
  grew(after, 'krypton_replication_batch_records', 'krypton_replication_batch_records_count');
  grew(after, 'krypton_replication_batch_duration_seconds', 'krypton_replication_batch_duration_seconds_count');
  grew(after, 'krypton_peer_requests_total');
  grew(after, 'krypton_peer_sent_bytes_total');
  grew(after, 'krypton_peer_received_bytes_total');
  grew(aAfter, 'process_cpu_user_seconds_total');
  positive(aAfter, 'process_cpu_system_seconds_total');
  positive(aAfter, 'process_resident_memory_bytes');
  positive(aAfter, 'process_start_time_seconds');
  positive(aAfter, 'nodejs_heap_size_used_bytes');
  // The group formed before the first scrape: three members AVAILABLE, changes seen, available.
  assert.is(metricValue(after[0]!, 'krypton_membership_members', { status: 'AVAILABLE' }), 3);
  moved.add('krypton_membership_members');
  positive(aAfter, 'krypton_membership_changes_total');
  positive(aAfter, 'krypton_membership_available');
  positive(aAfter, 'krypton_membership_quorum');
  positive(aAfter, 'krypton_lease_renewals_total');

  // One host leaves: the others see it go, synchronize, and take over the links it owned.
  await c.close();
  hosts.pop();
  before.pop();
  const passesBefore = sum(before, 'krypton_synch_passes_total');
  after = await waitFor(
    'the remaining hosts to take over the links of the one that left',
    async () => {
      const now = await Promise.all(hosts.map(scrape));
      const done = ['krypton_takeovers_total', 'krypton_promises_granted_total', 'krypton_peer_request_failures_total'];
      return done.every((n) => sum(now, n) > 0) && sum(now, 'krypton_synch_passes_total') > passesBefore ? now : undefined;
    },
    30_000,
  );
  grew(after, 'krypton_takeovers_total');
  grew(after, 'krypton_promises_granted_total');
  grew(after, 'krypton_synch_passes_total');
  grew(after, 'krypton_synch_links_checked_total');
  grew(after, 'krypton_membership_changes_total');
  // Gossip to the host that left finds nobody there, nor do lease renewals.
  grew(after, 'krypton_peer_request_failures_total');
  grew(after, 'krypton_lease_renewal_failures_total');
  assert.is(metricValue(after[0]!, 'krypton_membership_members', { status: 'UNAVAILABLE' }), 1);

  // A write that asks for more copies than the members that are left can make fails with 500:
  // counted, and logged once, with its cause, by the host where it failed (its owner).
  const failed = await a.client.send('PATCH', links[1]!, { counter: 1 }, { 'x-xenon-rpl-quorum': '3' });
  assert.is(failed.status, 500, failed.text);
  const owner = hosts.find((h) => h.host.id === (created[1]!.body as { documentOwner: string }).documentOwner)!;
  const lines = await Promise.all(hosts.map(processLog));
  const failures = lines
    .flat()
    .filter((l) => l.msg.startsWith('request failed with 500') || l.msg.startsWith('forwarded request failed with 500'));
  assert.is(failures.length, 1, JSON.stringify(failures));
  assert.is(failures[0]!.host, owner.host.id);
  assert.match(failures[0]!.msg, /REPLICATION_FAILED: .*failed\. Success: \d+, +Fail: 1, quorum: 3/, failures[0]!.msg);
  // The host that left appears once in each remaining host's log as a membership change.
  for (const l of lines) {
    const left = l.filter((e) => e.msg === 'membership: m-2 AVAILABLE -> UNAVAILABLE');
    assert.is(left.length, 1, JSON.stringify(l.filter((e) => e.msg.startsWith('membership:'))));
    assert.ok(left[0]!.cause, 'the change names its cause');
  }
  moved.add('krypton_http_requests_total');

  const unmoved = [...docs.keys()].filter((n) => !moved.has(n) && !(n in MOVED_ELSEWHERE));
  assert.equal(unmoved, [], 'documented metrics no test moves');
  for (const n of Object.keys(MOVED_ELSEWHERE)) assert.ok(docs.has(n), `${n} is not documented any more`);
});

t.run();
