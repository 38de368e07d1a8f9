/**
 * The host's Prometheus metrics (GET /metrics, docs/metrics.md lists every one): one prom-client
 * registry per host, so in-process hosts of a test each report their own. What the hot path
 * touches is here as ready instruments (a counter to increment, a histogram to observe) and costs
 * one label lookup per event; everything that is already counted somewhere (the log's, the
 * index's, the synchronizer's figures) is read at scrape time by collect callbacks that
 * server/http/metrics.ts registers, so it costs nothing between scrapes.
 */

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets in seconds: 100 µs to 10 s, wide enough for an fsync and a parked request alike. */
const SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Count buckets for batches: records per durable write, records per replication batch. */
const COUNTS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const BYTES = [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];

/** Told about every replication batch an owner sent (server/replication/replicator.ts); must not throw. */
export interface ReplicationObserver {
  /** `url`: the replica's replication endpoint. */
  batchSent(url: string, records: number, seconds: number, results: readonly { ok: boolean; code?: string }[]): void;
}

/** The instruments the running host updates as things happen. */
export class Metrics implements ReplicationObserver {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'krypton_http_requests_total',
    help: 'HTTP requests answered, by verb, factory (or route family) and status',
    labelNames: ['verb', 'factory', 'status'] as const,
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'krypton_http_request_duration_seconds',
    help: 'Time from a request arriving to its answer being written, by verb and factory',
    labelNames: ['verb', 'factory'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly logAppendSeconds = new Histogram({
    name: 'krypton_log_append_duration_seconds',
    help: 'Time from an append call to its records being durable (queueing, write and fsync)',
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly logFsyncSeconds = new Histogram({
    name: 'krypton_log_fsync_duration_seconds',
    help: 'Duration of one durable write of the log (writev on the O_DSYNC handle)',
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly logGroupCommitRecords = new Histogram({
    name: 'krypton_log_group_commit_records',
    help: 'Records made durable by one durable write (group commit size)',
    buckets: COUNTS,
    registers: [this.registry],
  });
  readonly logWriteBytes = new Histogram({
    name: 'krypton_log_write_bytes',
    help: 'Bytes of one durable write of the log',
    buckets: BYTES,
    registers: [this.registry],
  });
  readonly logSlowFsyncs = new Counter({
    name: 'krypton_log_slow_fsyncs_total',
    help: 'Durable writes slower than --fsyncWarningThresholdMs (each one is also logged as a warning)',
    registers: [this.registry],
  });
  readonly replicationBatchRecords = new Histogram({
    name: 'krypton_replication_batch_records',
    help: 'Records in one replication batch sent to a peer',
    labelNames: ['peer'] as const,
    buckets: COUNTS,
    registers: [this.registry],
  });
  readonly replicationBatchSeconds = new Histogram({
    name: 'krypton_replication_batch_duration_seconds',
    help: 'Round trip of one replication batch to a peer, until its answer (the replica fsynced it)',
    labelNames: ['peer'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly replicationFailures = new Counter({
    name: 'krypton_replication_failures_total',
    help: 'Records a peer did not apply, by peer and error code (PEER_UNAVAILABLE, STALE_EPOCH, ...)',
    labelNames: ['peer', 'code'] as const,
    registers: [this.registry],
  });
  readonly membershipChanges = new Counter({
    name: 'krypton_membership_changes_total',
    help: 'Membership changes this host saw in its node groups (a member joined, changed status or left), each also logged with its cause',
    registers: [this.registry],
  });

  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  constructor() {
    this.loopDelay.enable();
    this.processMetrics();
  }

  /** The log's durable writes (wal/log.ts observe): histograms, and a warning for each slow one. */
  logObserver(
    logger: Pick<Logger, 'warn'> | { warn(obj: object, msg: string): void },
    slowMs: number,
  ): (w: { records: number; bytes: number; seconds: number; appendSeconds: readonly number[] }) => void {
    return (w) => {
      this.logFsyncSeconds.observe(w.seconds);
      this.logGroupCommitRecords.observe(w.records);
      this.logWriteBytes.observe(w.bytes);
      for (const s of w.appendSeconds) this.logAppendSeconds.observe(s);
      if (w.seconds * 1000 >= slowMs) {
        this.logSlowFsyncs.inc();
        logger.warn(
          { durationMs: Math.round(w.seconds * 1000), thresholdMs: slowMs, records: w.records, bytes: w.bytes },
          `slow fsync: a durable write of the log took ${Math.round(w.seconds * 1000)} ms (over --fsyncWarningThresholdMs=${slowMs}); the disk is slow or overloaded`,
        );
      }
    };
  }

  /** One replication batch a channel sent (server/replication/replicator.ts ReplicationObserver). */
  batchSent(url: string, records: number, seconds: number, results: readonly { ok: boolean; code?: string }[]): void {
    const peer = this.peerLabel(url);
    this.replicationBatchRecords.observe({ peer }, records);
    this.replicationBatchSeconds.observe({ peer }, seconds);
    for (const r of results) if (!r.ok) this.replicationFailures.inc({ peer, code: r.code ?? 'UNKNOWN' });
  }

  private readonly peerLabels = new Map<string, string>();

  /** A peer's origin (`http://host:port`), the label its metrics carry, from any URL of it. */
  peerLabel(url: string): string {
    let label = this.peerLabels.get(url);
    if (label === undefined) {
      label = new URL(url).origin;
      this.peerLabels.set(url, label);
    }
    return label;
  }

  /** A gauge read at scrape time. */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** A gauge with labels read at scrape time: `read` returns one value per label set. */
  labelledGauge<L extends string>(name: string, help: string, labelNames: readonly L[], read: () => [Record<L, string>, number][]): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, v] of read()) this.set(labels as Partial<Record<L, string>>, v);
      },
    });
  }

  /** A counter whose running total is kept elsewhere (a stats object) and read at scrape time. */
  total(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  /** Prometheus' text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  stop(): void {
    this.loopDelay.disable();
  }

  /** The usual process_* and nodejs_* figures, read at scrape time (prom-client's own start timers we do not want per host). */
  private processMetrics(): void {
    const started = Date.now() / 1000 - process.uptime();
    this.total('process_cpu_user_seconds_total', 'User CPU time spent by the process, in seconds', () => process.cpuUsage().user / 1e6);
    this.total(
      'process_cpu_system_seconds_total',
      'System CPU time spent by the process, in seconds',
      () => process.cpuUsage().system / 1e6,
    );
    this.gauge('process_resident_memory_bytes', 'Resident memory size in bytes', () => process.memoryUsage.rss());
    this.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds', () => started);
    this.gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes', () => process.memoryUsage().heapUsed);
    this.gauge('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of event loop delay since the last scrape, in seconds', () => {
      const v = this.loopDelay.count > 0 ? this.loopDelay.percentile(99) / 1e9 : 0;
      this.loopDelay.reset();
      return v;
    });
  }
}
