/**
 * The server side of bench:transport, in its own process: the same handler (take a request
 * payload, answer with a fixed-size response) behind each candidate transport. Prints its
 * ports as one JSON line.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { FrameServer } from '../src/serving/frame-server.ts';
import { FrameType } from '../src/serving/frame.ts';

const responseBytes = Number(process.argv[2]);
const response = Buffer.alloc(responseBytes, 7);

const frame = new FrameServer('bench', () => ({ type: FrameType.LOOKUP_RESPONSE, parts: [response] }));
const framePort = await frame.listen(0);
const udsPath = `${process.env.TMPDIR ?? '/tmp'}/shardwise-bench-${process.pid}.sock`;
const udsFrame = new FrameServer('bench-uds', () => ({ type: FrameType.LOOKUP_RESPONSE, parts: [response] }));
await udsFrame.listenPath(udsPath);

const h1 = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-length': responseBytes }).end(response));
});
h1.keepAliveTimeout = 60_000;
await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));

const h2 = http2.createServer();
h2.on('stream', (stream) => {
  stream.resume();
  stream.on('end', () => {
    stream.respond({ ':status': 200 });
    stream.end(response);
  });
});
await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));

console.log(JSON.stringify({ uds: udsPath, frame: framePort, http1: (h1.address() as { port: number }).port, http2: (h2.address() as { port: number }).port }));
process.on('disconnect', () => process.exit(0));
