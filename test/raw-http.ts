import * as net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** An HTTP/1.1 request as bytes, with Connection: close so the answer ends with the connection. */
export function rawRequest(method: string, path: string, headers: Record<string, string | number> = {}, body: Buffer | string = ''): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const lines = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close'];
  const all: Record<string, string | number> = { 'content-length': b.length, ...headers };
  for (const [k, v] of Object.entries(all)) if (v !== '') lines.push(`${k}: ${v}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), b]);
}

/**
 * Sends bytes as they are (no client-side validation of the URL or headers, which fetch and
 * node:http would refuse) and reads one answer up to the connection's close.
 */
export function sendRaw(port: number, bytes: Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let reset = '';
    const timer = setTimeout(() => socket.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c) => chunks.push(c));
    // The server may close before reading all we sent (413 on a declared length): that is an answer, not a failure.
    socket.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? (reset = `, ${e.code}`) : reject(e)));
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m || split < 0) return reject(new Error(`no HTTP answer (got ${JSON.stringify(text.slice(0, 200))}${reset})`));
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, split).split('\r\n').slice(1)) {
        const at = line.indexOf(':');
        headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      resolve({ status: Number(m[1]), headers, body: text.slice(split + 4) });
    });
  });
}
