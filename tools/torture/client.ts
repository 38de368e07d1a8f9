/**
 * Clients of the group and the record of what they did. Each client process talks to one host
 * (clients are spread over the hosts, so most requests are forwarded to the owner) and records
 * every operation with its call and return times and outcome: a 2xx is `ok`, any other 4xx but
 * 408 is `fail` (a definite non-effect), and a timeout, a broken connection, a 408 or a 5xx is
 * `unknown` (it may or may not have taken effect). `Journal` keeps every operation of every
 * workload, for the availability figures per fault.
 */

import { Agent, request } from 'undici';
import type { Op } from '../check/history.js';

export type Outcome = 'ok' | 'fail' | 'unknown';

/** The fields of a document, node group or management answer the workloads read; the rest is passed over. */
export interface AnswerBody {
  name?: string;
  documentVersion?: number;
  documentEpoch?: number;
  documentSelfLink?: string;
  documentUpdateAction?: string;
  tags?: string[];
  nodes?: Record<string, { id: string; status: string }>;
  synchStats?: { running?: number | boolean; passPending?: boolean };
  [field: string]: unknown;
}

export interface Answer {
  outcome: Outcome;
  status?: number;
  body?: AnswerBody;
  error?: string;
}

export interface JournalEntry {
  workload: string;
  call: number;
  ret: number;
  outcome: Outcome;
  host: number;
}

export class Journal {
  readonly entries: JournalEntry[] = [];
  readonly ops: Op[] = [];
  private nextId = 0;
  id(): number {
    return this.nextId++;
  }
}

export function outcomeOf(status: number): Outcome {
  if (status >= 200 && status < 300) return 'ok';
  if (status >= 400 && status < 500 && status !== 408) return 'fail';
  return 'unknown';
}

/** One client connection pool to one host. */
export class HostClient {
  private readonly agent: Agent;
  constructor(
    readonly host: number,
    readonly base: string,
    readonly timeoutMs: number,
    private readonly journal: Journal,
    private readonly workload: string,
  ) {
    this.agent = new Agent({ keepAliveTimeout: 2000, connectTimeout: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  /** Sends one request and records it in the journal; never throws. */
  async send(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer & { call: number; ret: number }> {
    const call = performance.now();
    let a: Answer;
    try {
      const r = await request(this.base + path, {
        method: method as 'GET',
        dispatcher: this.agent,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await r.body.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      // A body that is not JSON stays its text, for the journal; the workloads read only JSON answers.
      a = { outcome: outcomeOf(r.statusCode), status: r.statusCode, body: parsed as AnswerBody };
    } catch (e) {
      a = { outcome: 'unknown', error: (e as Error).message };
    }
    const ret = performance.now();
    this.journal.entries.push({ workload: this.workload, call, ret, outcome: a.outcome, host: this.host });
    return { ...a, call, ret };
  }

  close(): Promise<void> {
    return this.agent.destroy();
  }
}
