import type { Batch } from '../model/batch.ts';
import { ShardwiseError } from '../util/errors.ts';
import { decodeBinaryScores, encodeBinaryRequest } from './oip.ts';

/** Times a refused query (429) is sent again, each after the server's Retry-After. */
const OVERLOAD_RETRIES = 3;

/**
 * One inference over the public API with binary tensors. A 429 is the server asking to come
 * back later: retried after its Retry-After (at most 1 s here), up to OVERLOAD_RETRIES times,
 * as a well-behaved client does; any other non-200 answer becomes an error carrying the
 * server's message.
 */
export async function inferBinary(baseUrl: string, modelName: string, batch: Batch, numDense: number): Promise<Float32Array> {
  const { body, headerLength } = encodeBinaryRequest(batch, numDense);
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(new URL(`/v2/models/${encodeURIComponent(modelName)}/infer`, baseUrl), {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { 'inference-header-content-length': String(headerLength), 'content-type': 'application/octet-stream' },
    });
    if (res.status === 429 && attempt < OVERLOAD_RETRIES) {
      await res.arrayBuffer();
      const after = Number(res.headers.get('retry-after'));
      await new Promise((r) => setTimeout(r, 1000 * Math.min(1, after >= 0 ? after : 1)));
      continue;
    }
    if (res.status !== 200) throw new ShardwiseError('SW_SERVICE', `inference at ${baseUrl} answered ${res.status}: ${await res.text()}`);
    return decodeBinaryScores(Buffer.from(await res.arrayBuffer()), Number(res.headers.get('inference-header-content-length')));
  }
}

/** A counter or gauge value from a Prometheus text page: the first series of `name` whose labels contain `labels`. */
export async function scrapeMetric(baseUrl: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(new URL('/metrics', baseUrl))).text();
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}
