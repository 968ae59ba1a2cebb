/**
 * npm run bench:transport — the router↔shard hop on loopback: round trips/s and p99 at
 * concurrency 1 and 64 for a real lookup payload (a 4-shard RM1 query of batch 16: ~20 KiB
 * request, 20 KiB pooled response), for each transport candidate. Server in its own process.
 * gRPC (grpc-js) is not in the run: it was measured 30× slower than raw TCP here before, and
 * it would add a dependency the product does not use.
 */
import { fork } from 'node:child_process';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { FrameClient } from '../src/serving/frame-client.ts';
import { FrameType } from '../src/serving/frame.ts';
import { LatencyRecorder } from '../src/util/latency.ts';
import { renderTable } from '../src/util/format.ts';

const REQUEST_BYTES = 16 * 10 * 128 * 4 / 4 + 16 * 10 * 4; // ids for a quarter of RM1's lookups + offsets
const RESPONSE_BYTES = 16 * 10 * 32 * 4; // B × pieces × dim floats
const ROUNDS = process.argv.includes('--quick') ? 2000 : 20_000;
const payload = Buffer.alloc(REQUEST_BYTES, 3);

type Send = () => Promise<void>;

async function measure(send: Send, concurrency: number): Promise<{ rps: number; p50: number; p99: number }> {
  for (let i = 0; i < 500; i++) await send();
  const lat = new LatencyRecorder();
  let issued = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < ROUNDS) {
        issued++;
        const s = performance.now();
        await send();
        lat.recordMs(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { rps: ROUNDS / secs, p50: lat.percentileMs(50), p99: lat.percentileMs(99) };
}

const peer = fork(new URL('./transport-peer.ts', import.meta.url).pathname, [String(RESPONSE_BYTES)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
const ports = await new Promise<{ uds: string; frame: number; http1: number; http2: number }>((resolve) => peer.stdout!.once('data', (d) => resolve(JSON.parse(String(d)))));

const frame = new FrameClient({ host: '127.0.0.1', port: ports.frame });
const uds = new FrameClient({ path: ports.uds });
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const h1: Send = () =>
  new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: ports.http1, method: 'POST', path: '/lookup', agent, headers: { 'content-length': REQUEST_BYTES } }, (res) => {
      res.on('data', () => {});
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end(payload);
  });
const session = http2.connect(`http://127.0.0.1:${ports.http2}`);
const h2: Send = () =>
  new Promise((resolve, reject) => {
    const s = session.request({ ':method': 'POST', ':path': '/lookup' });
    s.on('data', () => {});
    s.on('end', () => resolve());
    s.on('error', reject);
    s.end(payload);
  });
const candidates: [string, Send][] = [
  ['raw TCP, length-prefixed frames (shardwise)', async () => void (await frame.request(FrameType.LOOKUP_REQUEST, [payload], 10_000))],
  ['Unix socket, length-prefixed frames (shardwise, local)', async () => void (await uds.request(FrameType.LOOKUP_REQUEST, [payload], 10_000))],
  ['HTTP/1.1 keep-alive, binary body', h1],
  ['HTTP/2, one session', h2],
];

console.error(`bench:transport: ${ROUNDS} round trips per cell, request ${REQUEST_BYTES} B, response ${RESPONSE_BYTES} B`);
const rows: (string | number)[][] = [];
const base: Record<number, number> = {};
for (const [name, send] of candidates) {
  for (const c of [1, 64]) {
    const r = await measure(send, c);
    base[c] ??= r.rps;
    rows.push([name, c, r.rps.toFixed(0), r.p50.toFixed(3), r.p99.toFixed(3), `${(r.rps / base[c]).toFixed(2)}×`]);
  }
}
console.log(renderTable(['transport', 'concurrency', 'round trips/s', 'p50 ms', 'p99 ms', 'vs frames'], rows));
frame.close();
uds.close();
agent.destroy();
session.close();
peer.disconnect();
