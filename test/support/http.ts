/**
 * A small JSON client for tests on undici: every call returns status, parsed body and headers,
 * and never throws on a 4xx/5xx, so tests assert on what a curl user would see. One Agent per
 * client; tests close it.
 */

import { Agent, request } from 'undici';

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

export class Client {
  private readonly agent: Agent;
  /** `tls`: CAs to trust (and a client certificate to present) for an https:// base. */
  constructor(
    readonly base: string,
    tls?: { ca?: string; cert?: string; key?: string },
  ) {
    this.agent = new Agent({ keepAliveTimeout: 1000, ...(tls ? { connect: { ...tls } } : {}) });
  }

  async send<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> {
    const raw = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const res = await request(this.base + path, {
      method: method as 'GET',
      body: raw,
      headers: raw === undefined ? headers : { 'content-type': 'application/json', ...headers },
      dispatcher: this.agent,
    });
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.statusCode, body: parsed as T, text, headers: res.headers };
  }

  get<T = Record<string, unknown>>(path: string) {
    return this.send<T>('GET', path);
  }
  post<T = Record<string, unknown>>(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.send<T>('POST', path, body, headers);
  }
  patch<T = Record<string, unknown>>(path: string, body?: unknown) {
    return this.send<T>('PATCH', path, body);
  }
  put<T = Record<string, unknown>>(path: string, body?: unknown) {
    return this.send<T>('PUT', path, body);
  }
  delete<T = Record<string, unknown>>(path: string, body?: unknown) {
    return this.send<T>('DELETE', path, body);
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
