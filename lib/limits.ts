/**
 * Every bound Krypton enforces, in one place, each named with its unit last. Going over one is a
 * KryptonError with code LIMIT_EXCEEDED (or BODY_TOO_LARGE for bodies), never a hang or a crash.
 */

export const limits = {
  /** Largest request body accepted on any route. Xenon's default is larger; 1 MiB keeps one write well under a segment. */
  bodyBytesMax: 1024 * 1024,
  /**
   * Deepest nesting of arrays and objects a JSON body may have. JSON.parse takes any depth, but
   * the recursive code after it (JSON.stringify on a forwarding hop, msgpack in the log) runs out
   * of stack at a few thousand levels; no document needs more than a few dozen.
   */
  bodyDepthMax: 256,
  /** A log segment is closed and a new one started once it passes this size. */
  segmentBytesMax: 64 * 1024 * 1024,
  /** After a graceful stop, `krypton host` exits this long later even if a timer or socket is still open (it names them). */
  stoppedExitGraceMs: 2000,
  /** Snapshots are written and read this many bytes at a time (wal/snapshot.ts). */
  snapshotChunkBytes: 1024 * 1024,
  /**
   * A host writes a snapshot once this many records were appended since its last one (flag
   * --snapshotEveryRecords); the log segments the older kept snapshot covers are then removed.
   */
  snapshotEveryRecordsDefault: 200_000,
  /** Snapshots kept (flag --snapshotsKept): the newest, and older ones to fall back on if it is damaged. */
  snapshotsKeptDefault: 2,
  /** How often a host checks whether a snapshot is due (and, with a disk quota, the disk use). */
  snapshotCheckIntervalMs: 1000,
  /** After a failed snapshot the next waits twice as long as the last, up to this. */
  snapshotRetryMaxMs: 5 * 60_000,
  /**
   * Zeros the log writes ahead of its appends, a stretch at a time (wal/file.ts): an append into
   * space the file already has makes its durable write touch the data alone, not the file's size.
   */
  logPreallocateBytes: 8 * 1024 * 1024,
  /** Largest single log record (framing included); a larger one is refused before it reaches the disk. */
  recordBytesMax: 2 * 1024 * 1024,
  /** Records one group commit may take into a single write + fdatasync. */
  batchRecordsMax: 4096,
  /** Bytes one group commit may take into a single write + fdatasync. */
  batchBytesMax: 8 * 1024 * 1024,
  /**
   * Candidate ids an entry host tries when it generates a POSTed document's id, looking for one
   * it owns itself (no forwarding hop); after this many it keeps the last and forwards it.
   */
  localIdTriesMax: 64,
  /**
   * Times an owner's write waits for its link's synchronization and queues again because a write
   * ahead of it left the link in doubt (server/documents/documents.ts ownerWrite); then 503.
   */
  ownerWriteSynchRoundsMax: 4,
  /** Appends waiting for the disk before new ones are refused. */
  pendingAppendsMax: 100_000,
  /** Updates queued behind one document before new ones get 503 (Xenon: 10 000). */
  documentQueueMax: 10_000,
  /** Requests parked while the group is unavailable (Xenon: 10 000). */
  pendingRequestsMax: 10_000,
  /** How long an operation may wait before it fails with 408 (Xenon: 60 s). */
  operationTimeoutMicros: 60_000_000,
  /** Versions the index keeps per link when a service names none (Xenon: 1000). */
  versionRetentionDefault: 1000,
  /** Xenon never keeps fewer versions than this, whatever a service asks. */
  versionRetentionFloor: 20,
  /** Page size when a query gives no resultLimit. */
  queryResultLimitDefault: 2147483647,
  /** Non-direct query tasks kept for polling at once. */
  queryTasksMax: 10_000,
  /** How long a non-direct query task and its pages live (Xenon: 600 s). */
  queryTaskExpirationMicros: 600_000_000,
  /** Deepest nesting of boolean clauses a query may have. */
  queryClauseDepthMax: 32,
  /** Most clauses (terms and booleans together) one query may have. */
  queryClausesMax: 1024,
  /** Longest OData `$filter` expression, in characters. */
  odataFilterCharsMax: 4096,
  /**
   * Deepest nesting of parentheses and `not` in a `$filter`. Each level becomes at most two
   * levels of boolean clauses, so this keeps the query under queryClauseDepthMax.
   */
  odataFilterDepthMax: 12,
  /** Largest OData `$top` or `$limit`. */
  odataTopMax: 100_000,
  /** Largest OData `$skip` (and query `offset`). */
  odataSkipMax: 1_000_000,
  /** Most keys one OData `$orderby` may list. */
  odataOrderByKeysMax: 8,
  /** Hosts one query across hosts (BROADCAST, or a factory not replicated everywhere) asks at most. */
  queryFanOutMax: 64,
  /** How long the entry host of a query across hosts waits for each host's part. */
  queryGatherTimeoutMicros: 10_000_000,
  /** Hits one host may contribute to a query across hosts; a larger answer fails the query (503). */
  queryGatherHitsMax: 1_000_000,
  /** Bytes of one host's answer to a query across hosts. */
  queryGatherBytesMax: 256 * 1024 * 1024,
  /** How often a task with expectedResultCount runs its query again while too few documents match. */
  queryExpectedResultPollMicros: 250_000,
  /** Longest a task waits for expectedResultCount matches (its own expiration may end it sooner); then 408, or FAILED. */
  queryExpectedResultWaitMaxMicros: 600_000_000,
  /** Continuous query tasks one host runs at once. */
  continuousQueryTasksMax: 1000,
  /** Notifications a continuous query task keeps for streams resuming with Last-Event-ID. */
  continuousQueryEventsKept: 10_000,
  /** Callback subscribers (and, separately, event streams) of one continuous query task. */
  continuousQuerySubscribersMax: 100,
  /** Notifications queued for one callback subscriber before it is dropped as too slow. */
  continuousQueryQueueMax: 10_000,
  /** Tries of one notification to a callback before the subscriber is dropped. */
  continuousQueryDeliveryTriesMax: 3,
  /** Deadline of one notification to a callback. */
  continuousQueryDeliveryTimeoutMicros: 10_000_000,
  /** Characters of a page link's token (the query, its time and offset, compressed); a larger query cannot be paged. */
  queryPageTokenCharsMax: 8192,
  /** Links whose request counters (`<link>/stats`) a host keeps at once; the oldest is dropped past this. */
  serviceStatsLinksMax: 100_000,
  /** Longest document id accepted in a self link. */
  documentIdCharsMax: 1024,
  /** How often the index purges expired documents (Xenon: 5 x 1 s). */
  expiryIntervalMicros: 5_000_000,
  /**
   * Deadline of one membership probe (a gossip PATCH), far below the long peer request timeout: a
   * paused or partitioned host accepts connections and never answers, and only this tells it apart.
   */
  membershipProbeTimeoutMicros: 500_000,
  /**
   * Probe deadlines missed in a row (each probe sent after the previous miss) that mark a peer
   * UNAVAILABLE: 2 x 500 ms lets a pause of up to about a second (a garbage collection) pass
   * without a mark, and still marks a silent host within 1-2 s, ticks being 1 s apart.
   */
  membershipProbeMissesMax: 2,
  /** Deadline of the notice a stopping host sends each peer: a dead peer must not hold up the stop. */
  membershipLeaveTimeoutMicros: 500_000,
  /** Records one replication request to a peer may carry. */
  replicationBatchRecordsMax: 1024,
  /** Bytes one replication request may carry (also the replication endpoint's body limit). */
  replicationBatchBytesMax: 8 * 1024 * 1024,
  /** Records queued for one peer before further ones count as failures for that peer. */
  replicationQueueRecordsMax: 100_000,
  /** Request URLs whose parsed origin and path a host's peer client keeps; the cache starts over when full. */
  peerUrlsCachedMax: 1024,
  /** Requests one batch forwarded to an owner may carry. */
  forwardBatchItemsMax: 1024,
  /** Bytes one batch forwarded to an owner may carry (also the forwarding endpoint's body limit). */
  forwardBatchBytesMax: 8 * 1024 * 1024,
  /** Forwarded batches in flight to one owner at once; requests arriving meanwhile go in the next batch. */
  forwardBatchesInFlightMax: 2,
  /** Requests waiting to be forwarded to one owner before new ones get 503. */
  forwardQueueMax: 10_000,
  /**
   * Request ids (a forwarded write's, or a client's Idempotency-Key) an owner remembers per link,
   * with their outcome, so a retry is answered with it instead of applied again (lib/dedup.ts);
   * past it the oldest id of the link is forgotten.
   */
  dedupIdsPerLinkMax: 64,
  /**
   * Ids a link keeps past dedupIdsPerLinkMax while they are younger than dedupRetryHorizonMicros:
   * a hot link still recognizes every retry its entry hosts may send; past it a retry of an id not
   * found is answered "outcome unknown".
   */
  dedupIdsPerLinkHardMax: 4096,
  /** Longer than the default operation timeout, within which an entry host retries a forward, with room for clock skew. */
  dedupRetryHorizonMicros: 70_000_000,
  /** Ids an owner remembers over all links; past it the links written least recently are forgotten. */
  dedupIdsMax: 200_000,
  /** Links whose request ids an owner remembers at once; past it the link written least recently is forgotten. */
  dedupLinksMax: 100_000,
  /**
   * How long an owner remembers a request id after the write it made: longer than the operation
   * timeout, so every retry an entry host sends within its deadline is recognized, and long
   * enough for a client's own retries with the same key.
   */
  dedupWindowMicros: 300_000_000,
  /** "Outcome unknown" marks (writes logged but short of their quorum) an owner keeps on disk at once; the oldest go first. */
  dedupUnconfirmedMax: 100_000,
  /** Size past which the file of those marks is rewritten with the ones still inside the dedup window. */
  unconfirmedFileBytesMax: 4 * 1024 * 1024,
  /** Longest Idempotency-Key (and forwarded request id) accepted. */
  requestIdCharsMax: 128,
  /** Heads one synchronization page carries. */
  synchHeadsPageLinksMax: 10_000,
  /** Links whose full states one synchronization fetch may ask for. */
  synchPageLinksMax: 1000,
  /** Links synchronized at once during a pass (their pushes travel in batches of up to replicationBatchRecordsMax). */
  synchConcurrencyMax: 2048,
  /** Links one promise request (a takeover's prepare phase) may name; the page size of that request. */
  synchPromiseLinksMax: 1000,
  /** Links one history listing request (kind `versions`) may name. */
  synchHistoryLinksMax: 1000,
  /** Version marks one history listing answer carries; links past it are left for the asker's next request. */
  synchHistoryMarksMax: 50_000,
  /** Versions one history request (kind `records` or `insert`) carries; its JSON is also kept under half of bodyBytesMax. */
  synchHistoryRecordsMax: 1000,
  /** Records one page of a restore into a running group carries (POST /core/management/restore; its body within bodyBytesMax). */
  restorePageRecordsMax: 1000,
  /** Times one prepare round asks again with a higher epoch after replicas refused, before deferring the link. */
  takeoverProposalsMax: 3,
  /** First wait before deferred takeovers are tried again; doubles per failed retry. */
  synchRetryDelayMinMicros: 500_000,
  /** Longest wait between retries of deferred takeovers. */
  synchRetryDelayMaxMicros: 30_000_000,
  /** Links an owner remembers to synchronize again because a replica refused its write for its epoch; past it every link is synchronized again (a new generation). */
  synchRecheckLinksMax: 100_000,
  /**
   * Membership views an owner remembers since its last complete synchronization pass, to tell which
   * links it owned throughout (lib/group/availability.ts); past it the oldest is forgotten and the
   * links trusted since then are synchronized again before they are served.
   */
  availabilityViewsMax: 64,
  /** Promises one host keeps as a replica (one per link until a takeover spends it); past it new promise requests get 503. */
  promisesHeldMax: 1_000_000,
  /** Size past which the promise file is rewritten with only the promises still outstanding. */
  promiseFileBytesMax: 4 * 1024 * 1024,
  /** How often an owner renews its lease with each peer (docs/architecture.md, "Owner lease"). */
  leaseRenewIntervalMicros: 125_000,
  /** How long a grant lets an owner serve its links from its own copy, from the renewal's send time. */
  leaseDurationMicros: 500_000,
  /** Bound on the difference of two hosts' clock rates the lease is safe under (1 %). */
  leaseDriftRatio: 0.01,
  /** Added to a grantor's wait for the time an answer spends on the wire and in queues. */
  leaseMarginMicros: 50_000,
  /** A renewal answer later than this is not counted (its grant would be nearly spent anyway). */
  leaseRenewTimeoutMs: 1000,
  /** Promises a grantor remembers to report to lease holders; past it a holder that fell behind distrusts every link. */
  leasePromisesKeptMax: 65_536,
  /** Links one renewal answer lists as promised elsewhere; more is reported as `all`. */
  leaseReportLinksMax: 1024,
  /** Distinct view pairs a grantor keeps per holder; past it the oldest is folded into a grant covering every link. */
  leaseViewsPerHolderMax: 8,
  /** Members one renewal's view may name. */
  leaseViewNodesMax: 1024,
  /**
   * Longest a replica waits for other owners' grants to end before it answers a promise request;
   * past it the promise is refused. A grant that is not renewed ends within about 0.56 s: one
   * still binding after this is being renewed by a holder that still takes itself for the owner.
   */
  leaseWaitMicrosMax: 900_000,
  /** How often that wait looks again: a holder renewing under a new view ends its old grants early. */
  leaseWaitPollMicros: 50_000,
  /** How long a linearizable query (READ_AFTER_WRITE_CONSISTENCY with OWNER_SELECTION) asks again while an owner cannot answer yet; then 503. */
  linearizableQueryWaitMicros: 5_000_000,
  /** First and longest pause between those rounds. */
  linearizableQueryRetryMinMs: 20,
  linearizableQueryRetryMaxMs: 500,
  /** Lines `/core/management/process-log` keeps in memory. */
  processLogLinesMax: 1000,
  /** Task steps one drive runs before yielding to the next maintenance round (a runaway task cannot spin forever). */
  taskStepsPerDriveMax: 10_000,
  /** Wait before a task whose stage failed runs again: one maintenance round, doubling per failure in a row... */
  taskRetryMinMicros: 1_000_000,
  /** ...up to a minute. */
  taskRetryMaxMicros: 60_000_000,
  /** Failing tasks whose next try a host keeps track of; past it the longest-known one is forgotten (and retried at once). */
  taskRetriesTrackedMax: 100_000,
  /** Longest a direct-task POST is held open waiting for its task to end. */
  directTaskHoldMaxMicros: 600_000_000,
  /** Open watches (callback subscriptions and event streams) one host serves. */
  watchesMax: 10_000,
  /** Notifications queued for one watch before it is dropped as too slow. */
  watchQueueMax: 10_000,
  /** Attempts to deliver one callback notification before the subscription is removed. */
  notificationAttemptsMax: 5,
  /** How long a connection to the HTTPS port may stay silent before its first byte, which says TLS or plain HTTP. */
  firstByteTimeoutMicros: 10_000_000,
  /** How long a login token lives unless the LOGIN asks for less or more (Xenon: 1 h). */
  authTokenLifetimeMicros: 3_600_000_000,
  /** Longest session a LOGIN may ask for with `sessionExpirationSeconds` (7 days). */
  authSessionSecondsMax: 7 * 24 * 3600,
  /** How long a host waits for a token's owner when the token is not in its own index yet. */
  authTokenLookupTimeoutMicros: 2_000_000,
  /** Longest password accepted on login or in a credentials write (scrypt reads all of it). */
  passwordCharsMax: 1024,
  /**
   * scrypt runs at once on libuv's thread pool, which the log's fsyncs share: a burst of logins
   * must not hold every thread while writes wait for the disk.
   */
  passwordHashesConcurrentMax: 2,
  /** Password hashes and checks waiting for a turn before further logins get 503. */
  passwordHashesQueuedMax: 1000,
  /** Most memory (128 x N x r bytes) one scrypt check of a stored hash may take; a costlier hash is refused as malformed. */
  scryptMemoryBytesMax: 64 * 1024 * 1024,
  /**
   * Longest an owner waits for its own view to name it the owner of a forwarded link (the entry
   * host saw a membership change first); two gossip rounds, after which it runs the request anyway.
   */
  forwardOwnerViewWaitMicros: 2_000_000,
  /**
   * How long an owner waits before it sends a record again to a replica that did not answer while
   * the view still counts it, or looks again at a write short of its quorum (lib/replication/quorum.ts shortQuorum).
   */
  replicationRetryDelayMicros: 200_000,
  /** Longest wait before a failed forward is tried again when the membership does not change meanwhile. */
  forwardRetryWaitMicros: 500_000,
  /** How often a host runs membership gossip and releases requests parked for an available group (Xenon: 1 s). */
  maintenanceIntervalMicros: 1_000_000,
  /** Connections the peer client opens to one peer at most; forwarding at 64 client connections fits comfortably. */
  peerConnectionsMax: 32,
  /** Idle time after which the peer client closes a pooled connection: below httpKeepAliveMs, so the client closes first. */
  peerKeepAliveMs: 30_000,
  /**
   * Idle time after which a listener closes a client's connection: longer than the 60 s of common
   * clients and load balancers, so they close first and never send on a socket the host is closing.
   */
  httpKeepAliveMs: 65_000,
  /** Shortest deadline a membership request to a peer gets, whatever the group's peerRequestTimeoutMicros. */
  groupRequestTimeoutMinMs: 1000,
  /** A forwarded hop gets 1/n of the operation timeout before it is tried again (Xenon: a tenth)... */
  forwardHopTimeoutDivisor: 10,
  /** ...but never less than this, so a short operation timeout still leaves a hop time to connect. */
  forwardHopTimeoutMinMs: 100,
  /** Tokens whose session link a host remembers (every request with a token needs it); the cache starts over when full. */
  tokenLinksCachedMax: 10_000,
  /** Distinct principals whose grants are remembered between role changes; the cache starts over when full. */
  grantsCachedMax: 10_000,
  /** Wait before the admin user is tried again while the group cannot take its writes yet. */
  adminBootstrapRetryMs: 2000,
  /** Shortest peer secret accepted: it is the only thing between a stranger and the peer endpoints. */
  peerSecretCharsMin: 16,
  /** Node's scrypt needs a little memory beyond its 128 x N x r bytes; this much is allowed on top. */
  scryptMemorySlackBytes: 1024 * 1024,
  /** Gap after which an idle event stream gets a comment line: keeps it open through proxies and shows a dead reader quickly. */
  watchStreamPingMs: 15_000,
  /** Deadline of one callback notification (the subscriber's URL is not a member; it may be slow or gone). */
  notificationTimeoutMs: 10_000,
  /** Wait after a failed notification, doubling per attempt (200 ms, 400 ms, ... before attempt 2, 3, ...). */
  notificationRetryBaseMs: 100,
  /** Zeros written or compared per call: preallocating a segment, and recovery's check that a tail is only zeros. */
  logZeroChunkBytes: 1024 * 1024,
  /** The first stretch of zeros a preallocating file writes; each later one doubles, up to logPreallocateBytes. */
  logZeroStretchMinBytes: 64 * 1024,
  /** Bytes one read of a log segment takes during replay and the log tools: one read per record would be syscall-bound. */
  logReadChunkBytes: 8 * 1024 * 1024,
  /** Dead version slots the index tolerates before it renumbers (and at least as many as live ones), so small indexes never bother. */
  indexRenumberDeadVersionsMin: 4096,
  /** Log size below which `krypton log` shows no progress bar: the work finishes too fast for one to help. */
  logToolProgressBytesMin: 32 * 1024 * 1024,
  /** A replication batch gets 1/n of the operation timeout, so a write waiting on a slow replica still answers within its own. */
  replicationTimeoutDivisor: 3,
  /** Bytes kept for a replication batch's header (sender, count) within replicationBatchBytesMax. */
  replicationBatchHeaderBytes: 256,
  /** Bytes counted for a forwarded request's framing (method, headers, msgpack) on top of its url, body and pragma, toward forwardBatchBytesMax. */
  forwardItemOverheadBytes: 64,
  /** Shortest --operationTimeoutMicros accepted: below it a hop's share (forwardHopTimeoutDivisor) rounds to nothing. */
  operationTimeoutMinMicros: 1000,
  /** Output `krypton log` gathers before writing it out: one write per line would dominate a long listing. */
  logToolOutputFlushBytes: 64 * 1024,
  /** Log bytes between two redraws of the progress bar: calling into the bar per record would cost more than the record. */
  logToolProgressStepBytes: 1024 * 1024,
  /** How long `krypton owner` waits for each of the host's two answers (the selector's status, then the owner). */
  ownerLookupTimeoutMs: 5000,
  /** Characters of a peer's unexpected answer quoted in the error it becomes: enough for its message, not a whole body. */
  peerReplyQuotedCharsMax: 300,
  /** Path prefixes or user links one role may list: a role is checked on every request its users make. */
  roleEntriesMax: 256,
  /** Node ids whose hashes are remembered for owner lookups; a stream of distinct ids cannot grow the cache past it. */
  nodeHashesCachedMax: 4096,
  /** Steps one slow task may ask for, so a forgotten task ends. */
  slowTaskStepsMax: 1000,
  /** Longest step a slow task may ask for, so a forgotten task cannot pin an owner for hours. */
  slowTaskStepMsMax: 60_000,
  /** Requests one stateless handler may chain (ask, continue, ask again) before its answer: a loop in a handler ends. */
  statelessRequestsMax: 16,
  /** Effects one update may ask for; a handler asking for more is refused (INVALID_BODY) before anything is logged. */
  effectsPerUpdateMax: 64,
  /** Effects performing or waiting (maintenance timers) on one host; past it new ones are dropped with a warning. */
  effectsInFlightMax: 10_000,
  /** Longest delay a maintenance effect may ask for. */
  effectMaintenanceDelayMaxMicros: 3_600_000_000,
} as const;

export type Limits = typeof limits;

/**
 * Whole milliseconds in `micros`, for timers and clients that take ms: Krypton's clock, documents
 * and limits count microseconds, as Xenon's do.
 */
export function msFromMicros(micros: number): number {
  return Math.floor(micros / 1000);
}
