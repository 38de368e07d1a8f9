#!/usr/bin/env node
/**
 * The `krypton` command. `krypton host [flags]` runs a host until SIGINT, SIGTERM or
 * `DELETE /core/management` stops it gracefully. Exit codes: 0 after a clean stop, 1 when the
 * host could not start or failed while running (the reason is printed), 2 for bad usage.
 * `krypton log <command> DIR` reads a host's log (tools/log/cli.ts has its own exit codes).
 */

import { isKryptonError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { type Config, flagHelp, parseHostArgs } from '../server/base/config.js';
import { Host } from '../server/host/host.js';
import { whoOwns } from './owner.js';
import { makeDevCerts } from './certs.js';
import { SingleBar } from 'cli-progress';
import { backupGroup, restoreBackup, type BackupOptions } from './backup.js';
import { restoreToGroup, type GroupRestoreOptions } from './restore-group.js';
import { runLog } from './log/cli.js';
import { processIO } from './log/io.js';

const USAGE = `usage: krypton <command> [flags]

commands:
  host      run a host (Xenon-compatible REST API)
  owner     print which host owns a link: krypton owner --link /core/examples/x [--host URL] [--selector default] [--json]
            (the owner of a well-known link is the leader of a group of workers; see the README)
  log       read a host's log: inspect, verify, replay, export, stats (krypton log --help)
  backup    an online backup of a group, every retained version of its replicated documents:
            krypton backup --host URL --out FILE [--authToken TOKEN]
  restore   put a backup in an empty host folder, which starts from it:
            krypton restore FILE --sandbox DIR [--port 8000] (restore each host of the new group)
            or into a running group that lacks the backup's documents:
            krypton restore FILE --host URL [--authToken TOKEN]
  certs     make a development CA and host certificate with openssl: krypton certs DIR [--host NAME_OR_IP]...
            (ca.crt for --caFile, host.crt and host.key for --certificateFile and --keyFile; not for production)
  help      print this text

krypton host flags (--flag=value or --flag value):
${flagHelp()}

exit codes: host: 0 stopped cleanly, 1 failed to start or failed while running, 2 bad usage;
            owner: 0 printed the owner, 1 the host could not answer, 2 bad usage;
            certs: 0 written, 1 openssl failed, 2 bad usage;
            backup, restore: 0 done, 1 failed (the reason is printed), 2 bad usage;
            log: see krypton log --help`;

/** `krypton owner`: asks one host's node selector who owns a link. */
async function runOwner(args: string[]): Promise<number> {
  const opts: Record<string, string> = { host: 'http://127.0.0.1:8000', selector: 'default' };
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') {
      json = true;
      continue;
    }
    const m = /^--(link|host|selector)(?:=(.*))?$/.exec(a);
    const value = m ? (m[2] ?? args[++i]) : undefined;
    if (!m || value === undefined) {
      process.stderr.write(
        `krypton owner: unknown or incomplete flag '${a}'\nusage: krypton owner --link /path [--host URL] [--selector default] [--json]\n`,
      );
      return 2;
    }
    opts[m[1]!] = value;
  }
  if (!opts.link?.startsWith('/')) {
    process.stderr.write('krypton owner: --link /path is required\n');
    return 2;
  }
  try {
    const a = await whoOwns(opts.host!, opts.link, opts.selector);
    if (json) process.stdout.write(JSON.stringify(a) + '\n');
    else
      process.stdout.write(
        `${a.key} is owned by ${a.ownerNodeId} (${a.ownerNodeGroupReference}); ${a.availableNodeCount} available members; selector ${a.status}\n`,
      );
    return 0;
  } catch (e) {
    process.stderr.write(`krypton owner: ${(e as Error).message}\n`);
    return 1;
  }
}

