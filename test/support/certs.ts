/**
 * Certificates for TLS tests, made with `openssl` through tools/certs.ts (what `krypton certs`
 * runs): a test CA, a host certificate it signs naming 127.0.0.1 and localhost, its PKCS#8 key
 * in PEM, the same key encrypted, a host certificate from a second CA nothing trusts, and an
 * unrelated certificate. Everything lives in one temp folder the test removes.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { encryptKey, makeCa, makeDevCerts, makeHostCert } from '../../tools/certs.js';
import { tempDir } from './hosts.js';

export interface Certs {
  dir: string;
  caCert: string;
  /** A host certificate signed by the CA, and its unencrypted PKCS#8 key. */
  hostCert: string;
  hostKey: string;
  /** The same key, encrypted with `passphrase`. */
  hostKeyEncrypted: string;
  passphrase: string;
  /** A host certificate and key from a CA that the test CA does not vouch for. */
  otherHostCert: string;
  otherHostKey: string;
  /** The certificate of an unrelated key pair (so it does not match hostKey). */
  strangerCert: string;
  read(file: string): Promise<string>;
  remove(): Promise<void>;
}

export async function makeCerts(): Promise<Certs> {
  const tmp = await tempDir('krypton-certs-');
  const dir = tmp.path;
  const passphrase = 'correct horse';
  const dev = await makeDevCerts(dir, [], 2);
  await encryptKey(dir, 'host', passphrase);
  await makeCa(dir, 'other-ca', 'Untrusted CA', 2);
  await makeHostCert(dir, 'other-ca', 'other-host', ['127.0.0.1'], 2);
  await makeCa(dir, 'stranger', 'Stranger', 2);
  const f = (n: string) => path.join(dir, n);
  return {
    dir,
    caCert: dev.caCert,
    hostCert: dev.hostCert,
    hostKey: dev.hostKey,
    hostKeyEncrypted: f('host-encrypted.key'),
    passphrase,
    otherHostCert: f('other-host.crt'),
    otherHostKey: f('other-host.key'),
    strangerCert: f('stranger.crt'),
    read: (file) => fs.readFile(file, 'utf8'),
    remove: tmp.remove,
  };
}
