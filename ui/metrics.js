// Live throughput and latency of this host, from its own GET /metrics every second: request
// rate by verb, mean and p99 request latency from the histogram's bucket deltas, and the log's
// fsync p99, drawn with uPlot over the last few minutes.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './api.js';

const POINTS_MAX = 300;
/** Route families of peer traffic, probes and scrapes: left out of the client request charts. */
const NOT_CLIENT = new Set(['/metrics', '/core/node-selectors', '/core/node-groups', '/livez', '/readyz']);
const client = (l) => !NOT_CLIENT.has(l.factory);

/** Prometheus text → [{ name, labels, value }]. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function total(samples, name, pred = () => true) {
  return samples.filter((s) => s.name === name && pred(s.labels)).reduce((n, s) => n + s.value, 0);
}

/** Bucket counts of a histogram summed over its label sets: Map(le → count). */
function buckets(samples, name, pred = () => true) {
  const out = new Map();
  for (const s of samples) if (s.name === `${name}_bucket` && pred(s.labels)) out.set(s.labels.le, (out.get(s.labels.le) ?? 0) + s.value);
  return out;
}

/** The q-quantile of the observations between two scrapes, from cumulative bucket deltas. */
function quantile(prev, now, q) {
  const les = [...now.keys()].sort((a, b) => Number(a) - Number(b));
  const count = (now.get('+Inf') ?? 0) - (prev.get('+Inf') ?? 0);
  if (count <= 0) return null;
  for (const le of les) if ((now.get(le) ?? 0) - (prev.get(le) ?? 0) >= q * count) return le === '+Inf' ? null : Number(le);
  return null;
}

function Chart({ id, title, series, data }) {
  const el = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const opts = {
      width: Math.max(320, (el.current.clientWidth || 600) - 10),
      height: 220,
      series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2, spanGaps: true }))],
      axes: [{}, { size: 60 }],
    };
    plot.current = new uPlot(opts, data, el.current);
    return () => plot.current.destroy();
  }, []);
  useEffect(() => plot.current?.setData(data), [data]);
  return html`<div class="card grow" id=${id}><h2>${title}</h2><div ref=${el}></div></div>`;
}

export function MetricsView() {
  const [history, setHistory] = useState({ t: [], rps: [], writes: [], mean: [], p99: [], fsync: [] });
  const [latest, setLatest] = useState(null);
  const prev = useRef(null);
  useEffect(() => {
    let stop = false;
    let timer;
    const tick = async () => {
      try {
        const res = await fetch('/metrics');
        const samples = parseMetrics(await res.text());
        const now = {
          at: Date.now() / 1000,
          requests: total(samples, 'krypton_http_requests_total', client),
          writes: total(samples, 'krypton_http_requests_total', (l) => l.verb !== 'GET' && client(l)),
          sum: total(samples, 'krypton_http_request_duration_seconds_sum', client),
          count: total(samples, 'krypton_http_request_duration_seconds_count', client),
          latency: buckets(samples, 'krypton_http_request_duration_seconds', client),
          fsync: buckets(samples, 'krypton_log_fsync_duration_seconds'),
          samples,
        };
        const p = prev.current;
        if (p) {
          const dt = now.at - p.at;
          const dc = now.count - p.count;
          setHistory((h) => {
            const push = (a, v) => [...a, v].slice(-POINTS_MAX);
            return {
              t: push(h.t, now.at),
              rps: push(h.rps, (now.requests - p.requests) / dt),
              writes: push(h.writes, (now.writes - p.writes) / dt),
              mean: push(h.mean, dc > 0 ? ((now.sum - p.sum) / dc) * 1000 : null),
              p99: push(h.p99, ((q) => (q === null ? null : q * 1000))(quantile(p.latency, now.latency, 0.99))),
              fsync: push(h.fsync, ((q) => (q === null ? null : q * 1000))(quantile(p.fsync, now.fsync, 0.99))),
            };
          });
        }
        prev.current = now;
        setLatest(now);
      } catch (e) {
        console.error(e);
      }
      if (!stop) timer = setTimeout(tick, 1000);
    };
    tick();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, []);
  const v = (name) => (latest ? total(latest.samples, name) : 0);
  return html`<div class="row">
      <${Chart}
        id="chart-throughput"
        title="Client requests per second"
        series=${[['all requests', '#2f6fdb'], ['writes', '#1f9d55']]}
        data=${[history.t, history.rps, history.writes]}
      />
      <${Chart}
        id="chart-latency"
        title="Latency (ms)"
        series=${[['mean', '#2f6fdb'], ['p99 (bucket bound)', '#d64545'], ['fsync p99', '#c98a00']]}
        data=${[history.t, history.mean, history.p99, history.fsync]}
      />
    </div>
    <div class="card">
      <h2>Now</h2>
      <div class="kv mono" id="metrics-now">
        <span>requests answered</span><span>${v('krypton_http_requests_total')}</span>
        <span>log records durable</span><span>${v('krypton_log_appends_total')}</span>
        <span>fsyncs</span><span>${v('krypton_log_fsyncs_total')}</span>
        <span>log bytes</span><span>${v('krypton_log_bytes')}</span>
        <span>index links / versions</span><span>${v('krypton_index_links')} / ${v('krypton_index_versions')}</span>
        <span>forwarded requests</span><span>${v('krypton_forwarded_requests_total')}</span>
        <span>replicated records</span><span>${v('krypton_replication_records_total')}</span>
        <span>parked requests</span><span>${v('krypton_parked_requests')}</span>
        <span>membership changes seen</span><span>${v('krypton_membership_changes_total')}</span>
      </div>
      <p class="muted">From <a href="/metrics">/metrics</a>, every second. Point Prometheus at every host for history.</p>
    </div>`;
}
