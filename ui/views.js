// The dashboard's views, each reading the host's own API: the group (members, quorum, who owns
// what share of the keys), documents (every retained version and a diff between two), queries
// (a query task builder and OData), the process log, and a live watch over server-sent events.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, html, useRefresh } from './api.js';

const GROUP = '/core/node-groups/default';
const SELECTOR = '/core/node-selectors/default';
/** Keys sampled to show how the selector shares links among members. */
const SHARE_SAMPLES = 64;

export function GroupView({ host }) {
  const [group, setGroup] = useState(null);
  const [ready, setReady] = useState(null);
  const [share, setShare] = useState({ key: '', counts: {} });
  useRefresh(2000, async () => {
    const [g, r] = await Promise.all([api('GET', GROUP), api('GET', '/readyz')]);
    if (g.status === 200) setGroup(g.body);
    setReady(r.body);
  });
  const nodes = group ? Object.values(group.nodes).sort((a, b) => a.id.localeCompare(b.id)) : [];
  const membersKey = nodes.map((n) => `${n.id}:${n.status}`).join(',');
  useEffect(() => {
    if (!membersKey || share.key === membersKey) return;
    (async () => {
      const counts = {};
      const answers = await Promise.all(
        Array.from({ length: SHARE_SAMPLES }, (_, i) => api('POST', SELECTOR, { key: `/core/examples/share-sample-${i}` })),
      );
      for (const a of answers) if (a.status === 200) counts[a.body.ownerNodeId] = (counts[a.body.ownerNodeId] ?? 0) + 1;
      setShare({ key: membersKey, counts });
    })();
  }, [membersKey]);
  if (!group) return html`<p class="muted">Loading the group…</p>`;
  const self = group.nodes[host.id];
  const available = nodes.filter((n) => n.status === 'AVAILABLE').length;
  return html`<div class="row">
      <div class="card grow" id="group-summary">
        <h2>Node group ${group.documentSelfLink}</h2>
        <div class="kv">
          <span>members</span><span>${nodes.length} (${available} AVAILABLE)</span>
          <span>membership quorum</span><span>${self?.membershipQuorum ?? '?'}</span>
          <span>this host</span><span class="mono">${host.id}</span>
          <span>ready</span>
          <span>
            <span class="status ${ready?.status === 'ok' ? 'ok' : 'bad'}" id="ready">${ready?.status ?? '?'}</span>
            ${ready?.reasons && html` <span class="muted">${ready.reasons.join('; ')}</span>`}
          </span>
        </div>
      </div>
    </div>
    <div class="card" id="group-members">
      <h2>Members</h2>
      <table>
        <thead>
          <tr><th>id</th><th>status</th><th>address</th><th>quorum</th><th>version</th><th>share of links</th></tr>
        </thead>
        <tbody>
          ${nodes.map((n) => {
            const pct = share.key ? Math.round(((share.counts[n.id] ?? 0) / SHARE_SAMPLES) * 100) : null;
            return html`<tr class="member">
              <td class="mono">${n.id}${n.id === host.id ? ' (this host)' : ''}</td>
              <td><span class="status ${n.status}">${n.status}</span></td>
              <td class="mono">${n.groupReference.replace(GROUP, '')}</td>
              <td>${n.membershipQuorum}</td>
              <td>${n.documentVersion}</td>
              <td style="min-width:160px">
                ${pct === null ? html`<span class="muted">…</span>` : html`<div class="bar" style="width:${pct}%"></div>${pct}%`}
              </td>
            </tr>`;
          })}
        </tbody>
      </table>
      <p class="muted">Share: owners of ${SHARE_SAMPLES} sample keys as the default selector picks them (Xenon's FNV64 ring).</p>
    </div>`;
}

/** Factories this host serves, from GET /. */
function useFactories() {
  const [factories, setFactories] = useState([]);
  useEffect(() => {
    api('GET', '/').then((r) => {
      const links = (r.body?.documentLinks ?? []).filter((l) => !/^\/core\/(management|query-tasks|local-query-tasks)$/.test(l));
      setFactories(links);
    });
  }, []);
  return factories;
}

