/**
 * `krypton certs DIR`: a development CA and a host certificate it signs, made with the `openssl`
 * command, so a user can follow seed 001's HTTPS section without a PKI: `ca.crt` for `--caFile`,
 * `host.crt` and `host.key` (PKCS#8 PEM) for `--certificateFile` and `--keyFile`, naming
 * 127.0.0.1 and localhost plus any `--host` given. Also used by the TLS tests and benchmark.
 * Not for production: the CA key sits next to the certificates.
 */

import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { KryptonError } from '../lib/errors.js';

const run = promisify(execFile);

export interface DevCerts {
  caCert: string;
  caKey: string;
  hostCert: string;
  hostKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT')
      throw new KryptonError('INVALID_SETUP', 'the openssl command is not installed (Debian: apt-get install openssl)');
    throw new KryptonError('INVALID_SETUP', `openssl ${args[0]} failed: ${(err.stderr ?? err.message).trim().split('\n')[0]}`);
  }
}

/** A self-signed CA: `<name>.crt` and `<name>.key` in `dir`. */
export async function makeCa(dir: string, name: string, commonName: string, days = 30): Promise<void> {
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-subj',
      `/CN=${commonName}`,
      '-days',
      String(days),
    ],
    dir,
  );
}

/** A P-256 key (`<name>.key`, PKCS#8 PEM) and a certificate for `hosts` signed by CA `ca`. */
export async function makeHostCert(dir: string, ca: string, name: string, hosts: string[], days = 30): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${hosts[0]}`, '-out', `${name}.csr`], dir);
  const san = hosts.map((h) => (net.isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  await fs.writeFile(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      String(days),
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
  await fs.rm(path.join(dir, `${name}.csr`));
  await fs.rm(path.join(dir, `${name}.ext`));
}

/** Writes `<name>-encrypted.key`: `<name>.key` encrypted with `passphrase` (PKCS#8, AES-256). */
export async function encryptKey(dir: string, name: string, passphrase: string): Promise<void> {
  await openssl(
    ['pkcs8', '-topk8', '-in', `${name}.key`, '-out', `${name}-encrypted.key`, '-v2', 'aes-256-cbc', '-passout', `pass:${passphrase}`],
    dir,
  );
}

export async function makeDevCerts(dir: string, hosts: string[] = [], days = 30): Promise<DevCerts> {
  await fs.mkdir(dir, { recursive: true });
  await makeCa(dir, 'ca', 'Krypton development CA', days);
  await makeHostCert(dir, 'ca', 'host', [...new Set(['127.0.0.1', 'localhost', ...hosts])], days);
  const f = (n: string) => path.join(dir, n);
  return { caCert: f('ca.crt'), caKey: f('ca.key'), hostCert: f('host.crt'), hostKey: f('host.key') };
}
