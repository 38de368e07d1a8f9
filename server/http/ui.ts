/**
 * The dashboard at /core/ui (Xenon served its UI there): static files from the repository's
 * `ui/` folder and the few browser modules it imports (preact, its hooks, htm, uPlot) straight
 * from their npm packages, so nothing is built or bundled. Only the files named here are served,
 * read once and kept; everything the page shows comes from the host's own API (the page sends
 * the login token itself), so these files need no token and reveal nothing.
 */

import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const UI_PATH = '/core/ui';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The `ui/` folder: beside server/ in the repository, one level further up from dist/. */
function uiFolder(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'ui', 'index.html'))) return path.join(dir, 'ui');
    dir = path.dirname(dir);
  }
  return undefined;
}

/** URL path under /core/ui → file on disk. */
function files(): Map<string, string> {
  const out = new Map<string, string>();
  const ui = uiFolder();
  if (ui) for (const f of ['index.html', 'app.js', 'api.js', 'views.js', 'metrics.js', 'style.css']) out.set(`/${f}`, path.join(ui, f));
  const require = createRequire(import.meta.url);
  // The package's folder from its entry point: not every package exports its package.json.
  const pkg = (name: string) => {
    let dir = path.dirname(require.resolve(name));
    while (path.basename(dir) !== name && path.dirname(dir) !== dir) dir = path.dirname(dir);
    return dir;
  };
  const vendor: [string, string, string][] = [
    ['/vendor/preact.js', 'preact', 'dist/preact.module.js'],
    ['/vendor/hooks.js', 'preact', 'hooks/dist/hooks.module.js'],
    ['/vendor/htm.js', 'htm', 'dist/htm.module.js'],
    ['/vendor/uplot.js', 'uplot', 'dist/uPlot.esm.js'],
    ['/vendor/uplot.css', 'uplot', 'dist/uPlot.min.css'],
  ];
  for (const [url, name, file] of vendor) {
    try {
      out.set(url, path.join(pkg(name), file));
    } catch {
      // A package missing from node_modules: the page's console names what failed to load.
    }
  }
  return out;
}

export class Dashboard {
  private readonly paths = files();
  private readonly cache = new Map<string, Buffer>();

  /** Answers GET under /core/ui; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    if (url !== UI_PATH && !url.startsWith(`${UI_PATH}/`) && !url.startsWith(`${UI_PATH}?`)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const q = url.indexOf('?');
    const rest = (q < 0 ? url : url.slice(0, q)).slice(UI_PATH.length);
    if (rest === '') {
      // Relative module URLs in the page need the trailing slash.
      res.writeHead(302, { location: `${UI_PATH}/` });
      res.end();
      return true;
    }
    const file = this.paths.get(rest === '/' ? '/index.html' : rest);
    if (!file) return false;
    let body = this.cache.get(file);
    if (!body) {
      try {
        body = fs.readFileSync(file);
      } catch {
        return false;
      }
      this.cache.set(file, body);
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
}