/** `krypton certs DIR [--host H]...`: development certificates for HTTPS hosts. */
async function runCerts(args: string[]): Promise<number> {
  const hosts: string[] = [];
  let dir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--host(?:=(.*))?$/.exec(a);
    if (m) {
      const h = m[1] ?? args[++i];
      if (!h) {
        process.stderr.write('krypton certs: --host needs a name or an IP address\n');
        return 2;
      }
      hosts.push(h);
    } else if (!a.startsWith('--') && dir === undefined) dir = a;
    else {
      process.stderr.write(`krypton certs: unexpected argument '${a}'\nusage: krypton certs DIR [--host NAME_OR_IP]...\n`);
      return 2;
    }
  }
  if (!dir) {
    process.stderr.write('usage: krypton certs DIR [--host NAME_OR_IP]...\n');
    return 2;
  }
  try {
    const c = await makeDevCerts(dir, hosts);
    process.stdout.write(
      `wrote ${c.caCert}, ${c.hostCert} and ${c.hostKey} (valid 30 days, for 127.0.0.1, localhost${hosts.map((h) => ', ' + h).join('')})\n`,
    );
    process.stdout.write(
      `start a host with: krypton host --port=-1 --securePort=8000 --keyFile=${c.hostKey} --certificateFile=${c.hostCert} --caFile=${c.caCert}\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`krypton certs: ${(e as Error).message}\n`);
    return 1;
  }
}

async function runHost(args: string[]): Promise<number> {
  let config: Config;
  try {
    config = parseHostArgs(args);
  } catch (e) {
    if (isKryptonError(e) && e.code === 'INVALID_USAGE') {
      process.stderr.write(`krypton host: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  let host: Host;
  try {
    host = await Host.start(config);
  } catch (e) {
    // A bad flag file (INVALID_SETUP) is the operator's to fix, so it reads as a sentence with no code.
    const msg = isKryptonError(e) && e.code !== 'INVALID_SETUP' ? `${e.code}: ${e.message}` : (e as Error).message;
    process.stderr.write(`krypton host: cannot start: ${msg}\n`);
    if (isKryptonError(e) && e.code === 'LOG_CORRUPT')
      process.stderr.write('krypton host: start with --repairLog to truncate the log at the damage (records after it are lost)\n');
    return 1;
  }
  const onSignal = (sig: string) => {
    host.logger.info({ signal: sig }, 'signal received, stopping');
    void host.stop();
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  await host.stopped;
  // Everything durable is closed by now. Something left running (a timer, a socket) must not keep
  // a stopped host's process alive: exit after a grace, and say what it was, so it can be fixed.
  setTimeout(() => {
    const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    process.stderr.write(
      `krypton host: stopped, but ${open.join(', ') || 'something'} still held the process ${limits.stoppedExitGraceMs} ms later; exiting\n`,
    );
    process.exit(0);
  }, limits.stoppedExitGraceMs).unref();
  return 0;
}

/** `--name=value` or `--name value` flags and positional arguments, for backup and restore. */
function flagsOf(args: string[], names: readonly string[]): { flags: Map<string, string>; positional: string[] } | string {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const m = /^--([A-Za-z]+)(?:=(.*))?$/.exec(a);
    const value = m ? (m[2] ?? args[++i]) : undefined;
    if (!m || !names.includes(m[1]!) || value === undefined) return `unknown or incomplete flag '${a}'`;
    flags.set(m[1]!, value);
  }
  return { flags, positional };
}

function memberBar(): NonNullable<BackupOptions['progress']> | undefined {
  if (!process.stderr.isTTY) return undefined;
  let bar: SingleBar | undefined;
  let done = 0;
  return {
    member(id, total) {
      bar = new SingleBar({ stream: process.stderr, format: `${id} [{bar}] {value} of {total} versions`, clearOnComplete: true, fps: 5 });
      done = 0;
      bar.start(total, 0);
    },
    version() {
      if (++done % 1000 === 0) bar?.update(done);
    },
    done() {
      bar?.stop();
    },
  };
}

/** `krypton backup --host URL --out FILE [--authToken T]`. */
async function runBackup(args: string[]): Promise<number> {
  const usage = 'usage: krypton backup --host URL --out FILE [--authToken TOKEN]';
  const parsed = flagsOf(args, ['host', 'out', 'authToken']);
  if (typeof parsed === 'string' || parsed.positional.length > 0 || !parsed.flags.get('out')) {
    process.stderr.write(`krypton backup: ${typeof parsed === 'string' ? parsed : '--out FILE is required'}\n${usage}\n`);
    return 2;
  }
  const { flags } = parsed;
  try {
    const progress = memberBar();
    const s = await backupGroup({
      host: flags.get('host') ?? 'http://127.0.0.1:8000',
      out: flags.get('out')!,
      ...(flags.has('authToken') ? { authToken: flags.get('authToken')! } : {}),
      say: (line) => process.stderr.write(`${line}\n`),
      ...(progress ? { progress } : {}),
    });
    const rate = Math.round(s.versions / Math.max(s.seconds, 0.001));
    process.stdout.write(
      `wrote ${flags.get('out')}: ${s.versions} versions of ${s.links} documents from ${s.members.length} members, ${s.bytes} bytes, ${s.seconds.toFixed(1)} s (${rate} versions/s)${s.conflicts > 0 ? `; ${s.conflicts} versions differed between members (the later epoch's kept)` : ''}\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`krypton backup: ${(e as Error).message}\n`);
    return 1;
  }
}

function restoreBar(): NonNullable<GroupRestoreOptions['progress']> | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new SingleBar({
    stream: process.stderr,
    format: 'restore [{bar}] {value} of {total} versions',
    clearOnComplete: true,
    fps: 5,
  });
  let done = 0;
  return {
    start: (total) => bar.start(total, 0),
    page: (n) => {
      done += n;
      bar.update(done);
    },
    done: () => bar.stop(),
  };
}

/** `krypton restore FILE --host URL [--authToken T]`. */
async function runGroupRestore(file: string, flags: Map<string, string>): Promise<number> {
  try {
    const progress = restoreBar();
    const s = await restoreToGroup({
      file,
      host: flags.get('host')!,
      ...(flags.has('authToken') ? { authToken: flags.get('authToken')! } : {}),
      say: (line) => process.stderr.write(`${line}\n`),
      ...(progress ? { progress } : {}),
    });
    const again = s.held > 0 ? `; ${s.held} copies were there already` : '';
    process.stdout.write(
      `restored ${s.versions} versions of ${s.links} documents into ${s.members.join(', ')} (${s.applied} copies written${again}), ${s.seconds.toFixed(1)} s\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`krypton restore: ${(e as Error).message}\n`);
    return 1;
  }
}

/** `krypton restore FILE --sandbox DIR [--port N]`, or `--host URL` into a running group. */
async function runRestore(args: string[]): Promise<number> {
  const usage = 'usage: krypton restore FILE --sandbox DIR [--port 8000]\n       krypton restore FILE --host URL [--authToken TOKEN]';
  const parsed = flagsOf(args, ['sandbox', 'port', 'host', 'authToken']);
  if (typeof parsed !== 'string' && parsed.flags.has('host')) {
    if (parsed.positional.length !== 1 || parsed.flags.has('sandbox') || parsed.flags.has('port')) {
      process.stderr.write(`krypton restore: FILE and --host URL, without --sandbox or --port\n${usage}\n`);
      return 2;
    }
    return runGroupRestore(parsed.positional[0]!, parsed.flags);
  }
  const port = typeof parsed === 'string' ? Number.NaN : Number(parsed.flags.get('port') ?? 8000);
  if (typeof parsed === 'string' || parsed.positional.length !== 1 || !parsed.flags.get('sandbox') || !Number.isInteger(port) || port < 0) {
    process.stderr.write(`krypton restore: ${typeof parsed === 'string' ? parsed : 'FILE and --sandbox DIR are required'}\n${usage}\n`);
    return 2;
  }
  try {
    const s = await restoreBackup(parsed.positional[0]!, parsed.flags.get('sandbox')!, port);
    process.stdout.write(
      `restored ${s.versions} versions of ${s.links} documents into ${s.hostDir}; start it with krypton host --sandbox=${parsed.flags.get('sandbox')} --port=${port}\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`krypton restore: ${(e as Error).message}\n`);
    return 1;
  }
}

async function runLogCommand(args: string[]): Promise<number> {
  // `krypton log ... | head` closes the pipe early; that ends the output, it is not a failure.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') process.stderr.write(`krypton log: cannot write to stdout: ${e.message}\n`);
    process.exit(e.code === 'EPIPE' ? 0 : 1);
  });
  return runLog(args, processIO());
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'host':
      return runHost(rest);
    case 'owner':
      return runOwner(rest);
    case 'backup':
      return runBackup(rest);
    case 'restore':
      return runRestore(rest);
    case 'log':
      return runLogCommand(rest);
    case 'certs':
      return runCerts(rest);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return 0;
    case undefined:
      process.stderr.write(USAGE + '\n');
      return 2;
    default:
      process.stderr.write(`krypton: unknown command '${cmd}'\n\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`krypton: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
