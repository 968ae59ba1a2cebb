import type { Batch } from '../model/batch.ts';
import { ShardwiseError } from '../util/errors.ts';
import { decodeBinaryScores, encodeBinaryRequest } from './oip.ts';

/**
 * One inference over the public API with binary tensors; a non-200 answer becomes an error
 * carrying the server's message.
 */
export async function inferBinary(baseUrl: string, modelName: string, batch: Batch, numDense: number): Promise<Float32Array> {
  const { body, headerLength } = encodeBinaryRequest(batch, numDense);
  const res = await fetch(new URL(`/v2/models/${encodeURIComponent(modelName)}/infer`, baseUrl), {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'inference-header-content-length': String(headerLength), 'content-type': 'application/octet-stream' },
  });
  if (res.status !== 200) throw new ShardwiseError('SW_SERVICE', `inference at ${baseUrl} answered ${res.status}: ${await res.text()}`);
  return decodeBinaryScores(Buffer.from(await res.arrayBuffer()), Number(res.headers.get('inference-header-content-length')));
}

/** A counter or gauge value from a Prometheus text page: the first series of `name` whose labels contain `labels`. */
export async function scrapeMetric(baseUrl: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(new URL('/metrics', baseUrl))).text();
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}
