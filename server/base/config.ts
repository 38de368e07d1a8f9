/**
 * Turns `krypton host` arguments into a Config. Flag names are Xenon's (docs/xenon-compatibility.md,
 * Host arguments), accepted as `--flag=value` or `--flag value`. Anything unknown or malformed is a
 * KryptonError with code INVALID_USAGE whose message says what is wrong; the command prints it and
 * exits 2.
 */

import path from 'node:path';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';

export type ClientAuthMode = 'NONE' | 'WANT' | 'NEED';
export type LogFormat = 'auto' | 'pretty' | 'json';
/** Printable ASCII without spaces: it travels in an HTTP header. */
export const PEER_SECRET_SHAPE = new RegExp(`^[\\x21-\\x7e]{${limits.peerSecretCharsMin},}$`);

export interface Config {
  /** HTTP port; -1 turns plain HTTP off (then securePort is required). */
  port: number;
  /** HTTPS port; undefined when the host has no HTTPS listener. */
  securePort?: number;
  keyFile?: string;
  certificateFile?: string;
  keyPassphrase?: string;
  /** PEM CA certificates trusted for peers (added to Node's defaults and NODE_EXTRA_CA_CERTS). */
  caFile?: string;
  /** Whether the HTTPS listener asks clients (peers) for a certificate, and whether it must verify. */
  sslClientAuthMode: ClientAuthMode;
  bindAddress: string;
  sandbox: string;
  id?: string;
  publicUri?: string;
  peerNodes: string[];
  membershipQuorum?: number;
  operationTimeoutMicros: number;
  repairLog: boolean;
  isPeerSynchronizationEnabled: boolean;
  /** pino level for stdout; the in-memory process log always keeps info and above. */
  logLevel: string;
  /** stdout log lines: `pretty` (coloured, one readable line each), `json`, or `auto` (pretty on a terminal). */
  logFormat: LogFormat;
  /** A durable write of the log slower than this is logged as a warning with its duration. */
  fsyncWarningThresholdMs: number;
  /** Shared secret that proves membership on peer endpoints (server/auth/peer-auth.ts). */
  peerSecret?: string;
  /** File holding the shared secret (first line); read at start. */
  peerSecretFile?: string;
  /** Tokens, users and roles (server/auth/authz.ts); off by default as in Xenon. */
  isAuthorizationEnabled: boolean;
  /** With authorization on, a user with every verb on `/`, created once the group is available. */
  adminUser?: string;
  adminPassword?: string;
  /** JavaScript modules whose exported service definitions the host registers (absolute paths). */
  services?: string[];
  /** A snapshot is written once this many records were appended since the last; 0: never. */
  snapshotEveryRecords: number;
  /** Snapshots kept; the log keeps what the oldest of them does not cover. */
  snapshotsKept: number;
  /** Past this many bytes of log and snapshots, writes are refused with 507 (0: no quota). */
  maxDiskBytes: number;
  /** A log segment is closed, and a new one started, past this size; compaction removes whole segments. */
  logSegmentBytes: number;
  /** Compaction leaves at least this many bytes of the newest log segments, for the log tools' look back. */
  keepLogBytes: number;
}

function usageError(message: string): KryptonError {
  return new KryptonError('INVALID_USAGE', message);
}

export const defaultConfig = (): Config => ({
  port: 8000,
  bindAddress: '127.0.0.1',
  sandbox: path.resolve('sandbox'),
  peerNodes: [],
  sslClientAuthMode: 'NONE',
  operationTimeoutMicros: limits.operationTimeoutMicros,
  repairLog: false,
  isPeerSynchronizationEnabled: true,
  logLevel: 'info',
  logFormat: 'auto',
  fsyncWarningThresholdMs: 1000,
  isAuthorizationEnabled: false,
  snapshotEveryRecords: limits.snapshotEveryRecordsDefault,
  snapshotsKept: limits.snapshotsKeptDefault,
  maxDiskBytes: 0,
  logSegmentBytes: limits.segmentBytesMax,
  keepLogBytes: 0,
});

