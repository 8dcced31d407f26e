#!/usr/bin/env node
// permessage-deflate peer for wshandle's tests, built on Node's `ws` with perMessageDeflate
// (threshold 0: every message compressed; context takeover; 15-bit windows).
//
// Usage (NODE_PATH as for node_client.mjs):
//     node tests/peers/deflate_peer.mjs --role client --url URL [--deadline SECS]
//     node tests/peers/deflate_peer.mjs --role server [--deadline SECS]
//
// Every compressed message the peer receives is counted (ws inflates its frames through
// PerMessageDeflate.decompress, the last with fin set): `compressed_in`. One JSON object per line on stdout:
//
//   client: {"event":"echo","ok":true,"extensions":"permessage-deflate","compressed_in":N,
//            "close_code":1000,"close_reason":"done"}
//   server: PORT <n>, then per connection
//           {"event":"closed","extensions":"permessage-deflate","compressed_in":N,"messages":M,
//            "rcvd_code":1000,"rcvd_reason":"done"}
//   either: {"event":"error","where":"...","error":"..."}
//
// The client sends similar JSON texts, empty and tiny messages, 1 MiB of compressible and
// 200 KiB of random binary, and checks each echo; the server echoes every message.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

function emit(obj) {
  writeSync(1, JSON.stringify(obj) + '\n');
}

function fail(where, error) {
  emit({ event: 'error', where, error: String(error) });
  process.exit(1);
}

const require = createRequire(import.meta.url);
function load(name) {
  try {
    return require(name);
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
  }
  const here = path.dirname(fileURLToPath(import.meta.url));
  return require(path.resolve(here, '..', '..', 'target', 'test-node', 'node_modules', name));
}

const { values: args } = parseArgs({
  options: {
    role: { type: 'string' },
    url: { type: 'string' },
    deadline: { type: 'string', default: '60' },
  },
});
const deadline = Number(args.deadline);
setTimeout(() => {
  if (args.role === 'server') process.exit(0);
  fail('deadline', `not done after ${deadline} s`);
}, deadline * 1000).unref();

const WebSocket = load('ws');
// (not exported by the package: loaded by its path, next to ws's entry point)
const wsMain = (() => {
  try {
    return require.resolve('ws');
  } catch {
    const here = path.dirname(fileURLToPath(import.meta.url));
    return require.resolve(path.resolve(here, '..', '..', 'target', 'test-node', 'node_modules', 'ws'));
  }
})();
const PerMessageDeflate = require(path.join(path.dirname(wsMain), 'lib', 'permessage-deflate.js'));
let compressedIn = 0;
const decompress = PerMessageDeflate.prototype.decompress;
PerMessageDeflate.prototype.decompress = function (data, fin, cb) {
  if (fin) compressedIn += 1; // once per message: its last frame
  return decompress.call(this, data, fin, cb);
};
const deflate = { threshold: 0 };

function messages() {
  const out = [];
  for (let i = 0; i < 20; i++) {
    out.push({
      data: JSON.stringify({ type: 'trade', seq: i, symbol: 'BTC-USD', price: (43000 + i * 1.25).toFixed(2), size: '0.0125' }),
      binary: false,
    });
  }
  out.push({ data: '', binary: false });
  out.push({ data: Buffer.alloc(0), binary: true });
  out.push({ data: 'hi', binary: false });
  const text = Buffer.alloc(1 << 20);
  for (let i = 0; i < text.length; i++) text[i] = 'ABCD    \n'.charCodeAt((i * 7919) % 9);
  out.push({ data: text, binary: true });
  out.push({ data: randomBytes(200 * 1024), binary: true });
  return out;
}

if (args.role === 'client') {
  const ws = new WebSocket(args.url, { perMessageDeflate: deflate, maxPayload: 0 });
  const inbox = [];
  let wake = null;
  let closed = null;
  ws.on('error', (e) => fail('io', e.message || e));
  ws.on('message', (data, isBinary) => { inbox.push({ data, isBinary }); if (wake) wake(); });
  ws.on('close', (code, reason) => { closed = { code, reason: reason.toString() }; if (wake) wake(); });
  const next = async () => {
    while (inbox.length === 0) {
      if (closed) fail('echo', 'closed before the echo');
      await new Promise((r) => { wake = r; });
    }
    return inbox.shift();
  };
  ws.on('open', async () => {
    const ext = ws.extensions; // the names of the extensions agreed
    for (const m of messages()) {
      ws.send(m.data, { binary: m.binary });
      const got = await next();
      const want = Buffer.from(m.data);
      if (got.isBinary !== m.binary || !Buffer.from(got.data).equals(want)) {
        fail('echo', `echo differs: sent ${want.length} got ${got.data.length}`);
      }
    }
    ws.close(1000, 'done');
    while (!closed) await new Promise((r) => { wake = r; });
    emit({ event: 'echo', ok: true, extensions: ext, compressed_in: compressedIn, close_code: closed.code, close_reason: closed.reason });
    process.exit(0);
  });
} else {
  const server = new WebSocket.WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate, maxPayload: 0 });
  server.on('listening', () => writeSync(1, `PORT ${server.address().port}\n`));
  server.on('connection', (ws, req) => {
    compressedIn = 0;
    let n = 0;
    ws.on('message', (data, isBinary) => { n += 1; ws.send(data, { binary: isBinary }); });
    ws.on('close', (code, reason) => {
      emit({ event: 'closed', extensions: ws.extensions, compressed_in: compressedIn, messages: n, rcvd_code: code, rcvd_reason: reason.toString() });
    });
  });
}
