/**
 * Certificates for TLS tests, made with the `openssl` command as an operator would: a test CA,
 * host certificates it signs (naming 127.0.0.1 and localhost), PKCS#8 keys in PEM, one of them
 * encrypted, and a second CA that nothing trusts. Everything lives in one temp folder the test
 * removes.
 */

import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './hosts.js';

const run = promisify(execFile);

export interface Certs {
  dir: string;
  caCert: string;
  /** A host certificate signed by the CA, and its unencrypted PKCS#8 key. */
  hostCert: string;
  hostKey: string;
  /** The same key, encrypted with `passphrase`. */
  hostKeyEncrypted: string;
  passphrase: string;
  /** A CA and a host certificate signed by it that the test CA does not vouch for. */
  otherCaCert: string;
  otherHostCert: string;
  otherHostKey: string;
  /** The certificate file of an unrelated key pair (so it does not match hostKey). */
  strangerCert: string;
  read(file: string): Promise<string>;
  remove(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
  }
}

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${cn}`, '-days', '2'], dir);
}

async function makeHost(dir: string, ca: string, name: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', '/CN=127.0.0.1', '-out', `${name}.csr`], dir);
  await fs.writeFile(path.join(dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

export async function makeCerts(): Promise<Certs> {
  const tmp = await tempDir('krypton-certs-');
  const dir = tmp.path;
  const passphrase = 'correct horse';
  await makeCa(dir, 'ca', 'Krypton Test CA');
  await makeHost(dir, 'ca', 'host');
  await openssl(['pkcs8', '-topk8', '-in', 'host.key', '-out', 'host-encrypted.key', '-v2', 'aes-256-cbc', '-passout', `pass:${passphrase}`], dir);
  await makeCa(dir, 'other-ca', 'Untrusted CA');
  await makeHost(dir, 'other-ca', 'other-host');
  await makeCa(dir, 'stranger', 'Stranger');
  const f = (n: string) => path.join(dir, n);
  return {
    dir,
    caCert: f('ca.crt'),
    hostCert: f('host.crt'),
    hostKey: f('host.key'),
    hostKeyEncrypted: f('host-encrypted.key'),
    passphrase,
    otherCaCert: f('other-ca.crt'),
    otherHostCert: f('other-host.crt'),
    otherHostKey: f('other-host.key'),
    strangerCert: f('stranger.crt'),
    read: (file) => fs.readFile(file, 'utf8'),
    remove: tmp.remove,
  };
}