type Kind = 'int' | 'string' | 'list' | 'bool';
const FLAGS: Record<string, { kind: Kind; help: string }> = {
  port: { kind: 'int', help: 'HTTP port (0 = ephemeral, -1 = no plain HTTP: needs --securePort)' },
  securePort: { kind: 'int', help: 'HTTPS port (0 = ephemeral); needs --keyFile and --certificateFile' },
  keyFile: { kind: 'string', help: 'PKCS#8 private key in PEM for HTTPS (encrypted: add --keyPassphrase)' },
  certificateFile: { kind: 'string', help: 'X.509 certificate chain in PEM for HTTPS, leaf first' },
  keyPassphrase: { kind: 'string', help: 'password of an encrypted --keyFile' },
  caFile: { kind: 'string', help: 'PEM CA certificates trusted for https:// peers, besides the system ones and NODE_EXTRA_CA_CERTS' },
  sslClientAuthMode: {
    kind: 'string',
    help: 'ask HTTPS clients for a certificate: NONE (default), WANT (verify if given), NEED (refuse without one)',
  },
  bindAddress: { kind: 'string', help: 'address to listen on, also used in groupReference' },
  sandbox: { kind: 'string', help: 'data folder; the port is appended: <sandbox>/<port>/' },
  id: { kind: 'string', help: 'host id (default: generated once and kept in the sandbox)' },
  publicUri: { kind: 'string', help: 'URI other hosts should use to reach this one' },
  peerNodes: { kind: 'list', help: "comma-separated peer URIs; this host's own URI is skipped" },
  membershipQuorum: { kind: 'int', help: 'available members required before owner-selected requests run' },
  operationTimeoutMicros: { kind: 'int', help: 'how long a request may wait before 408 (default 60000000)' },
  repairLog: { kind: 'bool', help: 'truncate the log at the first damaged record instead of refusing to start' },
  isPeerSynchronizationEnabled: { kind: 'bool', help: 'synchronize documents with peers after membership changes' },
  logLevel: { kind: 'string', help: 'stdout log level: trace, debug, info, warn, error, silent' },
  logFormat: { kind: 'string', help: 'stdout log lines: auto (readable on a terminal, JSON otherwise), pretty, json' },
  fsyncWarningThresholdMs: { kind: 'int', help: 'warn when one durable write of the log takes this long (default 1000)' },
  peerSecret: { kind: 'string', help: 'shared secret hosts of the group prove membership with (visible in ps: prefer --peerSecretFile)' },
  peerSecretFile: { kind: 'string', help: 'file whose first line is the shared peer secret' },
  isAuthorizationEnabled: { kind: 'bool', help: 'require a login token (POST /core/authn/basic) and a role for every request' },
  adminUser: { kind: 'string', help: 'with authorization on: email of a user granted every verb on / (default admin@localhost)' },
  adminPassword: { kind: 'string', help: "with authorization on: that user's password" },
  services: { kind: 'list', help: 'comma-separated JavaScript modules exporting service definitions (krypton/service) to run' },
  snapshotEveryRecords: {
    kind: 'int',
    help: `write a snapshot of the index once this many records were logged since the last (default ${limits.snapshotEveryRecordsDefault}; 0: never, the log is kept whole)`,
  },
  snapshotsKept: {
    kind: 'int',
    help: `snapshots kept to fall back on (default ${limits.snapshotsKeptDefault}); log segments the oldest covers are removed`,
  },
  maxDiskBytes: { kind: 'int', help: 'refuse writes with 507 once the log and snapshots take this many bytes (default 0: no quota)' },
  keepLogBytes: {
    kind: 'int',
    help: 'compaction keeps at least this many bytes of the newest log segments, for krypton log to look back (default 0; ignored past --maxDiskBytes)',
  },
  logSegmentBytes: {
    kind: 'int',
    help: `start a new log segment past this size (default ${limits.segmentBytesMax}); compaction removes whole segments`,
  },
};

export function flagHelp(): string {
  return Object.entries(FLAGS)
    .map(([name, f]) => `  --${name.padEnd(30)} ${f.help}`)
    .join('\n');
}

