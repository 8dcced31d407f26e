#!/usr/bin/env node
// Node `ws` with perMessageDeflate (its defaults: zlib level 6, 15-bit windows, context
// takeover; threshold 0 so that every message is compressed, as in wshandle's run), for
// benches/wsbench's "compressed JSON echo" (NODE_PATH as scripts/setup-test-env.sh prints):
//
//     node benches/node_deflate.mjs server                      prints its port; echoes
//     node benches/node_deflate.mjs client PORT CORPUS ROUNDS   prints echoes per second
//
// CORPUS is a JSON array of strings; the client sends each as a text message and waits for
// its echo before the next (one message in flight), ROUNDS times through the corpus.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
const deflate = { threshold: 0 };
const [role, port, corpusPath, rounds] = process.argv.slice(2);
setTimeout(() => process.exit(1), 600_000).unref();

if (role === 'server') {
  const server = new WebSocket.WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate });
  server.on('listening', () => process.stdout.write(`${server.address().port}\n`));
  server.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  process.stdin.on('data', () => process.exit(0));
  process.stdin.on('end', () => process.exit(0));
} else {
  const corpus = JSON.parse(readFileSync(corpusPath, 'utf8'));
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: deflate });
  let i = 0;
  let start = 0;
  const total = corpus.length * Number(rounds);
  ws.on('open', () => {
    start = process.hrtime.bigint();
    ws.send(corpus[0]);
  });
  ws.on('message', (data) => {
    if (data.length !== Buffer.byteLength(corpus[i % corpus.length])) process.exit(1);
    i += 1;
    if (i === total) {
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      process.stdout.write(`${total / secs}\n`);
      process.exit(0);
    }
    ws.send(corpus[i % corpus.length]);
  });
}
