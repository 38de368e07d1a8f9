/**
 * The baseline for the HTTP benchmark: a bare koa server that parses a JSON body and echoes it,
 * with no routing, storage or durability. Prints `listening <port>` when ready.
 */

import http from 'node:http';
import Koa from 'koa';

const app = new Koa();
app.use(async (ctx) => {
  const chunks: Buffer[] = [];
  for await (const c of ctx.req) chunks.push(c as Buffer);
  ctx.body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
});
const server = http.createServer(app.callback());
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