export function parseHostArgs(argv: readonly string[], base: Config = defaultConfig()): Config {
  const cfg: Config = { ...base, peerNodes: [...base.peerNodes] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw usageError(`unexpected argument '${arg}' (flags look like --port=8000)`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const spec = FLAGS[name];
    if (!spec) throw usageError(`unknown flag --${name}\n${flagHelp()}`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (spec.kind === 'bool' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) value = 'true';
    else {
      const next = argv[++i];
      if (next === undefined) throw usageError(`--${name} needs a value`);
      value = next;
    }
    apply(cfg, name, value);
  }
  validateConfig(cfg);
  const problem = peerAuthConfigProblem(cfg);
  if (problem) throw usageError(problem);
  return cfg;
}

/** Checks that need several flags at once; Host.start runs it too, for configs built in code. */
export function validateConfig(cfg: Config): void {
  const tlsFiles = cfg.keyFile !== undefined || cfg.certificateFile !== undefined;
  if (cfg.securePort === undefined) {
    if (cfg.port === -1)
      throw usageError('--port=-1 turns plain HTTP off, so --securePort (with --keyFile and --certificateFile) is required');
    if (tlsFiles || cfg.keyPassphrase !== undefined)
      throw usageError('--keyFile, --certificateFile and --keyPassphrase only apply to HTTPS: add --securePort');
    if (cfg.sslClientAuthMode !== 'NONE') throw usageError('--sslClientAuthMode only applies to HTTPS: add --securePort');
    return;
  }
  if (cfg.keyFile === undefined || cfg.certificateFile === undefined)
    throw usageError('--securePort needs both --keyFile and --certificateFile');
  if (cfg.sslClientAuthMode !== 'NONE' && cfg.caFile === undefined)
    throw usageError(`--sslClientAuthMode=${cfg.sslClientAuthMode} needs --caFile: client certificates are verified against that CA only`);
  if (cfg.securePort !== 0 && cfg.securePort === cfg.port) throw usageError(`--port and --securePort cannot both be ${cfg.port}`);
}

type Bad = (why: string) => KryptonError;

function apply(cfg: Config, name: string, value: string): void {
  const bad: Bad = (why) => usageError(`bad value for --${name}: '${value}' ${why}`);
  if (applyListenFlag(cfg, name, value, bad)) return;
  if (applyHostFlag(cfg, name, value, bad)) return;
  if (applyStorageFlag(cfg, name, value, bad)) return;
  // A flag none of the four knows is a Xenon one that is accepted and ignored (see FLAGS).
  applyAuthFlag(cfg, name, value, bad);
}

/** Ports, TLS files and the addresses this host listens on and advertises; false for other flags. */
function applyListenFlag(cfg: Config, name: string, value: string, bad: Bad): boolean {
  switch (name) {
    case 'port': {
      const n = toInt(value);
      if (n === undefined || n < -1 || n > 65535) throw bad('(expected an integer port 0-65535, or -1 for no plain HTTP)');
      cfg.port = n;
      return true;
    }
    case 'securePort': {
      const n = toInt(value);
      if (n === undefined || n < 0 || n > 65535) throw bad('(expected an integer port 0-65535)');
      cfg.securePort = n;
      return true;
    }
    case 'keyFile':
    case 'certificateFile':
    case 'caFile':
      if (!value) throw bad('(expected a file)');
      cfg[name] = path.resolve(value);
      return true;
    case 'keyPassphrase':
      cfg.keyPassphrase = value;
      return true;
    case 'sslClientAuthMode':
      if (value !== 'NONE' && value !== 'WANT' && value !== 'NEED') throw bad('(expected NONE, WANT or NEED)');
      cfg.sslClientAuthMode = value;
      return true;
    case 'bindAddress':
      if (!value) throw bad('(expected an address)');
      cfg.bindAddress = value;
      return true;
    case 'publicUri':
      if (!isHttpUri(value)) throw bad('(expected an absolute http:// or https:// URI)');
      cfg.publicUri = value.replace(/\/+$/, '');
      return true;
    default:
      return false;
  }
}

/** Cluster, sandbox, identity and logging flags; false for other flags. */
function applyHostFlag(cfg: Config, name: string, value: string, bad: Bad): boolean {
  switch (name) {
    case 'membershipQuorum': {
      const n = toInt(value);
      if (n === undefined || n < 1) throw bad('(expected an integer >= 1)');
      cfg.membershipQuorum = n;
      return true;
    }
    case 'operationTimeoutMicros': {
      const n = toInt(value);
      if (n === undefined || n < limits.operationTimeoutMinMicros)
        throw bad(`(expected an integer >= ${limits.operationTimeoutMinMicros})`);
      cfg.operationTimeoutMicros = n;
      return true;
    }
    case 'sandbox':
      if (!value) throw bad('(expected a folder)');
      cfg.sandbox = path.resolve(value);
      return true;
    case 'id':
      if (!/^[0-9A-Za-z\-_.~:]+$/.test(value)) throw bad('(ids may use letters, digits and -_.~:)');
      cfg.id = value;
      return true;
    case 'peerNodes': {
      const list = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map(normalizePeer);
      const wrong = list.find((u) => !isHttpUri(u));
      if (wrong) throw bad(`(peer '${wrong}' is not an http:// or https:// URI)`);
      cfg.peerNodes = list;
      return true;
    }
    case 'services': {
      const list = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (list.length === 0) throw bad('(expected one or more module files)');
      cfg.services = list.map((f) => path.resolve(f));
      return true;
    }
    case 'logFormat':
      if (value !== 'auto' && value !== 'pretty' && value !== 'json') throw bad('(expected auto, pretty or json)');
      cfg.logFormat = value;
      return true;
    case 'fsyncWarningThresholdMs': {
      const n = toInt(value);
      if (n === undefined || n < 1) throw bad('(expected an integer >= 1)');
      cfg.fsyncWarningThresholdMs = n;
      return true;
    }
    case 'logLevel':
      if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(value)) throw bad('(expected a pino level)');
      cfg.logLevel = value;
      return true;
    case 'repairLog':
    case 'isAuthorizationEnabled':
    case 'isPeerSynchronizationEnabled': {
      if (value !== 'true' && value !== 'false') throw bad('(expected true or false)');
      cfg[name] = value === 'true';
      return true;
    }
    default:
      return false;
  }
}

/** Snapshots, compaction and the disk quota; false for other flags. */
function applyStorageFlag(cfg: Config, name: string, value: string, bad: Bad): boolean {
  if (!['snapshotEveryRecords', 'snapshotsKept', 'maxDiskBytes', 'logSegmentBytes', 'keepLogBytes'].includes(name)) return false;
  const n = toInt(value);
  const min = name === 'snapshotsKept' ? 1 : name === 'logSegmentBytes' ? 4096 : 0;
  if (n === undefined || n < min) throw bad(`(expected an integer >= ${min})`);
  cfg[name as 'snapshotEveryRecords' | 'snapshotsKept' | 'maxDiskBytes' | 'logSegmentBytes' | 'keepLogBytes'] = n;
  return true;
}

/** Peer secret and administrator flags; false for other flags. */
function applyAuthFlag(cfg: Config, name: string, value: string, bad: Bad): boolean {
  switch (name) {
    case 'peerSecret':
      if (!PEER_SECRET_SHAPE.test(value)) throw bad(`(expected at least ${limits.peerSecretCharsMin} printable characters, no spaces)`);
      cfg.peerSecret = value;
      return true;
    case 'peerSecretFile':
      if (!value) throw bad('(expected a file)');
      cfg.peerSecretFile = path.resolve(value);
      return true;
    case 'adminUser':
      if (!/^[^\s@]+@[^\s@]+$/.test(value)) throw bad('(expected an email address)');
      cfg.adminUser = value;
      return true;
    case 'adminPassword':
      if (!value) throw bad('(expected a password)');
      cfg.adminPassword = value;
      return true;
    default:
      return false;
  }
}

function toInt(s: string): number | undefined {
  return /^-?\d+$/.test(s) ? Number(s) : undefined;
}

function isHttpUri(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/** Xenon gives scheme-less peers port 8000 and http; an https:// peer without a port means 443. */
function normalizePeer(s: string): string {
  const withScheme = /^[a-z]+:\/\//.test(s) ? s : `http://${s}`;
  try {
    const u = new URL(withScheme);
    if (!/:\d+$/.test(u.host) && u.protocol === 'http:') u.port = '8000';
    return u.origin;
  } catch {
    return s;
  }
}

/**
 * Flag combinations that cannot work, as one line, or undefined. With authorization on, hosts
 * run each other's requests as the system user only once they have proved membership, so a host
 * with peers needs a peer secret or client certificates (`--sslClientAuthMode` WANT or NEED:
 * hosts always present theirs to peers, so either proves membership).
 */
export function peerAuthConfigProblem(cfg: Config): string | undefined {
  if (cfg.peerSecret !== undefined && cfg.peerSecretFile !== undefined) return 'give --peerSecret or --peerSecretFile, not both';
  if (
    cfg.isAuthorizationEnabled &&
    cfg.peerNodes.length > 0 &&
    cfg.peerSecret === undefined &&
    cfg.peerSecretFile === undefined &&
    cfg.sslClientAuthMode === 'NONE'
  ) {
    return '--isAuthorizationEnabled with --peerNodes needs --peerSecret or --peerSecretFile (or --sslClientAuthMode=WANT or NEED with certificates from --caFile) so the hosts can prove to each other that they are members';
  }
  return undefined;
}
