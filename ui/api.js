// What every view shares: htm bound to preact, the API helper (the login token on every call),
// and a refresh loop that stops when the view goes away.
import { h } from 'preact';
import { useEffect } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);

export const TOKEN_KEY = 'krypton-auth-token';

/** Calls the host this page came from; answers { status, body, text }. A 401 or 403 without a token asks for a login. */
export async function api(method, path, body, headers = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const init = { method, headers: { ...headers } };
  if (token) init.headers['x-xenon-auth-token'] = token;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if ((res.status === 401 || res.status === 403) && !token) needLogin();
  return { status: res.status, body: parsed, text, headers: res.headers };
}

let needLogin = () => {};

/** Who to tell when a call without a token is refused: the shell shows the login form. */
export function onNeedLogin(fn) {
  needLogin = fn;
}

export function useRefresh(ms, fn, deps = []) {
  useEffect(() => {
    let stop = false;
    const tick = async () => {
      if (stop) return;
      try {
        await fn();
      } catch (e) {
        console.error(e);
      }
      if (!stop) timer = setTimeout(tick, ms);
    };
    let timer = setTimeout(tick, 0);
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, deps);
}
