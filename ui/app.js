// The dashboard's shell: the login form when authorization is on, and the tabs. The API helper
// is in api.js, the views in views.js, the charts in metrics.js.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, html, onNeedLogin, TOKEN_KEY } from './api.js';
import { DocumentsView, GroupView, LogView, QueryView, WatchView } from './views.js';
import { MetricsView } from './metrics.js';

function Login({ onDone }) {
  const [user, setUser] = useState('admin@localhost');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = async (e) => {
    e.preventDefault();
    const res = await fetch('/core/authn/basic', {
      method: 'POST',
      headers: { authorization: `Basic ${btoa(`${user}:${password}`)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requestType: 'LOGIN' }),
    });
    const token = res.headers.get('x-xenon-auth-token');
    if (res.status !== 200 || !token) {
      setError(res.status === 403 ? 'Unknown user or wrong password' : `Login failed (${res.status})`);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    onDone();
  };
  return html`<form class="login card" onSubmit=${submit}>
    <h2>Sign in to Krypton</h2>
    <p class="muted">Authorization is on: sign in with a user of this group.</p>
    <input name="user" placeholder="email" value=${user} onInput=${(e) => setUser(e.target.value)} />
    <input name="password" type="password" placeholder="password" value=${password} onInput=${(e) => setPassword(e.target.value)} />
    <button class="primary" type="submit">Sign in</button>
    ${error && html`<p class="error">${error}</p>`}
  </form>`;
}

const TABS = [
  ['group', 'Group', GroupView],
  ['metrics', 'Throughput & latency', MetricsView],
  ['documents', 'Documents', DocumentsView],
  ['query', 'Query', QueryView],
  ['log', 'Process log', LogView],
  ['watch', 'Watch', WatchView],
];

function currentTab() {
  const name = location.hash.replace(/^#\/?/, '').split('?')[0];
  return TABS.some(([n]) => n === name) ? name : 'group';
}

function App() {
  const [tab, setTab] = useState(currentTab());
  const [state, setState] = useState({ phase: 'loading' });
  const load = async () => {
    const r = await api('GET', '/core/management');
    if (r.status === 200) setState({ phase: 'ready', host: r.body });
    else if (r.status === 401 || r.status === 403) setState({ phase: 'login' });
    else setState({ phase: 'error', text: `GET /core/management answered ${r.status}` });
  };
  onNeedLogin(() => setState({ phase: 'login' }));
  useEffect(() => {
    load();
    const onHash = () => setTab(currentTab());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  if (state.phase === 'loading') return html`<p class="muted">Loading…</p>`;
  if (state.phase === 'login') return html`<${Login} onDone=${load} />`;
  if (state.phase === 'error') return html`<p class="error">${state.text}</p>`;
  const View = TABS.find(([n]) => n === tab)[2];
  const signedIn = sessionStorage.getItem(TOKEN_KEY);
  const signOut = async () => {
    await api('POST', '/core/authn/basic', { requestType: 'LOGOUT' });
    sessionStorage.removeItem(TOKEN_KEY);
    setState({ phase: 'login' });
  };
  return html`<header>
      <h1>Krypton</h1>
      <span class="host">${state.host.id} · ${state.host.publicUri}</span>
      <span class="right">${signedIn && html`<button onClick=${signOut}>Sign out</button>`}</span>
    </header>
    <nav>
      ${TABS.map(([name, label]) => html`<a href="#${name}" id="tab-${name}" class=${tab === name ? 'active' : ''}>${label}</a>`)}
    </nav>
    <main><${View} host=${state.host} /></main>`;
}

render(html`<${App} />`, document.getElementById('app'));