/** Flattens a JSON value into path → printed value, for the diff. */
function flatten(v, prefix = '', out = {}) {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const k of Object.keys(v).sort()) flatten(v[k], prefix ? `${prefix}.${k}` : k, out);
    if (Object.keys(v).length === 0 && prefix) out[prefix] = '{}';
  } else out[prefix] = JSON.stringify(v);
  return out;
}

export function diffStates(a, b) {
  const fa = flatten(a ?? {});
  const fb = flatten(b ?? {});
  const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  return keys.map((k) => ({
    key: k,
    from: fa[k],
    to: fb[k],
    kind: fa[k] === fb[k] ? 'same' : fa[k] === undefined ? 'add' : fb[k] === undefined ? 'del' : 'change',
  }));
}

export function DocumentsView() {
  const factories = useFactories();
  const [factory, setFactory] = useState('');
  const [links, setLinks] = useState([]);
  const [link, setLink] = useState('');
  const [versions, setVersions] = useState([]);
  const [pick, setPick] = useState({ a: null, b: null });
  useEffect(() => {
    if (!factory && factories.length) setFactory(factories.includes('/core/examples') ? '/core/examples' : factories[0]);
  }, [factories]);
  useEffect(() => {
    if (!factory) return;
    api('GET', factory).then((r) => setLinks((r.body?.documentLinks ?? []).slice().sort()));
  }, [factory]);
  useEffect(() => {
    if (!link) return;
    (async () => {
      const latest = await api('GET', link);
      if (latest.status !== 200) return setVersions([]);
      const last = latest.body.documentVersion;
      const from = Math.max(0, last - 49);
      const all = await Promise.all(Array.from({ length: last - from + 1 }, (_, i) => api('GET', `${link}?documentVersion=${from + i}`)));
      const kept = all.map((r, i) => ({ version: from + i, state: r.status === 200 ? r.body : null }));
      setVersions(kept);
      const present = kept.filter((v) => v.state);
      setPick({ a: present.length > 1 ? present.at(-2).version : present.at(-1)?.version, b: present.at(-1)?.version });
    })();
  }, [link]);
  const va = versions.find((v) => v.version === pick.a);
  const vb = versions.find((v) => v.version === pick.b);
  const rows = va && vb ? diffStates(va.state, vb.state) : [];
  return html`<div class="row">
    <div class="card" style="width:280px">
      <h2>Factory</h2>
      <select id="factory" value=${factory} onChange=${(e) => {
        setFactory(e.target.value);
        setLink('');
        setVersions([]);
      }}>
        ${factories.map((f) => html`<option value=${f}>${f}</option>`)}
      </select>
      <p class="muted">${links.length} documents</p>
      <ul class="links" id="document-links">
        ${links.map((l) => html`<li><a class=${l === link ? 'selected' : ''} onClick=${() => setLink(l)}>${l.slice(factory.length + 1)}</a></li>`)}
      </ul>
    </div>
    <div class="grow">
      ${!link && html`<div class="card muted">Pick a document to see its versions.</div>`}
      ${
        link &&
        html`<div class="card" id="versions">
        <h2>${link}: ${versions.length} versions</h2>
        <table>
          <thead><tr><th>version</th><th>action</th><th>updated</th><th>owner</th><th>diff from</th><th>diff to</th></tr></thead>
          <tbody>
            ${versions
              .slice()
              .reverse()
              .map(
                (v) => html`<tr class="version">
              <td>${v.version}</td>
              ${
                v.state
                  ? html`<td>${v.state.documentUpdateAction}</td><td>${new Date(v.state.documentUpdateTimeMicros / 1000).toISOString()}</td><td class="mono">${v.state.documentOwner}</td>
                  <td><input type="radio" name="a" checked=${pick.a === v.version} onChange=${() => setPick({ ...pick, a: v.version })} /></td>
                  <td><input type="radio" name="b" checked=${pick.b === v.version} onChange=${() => setPick({ ...pick, b: v.version })} /></td>`
                  : html`<td colspan="5" class="muted">no longer retained</td>`
              }
            </tr>`,
              )}
          </tbody>
        </table>
      </div>
      <div class="card diff" id="diff">
        <h2>Diff: version ${pick.a} → ${pick.b}</h2>
        <table>
          <thead><tr><th>field</th><th>version ${pick.a}</th><th>version ${pick.b}</th></tr></thead>
          <tbody>
            ${rows
              .filter((r) => r.kind !== 'same')
              .map(
                (r) => html`<tr class=${r.kind === 'add' ? 'add' : r.kind === 'del' ? 'del' : 'change'}>
              <td>${r.key}</td><td class="del">${r.from ?? ''}</td><td class="add">${r.to ?? ''}</td></tr>`,
              )}
          </tbody>
        </table>
        <p class="muted">${rows.filter((r) => r.kind === 'same').length} fields unchanged.</p>
      </div>
      <div class="card"><h2>Version ${pick.b}</h2><pre id="document-state">${JSON.stringify(vb?.state ?? null, null, 2)}</pre></div>`
      }
    </div>
  </div>`;
}

