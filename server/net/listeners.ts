/**
 * The sockets a host listens on: plain HTTP on `--port` unless it is -1, HTTPS on `--securePort`
 * when one is given, both serving the same request handler. The HTTPS port looks at each
 * connection's first byte: a TLS handshake goes to the TLS server, anything else is plain HTTP
 * sent to the wrong port and gets a 400 saying so, instead of a reset the user has to puzzle over.
 * Owns closing: idle connections first, then everything after the grace the host gives.
 */

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { limits } from '../../lib/limits.js';
import { errorResponse } from './http-errors.js';
import type { TlsServerOptions } from './tls.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface Listener {
  scheme: 'http' | 'https';
  port: number;
  /** The server that parses HTTP: requests, keep-alive and connection tracking live here. */
  server: http.Server | https.Server;
  /** The listening socket (the HTTP server itself for plain HTTP, the first-byte sniffer for HTTPS). */
  front: net.Server;
  /** Raw sockets accepted by an HTTPS front, handshaking or not, so a stop can cut them all. */
  raw?: Set<net.Socket>;
}

const TLS_HANDSHAKE = 0x16;

/** Writes a one-shot HTTP 400 to a plain HTTP request that reached the HTTPS port, then closes. */
function refusePlainHttp(socket: net.Socket, httpsUrl: string): void {
  // Drain what the client still sends so the close is a clean FIN, not a reset that would lose
  // the answer; the first-byte timeout still bounds a client that never closes.
  socket.on('data', () => undefined);
  const body = JSON.stringify(errorResponse(400, `This port speaks HTTPS; plain HTTP is refused here: use ${httpsUrl}`));
  socket.end(
    `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function listenOn(server: net.Server, port: number, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

export class Listeners {
  private constructor(readonly all: Listener[]) {}

  get http(): Listener | undefined {
    return this.all.find((l) => l.scheme === 'http');
  }
  get https(): Listener | undefined {
    return this.all.find((l) => l.scheme === 'https');
  }

  static async open(opts: {
    port: number;
    securePort?: number;
    bindAddress: string;
    tls?: TlsServerOptions;
    handler: Handler;
  }): Promise<Listeners> {
    const out: Listener[] = [];
    try {
      if (opts.port >= 0) {
        const server = http.createServer(opts.handler);
        server.keepAliveTimeout = limits.httpKeepAliveMs;
        out.push({ scheme: 'http', server, front: server, port: await listenOn(server, opts.port, opts.bindAddress) });
      }
      if (opts.securePort !== undefined && opts.tls) {
        const server = https.createServer({ ...opts.tls }, opts.handler);
        server.keepAliveTimeout = limits.httpKeepAliveMs;
        let url = '';
        const raw = new Set<net.Socket>();
        const front = net.createServer((socket) => {
          raw.add(socket);
          socket.once('close', () => raw.delete(socket));
          socket.setTimeout(limits.firstByteTimeoutMicros / 1000, () => socket.destroy());
          // Peek in paused mode ('readable' + read(1) + unshift): pausing a flowing socket before
          // handing it over leaves the TLS layer not reading, and handshakes then stall for seconds.
          socket.once('readable', () => {
            const first = socket.read(1) as Buffer | null;
            if (first === null) return; // closed before sending anything
            if (first[0] !== TLS_HANDSHAKE) {
              socket.unshift(first);
              return refusePlainHttp(socket, url);
            }
            socket.setTimeout(0);
            // The TLS socket takes what is buffered on the raw socket first, so nothing is lost.
            socket.unshift(first);
            server.emit('connection', socket);
          });
          socket.on('error', () => socket.destroy());
        });
        const port = await listenOn(front, opts.securePort, opts.bindAddress);
        url = `https://${opts.bindAddress}:${port}/`;
        out.push({ scheme: 'https', server, front, port, raw });
      }
    } catch (e) {
      await Promise.all(out.map((l) => new Promise((r) => l.front.close(r))));
      throw e;
    }
    return new Listeners(out);
  }

  /** Runs for every request from now on (the host uses it to answer `connection: close` while stopping). */
  onRequest(fn: Handler): void {
    for (const l of this.all) l.server.on('request', fn);
  }

  /** Stops accepting; resolves once every accepted connection has ended. */
  close(): Promise<void> {
    return Promise.all(this.all.map((l) => new Promise<void>((r) => l.front.close(() => r())))).then(() => undefined);
  }

  closeIdleConnections(): void {
    for (const l of this.all) l.server.closeIdleConnections();
  }

  closeAllConnections(): void {
    for (const l of this.all) {
      l.server.closeAllConnections();
      for (const s of l.raw ?? []) s.destroy();
    }
  }
}
