#!/usr/bin/env node
// Node `ws` echo server (no compression, its defaults otherwise) for benches/async's
// asynchronous echo benchmark (NODE_PATH as scripts/setup-test-env.sh prints):
//
//     node benches/node_echo.mjs      prints "PORT <n>"; echoes every message; exits when its
//                                     stdin closes, or after 600 s
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
setTimeout(() => process.exit(1), 600_000).unref();

const server = new WebSocket.WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
server.on('listening', () => process.stdout.write(`PORT ${server.address().port}\n`));
server.on('connection', (ws) => {
  ws._socket.setNoDelay(true);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