const MATCH_TYPES = ['TERM', 'PREFIX', 'WILDCARD'];

function querySpecOf(factory, clauses) {
  const terms = [
    { occurance: 'MUST_OCCUR', term: { propertyName: 'documentSelfLink', matchValue: `${factory}/*`, matchType: 'WILDCARD' } },
    ...clauses
      .filter((c) => c.field && c.value !== '')
      .map((c) => ({
        occurance: c.not ? 'MUST_NOT_OCCUR' : 'MUST_OCCUR',
        term: { propertyName: c.field, matchValue: c.value, matchType: c.type },
      })),
  ];
  return {
    taskInfo: { isDirect: true },
    querySpec: { options: ['EXPAND_CONTENT'], query: { booleanClauses: terms } },
  };
}

export function QueryView() {
  const factories = useFactories();
  const [factory, setFactory] = useState('/core/examples');
  const [clauses, setClauses] = useState([{ field: 'name', value: '', type: 'WILDCARD', not: false }]);
  const [result, setResult] = useState(null);
  const [odata, setOdata] = useState("name eq '*'");
  const spec = querySpecOf(factory, clauses);
  const set = (i, patch) => setClauses(clauses.map((c, j) => (j === i ? { ...c, ...patch } : c)));
  const show = (r, what) => {
    const results = r.body?.results ?? r.body;
    const docs = results?.documents ? Object.values(results.documents) : [];
    setResult({ status: r.status, what, docs, links: results?.documentLinks ?? [], text: r.status >= 300 ? r.text : '' });
  };
  const run = async () => show(await api('POST', '/core/query-tasks', spec), 'query task');
  const runOdata = async () => show(await api('GET', `${factory}?$filter=${encodeURIComponent(odata)}&$top=100`), 'OData');
  return html`<div class="row">
    <div class="card grow">
      <h2>Query task</h2>
      <p>
        Documents of
        <select id="query-factory" value=${factory} onChange=${(e) => setFactory(e.target.value)}>
          ${factories.map((f) => html`<option value=${f}>${f}</option>`)}
        </select>
        where
      </p>
      ${clauses.map(
        (c, i) => html`<div class="clause" style="margin-bottom:6px">
        <select value=${c.not ? 'not' : 'is'} onChange=${(e) => set(i, { not: e.target.value === 'not' })}><option value="is">must</option><option value="not">must not</option></select>
        <input class="field" placeholder="field (name, counter, keyValues.k)" value=${c.field} onInput=${(e) => set(i, { field: e.target.value })} />
        <select value=${c.type} onChange=${(e) => set(i, { type: e.target.value })}>${MATCH_TYPES.map((t) => html`<option>${t}</option>`)}</select>
        <input class="value" placeholder="value (* is a wildcard)" value=${c.value} onInput=${(e) => set(i, { value: e.target.value })} />
      </div>`,
      )}
      <button onClick=${() => setClauses([...clauses, { field: '', value: '', type: 'TERM', not: false }])}>+ clause</button>
      <button class="primary" id="run-query" onClick=${run}>Run query task</button>
      <h2 style="margin-top:12px">Spec (POST /core/query-tasks)</h2>
      <pre id="query-spec">${JSON.stringify(spec, null, 2)}</pre>
    </div>
    <div class="card grow">
      <h2>OData</h2>
      <p class="muted">GET ${factory}?$filter=…</p>
      <input id="odata-filter" style="width:90%" value=${odata} onInput=${(e) => setOdata(e.target.value)} />
      <p><button class="primary" id="run-odata" onClick=${runOdata}>Run $filter</button></p>
      <h2>Results</h2>
      ${!result && html`<p class="muted">Run a query.</p>`}
      ${
        result &&
        html`<div id="query-results">
        <p>${result.what}: status ${result.status}, ${result.links.length} documents</p>
        ${result.text && html`<pre class="error">${result.text}</pre>`}
        <table><thead><tr><th>link</th><th>version</th><th>name</th></tr></thead>
          <tbody>${result.docs.map((d) => html`<tr class="result"><td class="mono">${d.documentSelfLink}</td><td>${d.documentVersion}</td><td>${d.name ?? ''}</td></tr>`)}</tbody>
        </table>
      </div>`
      }
    </div>
  </div>`;
}

