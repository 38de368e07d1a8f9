/**
 * Proof of membership between hosts. A request is from a member when it carries the group's
 * shared secret (`x-krypton-peer-secret`, from --peerSecret or --peerSecretFile; compared as
 * SHA-256 digests with crypto.timingSafeEqual, so neither the length nor the content of the
 * secret leaks through timing) or arrives on a TLS connection whose client certificate the
 * server verified. Peer endpoints (lib/peer-requests.ts) refuse anyone else with 403 once either
 * check is configured; with neither, they stay open as before, and a host with peers says so in
 * its log at start. With authorization on and no secret, a lone host makes up a random one for
 * its own calls to itself (tasks, watches, logins), which no one else can present.
 *
 * The PeerClient attaches the secret to every request except those marked external (watch
 * callbacks to subscriber URLs), so it only ever goes to self and to members.
 */

import crypto from 'node:crypto';
import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import fs from 'fs-extra';
import type { Logger } from 'pino';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import { PEER_SECRET_SHAPE, peerAuthConfigProblem, type Config } from '../base/config.js';

export const PEER_SECRET_HEADER = 'x-krypton-peer-secret';

export type SecretSource = 'configured' | 'random' | 'none';

export class PeerAuth {
  private readonly digest: Buffer | undefined;

  private constructor(
    private readonly secret: string | undefined,
    readonly source: SecretSource,
    /** Client certificates are requested and verified on the TLS listener (--sslClientAuthMode WANT or NEED). */
    readonly clientCertificates: boolean,
  ) {
    this.digest = secret === undefined ? undefined : sha256(secret);
  }

  /** For tests and tools: a PeerAuth with this secret (or none). */
  static withSecret(secret: string | undefined, clientCertificates = false): PeerAuth {
    return new PeerAuth(secret, secret === undefined ? 'none' : 'configured', clientCertificates);
  }

  /** Reads the secret (from the flag or the file) and checks the flags fit together. */
  static async fromConfig(config: Config): Promise<PeerAuth> {
    const problem = peerAuthConfigProblem(config);
    if (problem) throw new KryptonError('INVALID_SETUP', problem);
    const mode = config.sslClientAuthMode;
    const clientCertificates = mode === 'WANT' || mode === 'NEED';
    let secret = config.peerSecret;
    if (config.peerSecretFile !== undefined) {
      let text: string;
      try {
        text = await fs.readFile(config.peerSecretFile, 'utf8');
      } catch (e) {
        throw new KryptonError('INVALID_SETUP', `cannot read --peerSecretFile ${config.peerSecretFile}: ${(e as Error).message}`);
      }
      secret = text.split(/\r?\n/)[0]!.trim();
    }
    if (secret !== undefined) {
      if (!PEER_SECRET_SHAPE.test(secret)) {
        throw new KryptonError(
          'INVALID_SETUP',
          `the peer secret needs at least ${limits.peerSecretCharsMin} printable characters and no spaces`,
        );
      }
      return new PeerAuth(secret, 'configured', clientCertificates);
    }
    if (config.isAuthorizationEnabled) return new PeerAuth(crypto.randomBytes(32).toString('base64url'), 'random', clientCertificates);
    return new PeerAuth(undefined, 'none', clientCertificates);
  }

  /** Whether peer endpoints refuse non-members. */
  get enforced(): boolean {
    return this.source !== 'none' || this.clientCertificates;
  }

  /** Headers the PeerClient adds to requests for members and self. */
  outgoingHeaders(): Record<string, string> {
    return this.secret === undefined ? {} : { [PEER_SECRET_HEADER]: this.secret };
  }

  isMember(req: http.IncomingMessage): boolean {
    const presented = req.headers[PEER_SECRET_HEADER];
    if (this.digest !== undefined && typeof presented === 'string') {
      // Digests have equal lengths whatever was presented, so the comparison runs in constant time.
      if (crypto.timingSafeEqual(sha256(presented), this.digest)) return true;
    }
    const socket = req.socket as Partial<TLSSocket>;
    if (socket.encrypted && socket.authorized && typeof socket.getPeerCertificate === 'function') {
      const cert = socket.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0) return true;
    }
    return false;
  }

  /** The one start-time line about open peer endpoints. */
  warnIfOpen(logger: Logger, hasPeers: boolean): void {
    if (!this.enforced && hasPeers) {
      logger.warn(
        'peer endpoints (replication, synchronization, gossip) accept requests from anyone: start every host with --peerSecretFile (or client certificates) to limit them to members',
      );
    }
  }
}

function sha256(s: string): Buffer {
  return crypto.createHash('sha256').update(s, 'utf8').digest();
}
