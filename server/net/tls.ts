/**
 * TLS material for a host: reads and checks `--keyFile`, `--certificateFile`, `--keyPassphrase`
 * and `--caFile` once at start, so a bad file, a wrong passphrase or a key that does not belong to
 * the certificate stops the start with one line naming the flag, rather than surfacing later as
 * an opaque handshake failure on some peer. Produces the options for the HTTPS listener and for
 * the peer client, which presents the same certificate and trusts the same CAs.
 */

import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { KryptonError } from '../../lib/errors.js';
import type { Config } from '../base/config.js';

export type ClientAuthMode = 'NONE' | 'WANT' | 'NEED';

/** Options for `https.createServer`. */
export interface TlsServerOptions {
  key: string;
  cert: string;
  passphrase?: string;
  ca?: string[];
  requestCert: boolean;
  rejectUnauthorized: boolean;
  minVersion: 'TLSv1.2';
}

/**
 * Options for undici's `connect` when calling an https:// peer. One secure context for every
 * connection: given `ca`/`key`/`cert` instead, each new connection would parse the whole trust
 * store again (some 140 certificates), and a burst of new peer connections then stalls for seconds.
 */
export interface TlsClientOptions {
  secureContext: tls.SecureContext;
  rejectUnauthorized: true;
}

export interface TlsMaterial {
  server: TlsServerOptions;
  client: TlsClientOptions;
  /** Subject and expiry, for the start log line. */
  summary: { subject: string; validTo: string; caCount: number };
  /** Problems that do not stop the start (a certificate that does not name this host, say). */
  warnings: string[];
}

/** A flag's file that cannot serve: the start stops with this one line (code INVALID_SETUP). */
function setupError(message: string): KryptonError {
  return new KryptonError('INVALID_SETUP', message);
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

async function readFlagFile(flag: string, file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'no such file'
        : err.code === 'EACCES'
          ? 'permission denied'
          : err.code === 'EISDIR'
            ? 'it is a folder'
            : err.message;
    throw setupError(`cannot read --${flag} ${file}: ${why}`);
  }
}

function certificatesIn(flag: string, file: string, pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw setupError(`--${flag} ${file} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw setupError(`--${flag} ${file}: certificate ${i + 1} cannot be parsed (${(e as Error).message})`);
    }
  });
}

function privateKey(file: string, pem: string, passphrase: string | undefined): crypto.KeyObject {
  try {
    return crypto.createPrivateKey({ key: pem, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const msg = err.message ?? '';
    if (err.code === 'ERR_MISSING_PASSPHRASE' || (passphrase === undefined && /interrupted or cancelled|bad decrypt/.test(msg))) {
      throw setupError(`--keyFile ${file} is encrypted: give its password with --keyPassphrase`);
    }
    if (/bad decrypt/.test(msg)) throw setupError(`--keyPassphrase does not decrypt --keyFile ${file} (wrong passphrase)`);
    throw setupError(`--keyFile ${file} is not a PEM private key (${msg.replace(/\s+/g, ' ')})`);
  }
}

/** The CAs that Node trusts by default, plus NODE_EXTRA_CA_CERTS: giving `ca` replaces both. */
async function defaultCAs(): Promise<string[]> {
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  const out = [...tls.rootCertificates];
  if (extra) {
    try {
      out.push(...((await fs.readFile(extra, 'utf8')).match(PEM_CERT) ?? []));
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS; so do we (by ignoring it).
    }
  }
  return out;
}

/**
 * Loads and checks the TLS files named in the config; undefined when the host has no HTTPS
 * listener. `nowMs` decides whether the certificate is current.
 */
export async function loadTls(cfg: Config, nowMs: number): Promise<TlsMaterial | undefined> {
  if (cfg.securePort === undefined) return undefined;
  const keyFile = cfg.keyFile!;
  const certFile = cfg.certificateFile!;
  const [keyPem, certPem] = [await readFlagFile('keyFile', keyFile), await readFlagFile('certificateFile', certFile)];
  const chain = certificatesIn('certificateFile', certFile, certPem);
  const leaf = chain[0]!;
  const key = privateKey(keyFile, keyPem, cfg.keyPassphrase);
  if (!leaf.checkPrivateKey(key)) {
    throw setupError(`--keyFile ${keyFile} does not belong to the certificate in --certificateFile ${certFile}`);
  }
  if (Date.parse(leaf.validTo) < nowMs) throw setupError(`the certificate in --certificateFile ${certFile} expired on ${leaf.validTo}`);
  if (Date.parse(leaf.validFrom) > nowMs)
    throw setupError(`the certificate in --certificateFile ${certFile} is not valid before ${leaf.validFrom}`);

  // Peers are verified against the system CAs, NODE_EXTRA_CA_CERTS and --caFile; client
  // certificates (a member proving itself) only against --caFile, or any certificate a public CA
  // signed would pass as a member.
  let caFileCerts: string[] | undefined;
  if (cfg.caFile !== undefined)
    caFileCerts = certificatesIn('caFile', cfg.caFile, await readFlagFile('caFile', cfg.caFile)).map((c) => c.toString());
  const peerCa = caFileCerts ? [...(await defaultCAs()), ...caFileCerts] : undefined;

  const warnings: string[] = [];
  const host = cfg.publicUri ? new URL(cfg.publicUri).hostname.replace(/^\[|\]$/g, '') : cfg.bindAddress;
  const names = net.isIP(host) ? leaf.checkIP(host) : leaf.checkHost(host);
  if (!names && host !== '0.0.0.0' && host !== '::') {
    warnings.push(
      `the certificate in --certificateFile ${certFile} does not name ${host} (subject alt names: ${leaf.subjectAltName ?? 'none'}); peers that verify it will refuse this host`,
    );
  }

  const mode = cfg.sslClientAuthMode;
  const passphrase = cfg.keyPassphrase !== undefined ? { passphrase: cfg.keyPassphrase } : {};
  return {
    server: {
      key: keyPem,
      cert: certPem,
      ...passphrase,
      ...(caFileCerts ? { ca: caFileCerts } : {}),
      requestCert: mode !== 'NONE',
      rejectUnauthorized: mode === 'NEED',
      minVersion: 'TLSv1.2',
    },
    client: {
      secureContext: tls.createSecureContext({
        key: keyPem,
        cert: certPem,
        ...passphrase,
        ...(peerCa ? { ca: peerCa } : {}),
        minVersion: 'TLSv1.2',
      }),
      rejectUnauthorized: true,
    },
    summary: { subject: leaf.subject.replace(/\n/g, ', '), validTo: leaf.validTo, caCount: caFileCerts?.length ?? 0 },
    warnings,
  };
}