const LEVELS = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export function LogView() {
  const [lines, setLines] = useState([]);
  const [filter, setFilter] = useState('');
  useRefresh(2000, async () => {
    const r = await api('GET', '/core/management/process-log?lineCount=1000');
    if (r.status !== 200) return;
    setLines(
      r.body.items.map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return { msg: l };
        }
      }),
    );
  });
  const shown = lines.filter((l) => !filter || JSON.stringify(l).toLowerCase().includes(filter.toLowerCase())).reverse();
  return html`<div class="card log">
    <h2>Process log (GET /core/management/process-log), newest first</h2>
    <input id="log-filter" placeholder="filter" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
    <table>
      <thead><tr><th>time</th><th>level</th><th>message</th><th>fields</th></tr></thead>
      <tbody id="log-lines">
        ${shown.map((l) => {
          const { time, level, msg, host, port, pid, hostname, ...rest } = l;
          return html`<tr class="level-${level}">
            <td class="mono">${time ? new Date(time).toISOString().slice(11, 23) : ''}</td>
            <td>${LEVELS[level] ?? level}</td><td>${msg}</td>
            <td class="mono">${Object.keys(rest).length ? JSON.stringify(rest) : ''}</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </div>`;
}

export function WatchView() {
  const [link, setLink] = useState('/core/examples');
  const [events, setEvents] = useState([]);
  const [open, setOpen] = useState(false);
  const source = useRef(null);
  const stop = () => {
    source.current?.close();
    source.current = null;
    setOpen(false);
  };
  const start = () => {
    stop();
    setEvents([]);
    // Same origin: the login cookie goes with the stream, as EventSource sends no headers.
    const es = new EventSource(`${link}/subscriptions/stream`);
    const add = (type) => (e) => {
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        data = { raw: e.data };
      }
      setEvents((list) => [{ type, id: e.lastEventId, data, at: new Date().toISOString().slice(11, 23) }, ...list].slice(0, 200));
    };
    for (const t of ['update', 'expired', 'gap', 'error']) es.addEventListener(t, add(t));
    es.onopen = () => setOpen(true);
    source.current = es;
  };
  useEffect(() => stop, []);
  return html`<div class="card">
    <h2>Watch a document or a factory (server-sent events)</h2>
    <input id="watch-link" style="width:420px" value=${link} onInput=${(e) => setLink(e.target.value)} />
    <button class="primary" id="watch-start" onClick=${start}>Watch</button>
    <button onClick=${stop}>Stop</button>
    <span class="status ${open ? 'ok' : ''}" id="watch-state">${open ? 'streaming' : 'stopped'}</span>
    <table style="margin-top:10px">
      <thead><tr><th>received</th><th>event</th><th>id</th><th>link</th><th>version</th><th>state</th></tr></thead>
      <tbody id="watch-events">
        ${events.map(
          (e) => html`<tr class="event">
          <td class="mono">${e.at}</td><td>${e.type}</td><td class="mono">${e.id}</td>
          <td class="mono">${e.data.documentSelfLink ?? ''}</td><td>${e.data.documentVersion ?? ''}</td>
          <td class="mono">${JSON.stringify(e.data).slice(0, 120)}</td>
        </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
