/**
 * A seeded battery of bad requests, by class: every one must get a 4xx with a JSON reason,
 * and none may crash or stall a process. Built from a valid request of the model, mutated.
 */
import type { Batch } from '../src/model/batch.ts';
import type { ModelConfig } from '../src/model/types.ts';
import { encodeRequest, type OipRequest } from '../src/protocol/oip.ts';
import { Rng } from '../src/util/rng.ts';
import { rawRequest } from './raw-http.ts';

export interface BadCase {
  cls: 'url' | 'method' | 'headers' | 'json' | 'envelope' | 'tensors' | 'binary' | 'size';
  label: string;
  bytes: Buffer;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));
const nest = (depth: number, open: string, close: string, inner = '0') => open.repeat(depth) + inner + close.repeat(depth);

export function badInputBattery(config: ModelConfig, good: Batch, seed: number): BadCase[] {
  const rng = new Rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rng.below(xs.length)];
  const name = config.name;
  const infer = `/v2/models/${name}/infer`;
  const base = encodeRequest(good, config.numDense) as OipRequest;
  const cases: BadCase[] = [];
  const add = (cls: BadCase['cls'], label: string, bytes: Buffer) => cases.push({ cls, label, bytes });
  const postJson = (cls: BadCase['cls'], label: string, body: string, headers: Record<string, string | number> = {}) =>
    add(cls, label, rawRequest('POST', infer, { 'content-type': 'application/json', ...headers }, body));
  const mutated = (cls: BadCase['cls'], label: string, change: (r: OipRequest & Record<string, unknown>) => void) => {
    const r = clone(base) as OipRequest & Record<string, unknown>;
    change(r);
    postJson(cls, label, JSON.stringify(r));
  };
  const tensor = (r: OipRequest, n: string) => r.inputs.find((t) => t.name === n)!;

  // URL: malformed %-encoding anywhere in a model route, unknown routes, models and versions.
  const badPercent = ['%', '%%', '%z', '%zz', '%E0%A4%A', '%C0', '%FF%FE', `%${'x'.repeat(3)}`, '%u0041', 'a%2'];
  for (let i = 0; i < 90; i++) {
    const seg = pick(badPercent) + (rng.below(2) ? String(rng.below(1000)) : '');
    const path = pick([`/v2/models/${seg}`, `/v2/models/${seg}/ready`, `/v2/models/${seg}/infer`, `/v2/models/${name}/versions/${seg}/ready`, `/v2/models/${name}/versions/${seg}`]);
    add('url', `GET ${path}`, rawRequest(path.endsWith('infer') ? 'POST' : 'GET', path));
  }
  for (const path of ['/', '/v3', '/v2/models', '/v2/models/', `/v2/models/${name}/foo`, `/v2/models/${name}/versions`, `/v2/models/${name}/versions/9/ready`, `/v2/models/${name}/versions/0/infer`, `/v2/models/${name}/versions/abc`, '/v2/models/other/ready', '/v2/models/other/infer', `/v2/models/${name}%2F..%2Fx/ready`, '/v2/health', '/v2/health/whatever', `/v2/models/${name}/ready/extra`, '/metrics/x', '/../../etc/passwd', `/v2/models/${'n'.repeat(2000)}/ready`]) {
    add('url', `GET ${path.slice(0, 60)}`, rawRequest('GET', path));
  }
  // Raw bytes a URL may not hold: the HTTP parser refuses them.
  for (const bad of ['/v2/models/a b/ready', '/v2/models/\u0001/ready', '/v2/\x7f', '/v2/models/tiny\tx']) add('url', `raw ${JSON.stringify(bad)}`, Buffer.from(`GET ${bad} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`, 'latin1'));

  // Methods: every route with the wrong ones.
  for (const path of ['/v2', '/v2/health/live', '/v2/health/ready', `/v2/models/${name}`, `/v2/models/${name}/ready`, infer, `/v2/models/${name}/versions/1/infer`, '/metrics']) {
    for (const method of path.endsWith('infer') ? ['GET', 'PUT', 'DELETE', 'PATCH'] : ['POST', 'PUT', 'DELETE', 'PATCH']) add('method', `${method} ${path}`, rawRequest(method, path, {}, method === 'GET' ? '' : '{}'));
  }

  // Headers: lengths that are not plain decimals, lengths that do not fit, oversize headers.
  const body = JSON.stringify(base);
  for (const v of ['+326', '3.26e2', '326.0', '0x146', '-1', 'abc', '1e3', '99999999999999999999', '１２', '12 34', String(body.length + 1), String(body.length + 1000)]) {
    postJson('headers', `Inference-Header-Content-Length ${JSON.stringify(v)}`, body, { 'inference-header-content-length': v });
  }
  for (const v of ['abc', '-5', '1.5', '+12', '0x10']) {
    add('headers', `Content-Length ${v}`, Buffer.from(`POST ${infer} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: ${v}\r\n\r\n${body}`));
  }
  add('headers', 'two Content-Lengths', Buffer.from(`POST ${infer} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}`));
  add('headers', 'Transfer-Encoding and Content-Length', Buffer.from(`POST ${infer} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n`));
  add('headers', 'bad chunk size', Buffer.from(`POST ${infer} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`));
  for (let i = 0; i < 8; i++) {
    const size = (17 + rng.below(48)) << 10;
    add('headers', `${size >> 10} KiB of headers`, rawRequest('GET', '/v2/health/ready', { 'x-filler': 'a'.repeat(size) }));
  }
  for (let i = 0; i < 4; i++) add('headers', 'header without a colon', Buffer.from(`GET /v2 HTTP/1.1\r\nhost: x\r\nbroken header line ${i}\r\n\r\n`));

  // JSON: malformed (truncated valid bodies, garbage), nesting past the limit, non-object roots.
  for (let i = 0; i < 60; i++) {
    const cut = 1 + rng.below(body.length - 2);
    postJson('json', `truncated at ${cut}`, body.slice(0, cut));
  }
  for (const junk of ['{not json', '', '{"inputs": [}', '{"inputs": [1,]}', "{'inputs': []}", '{"inputs": NaN}', '\u0000\u0001', '{"a":1}{"b":2}', '[', '{"inputs": [{"name": "dense"']) postJson('json', `junk ${JSON.stringify(junk).slice(0, 30)}`, junk);
  for (const root of ['[]', '"inputs"', '42', 'null', 'true', '{}', '{"inputs": {}}', '{"inputs": "dense"}', '{"inputs": null}']) postJson('json', `root ${root}`, root);
  for (let i = 0; i < 20; i++) {
    const depth = pick([33, 64, 1000, 10_000, 100_000, 1_000_000]);
    const where = pick(['id', 'data', 'parameters', 'root', 'outputs']);
    const deep = nest(depth, where === 'parameters' || where === 'root' ? '{"a":' : '[', where === 'parameters' || where === 'root' ? '}' : ']');
    const text = where === 'root' ? deep : body.replace(/^\{/, `{"${where === 'data' ? 'x' : where}": ${deep},`);
    postJson('json', `nesting ${depth} in ${where}`, text);
  }

  // The request's own fields.
  for (const id of [1, 1.5, null, true, [], {}, { a: 1 }, ['x']]) mutated('envelope', `id ${JSON.stringify(id)}`, (r) => (r.id = id as never));
  for (const outputs of [{}, 'score', 1, null, [1], [null], [{}], [{ name: 'other' }], [{ name: 'score', parameters: 5 }], [{ name: 'score', parameters: [] }], { name: 'score' }]) {
    mutated('envelope', `outputs ${JSON.stringify(outputs)}`, (r) => (r.outputs = outputs as never));
  }
  for (const parameters of [1, 'x', [], null, true]) mutated('envelope', `parameters ${JSON.stringify(parameters)}`, (r) => (r.parameters = parameters as never));
  for (const inputs of [[], [null], [1], ['dense'], [{}], [{ name: 5 }], [{ name: null }]]) mutated('envelope', `inputs ${JSON.stringify(inputs)}`, (r) => (r.inputs = inputs as never));

  // Tensors: shapes, datatypes, data, values.
  const names = ['dense', 'indices', 'offsets'] as const;
  const badShapes: unknown[] = [null, 'x', 5, {}, [], [null], ['1'], [-1], [1.5], [1e300], [4294967295], [2 ** 53], [1, 2, 3, 4, 5], [Infinity], [true], [[1]], [4294967295, 4294967295]];
  for (const n of names) for (const shape of badShapes) mutated('tensors', `${n} shape ${JSON.stringify(shape)}`, (r) => (tensor(r, n).shape = shape as never));
  for (const n of names) {
    for (const datatype of [null, 5, 'FP64', 'INT8', 'BYTES', 'fp32', '', 'UINT64', 'BOOL']) mutated('tensors', `${n} datatype ${JSON.stringify(datatype)}`, (r) => (tensor(r, n).datatype = datatype as never));
    for (const data of [null, 5, 'x', {}, [], [[]], ['a'], [null], [true], [{}]]) mutated('tensors', `${n} data ${JSON.stringify(data)}`, (r) => (tensor(r, n).data = data as never));
    mutated('tensors', `${n} missing`, (r) => (r.inputs = r.inputs.filter((t) => t.name !== n)));
    mutated('tensors', `${n} twice`, (r) => r.inputs.push(clone(tensor(r, n))));
    mutated('tensors', `${n} one value short`, (r) => tensor(r, n).data!.pop());
    mutated('tensors', `${n} one value more`, (r) => tensor(r, n).data!.push(0));
  }
  for (const v of ['NaN', 'Infinity', '1', null, [], 1e400]) mutated('tensors', `dense value ${JSON.stringify(v)}`, (r) => (tensor(r, 'dense').data![rng.below(good.dense.length)] = v));
  for (let i = 0; i < 20; i++) {
    const v = pick([-1, config.tables[0].rows + rng.below(100), 2 ** 31, 2 ** 40, 0.5, -0, '3', null]);
    mutated('tensors', `indices value ${JSON.stringify(v)}`, (r) => (tensor(r, 'indices').data![0] = v));
  }
  mutated('tensors', 'offsets do not start at 0', (r) => (tensor(r, 'offsets').data![0] = 1));
  mutated('tensors', 'offsets decrease', (r) => {
    const d = tensor(r, 'offsets').data as number[];
    d[2] = d[1] - 1;
  });
  mutated('tensors', 'offsets end short', (r) => {
    const d = tensor(r, 'offsets').data as number[];
    d[d.length - 1] -= 1;
  });
  mutated('tensors', 'dense shape [B, numDense + 1]', (r) => (tensor(r, 'dense').shape = [good.size, config.numDense + 1]));
  mutated('tensors', 'dense shape [B·numDense]', (r) => (tensor(r, 'dense').shape = [good.size * config.numDense]));
  for (const n of ['weights', 'score', '', 'DENSE']) mutated('tensors', `unknown input ${JSON.stringify(n)}`, (r) => r.inputs.push({ name: n, datatype: 'FP32', shape: [1], data: [1] }));
  mutated('tensors', 'per_sample_weights count', (r) => r.inputs.push({ name: 'per_sample_weights', datatype: 'FP32', shape: [1], data: [1] }));
  mutated('tensors', 'per_sample_weights shape 1e300', (r) => r.inputs.push({ name: 'per_sample_weights', datatype: 'FP32', shape: [1e300], data: [1] }));

  // Binary tensor extension: sizes that do not add up, sections that lie.
  const bin = (label: string, change: (h: OipRequest, tensors: Buffer[]) => { header?: string; tail?: Buffer; headerLength?: string } | void) => {
    const h = clone(base);
    const tensors: Buffer[] = [];
    for (const t of h.inputs) {
      const values = t.data as number[];
      const b = t.datatype === 'FP32' ? Buffer.from(Float32Array.from(values).buffer) : Buffer.from(BigInt64Array.from(values.map(BigInt)).buffer);
      t.parameters = { binary_data_size: b.length };
      delete t.data;
      tensors.push(b);
    }
    const out = change(h, tensors) ?? {};
    const header = Buffer.from(out.header ?? JSON.stringify(h));
    const full = Buffer.concat([header, ...tensors, out.tail ?? Buffer.alloc(0)]);
    add('binary', label, rawRequest('POST', infer, { 'content-type': 'application/octet-stream', 'inference-header-content-length': out.headerLength ?? header.length }, full));
  };
  for (const n of [0, 1, 2]) {
    for (const size of [-1, 1.5, '8', null, 1e300, 2 ** 53, 3]) bin(`${names[n]} binary_data_size ${JSON.stringify(size)}`, (h) => void (h.inputs[n].parameters = { binary_data_size: size as never }));
    bin(`${names[n]} bytes one short`, (_h, t) => void (t[n] = t[n].subarray(1)));
    bin(`${names[n]} bytes one over`, (_h, t) => void (t[n] = Buffer.concat([t[n], Buffer.alloc(1)])));
    bin(`${names[n]} shape [4294967295]`, (h) => void (h.inputs[n].shape = [4294967295]));
    bin(`${names[n]} shape [1e300]`, (h) => void (h.inputs[n].shape = [1e300]));
    bin(`${names[n]} shape doubled`, (h) => void (h.inputs[n].shape = h.inputs[n].shape.map((d, i) => (i === 0 ? d * 2 : d))));
  }
  bin('trailing bytes after the tensors', () => ({ tail: Buffer.alloc(12) }));
  bin('no Inference-Header-Content-Length', () => ({ headerLength: '' }));
  bin('header length past the body', () => ({ headerLength: '99999999' }));
  bin('header length inside the JSON', (h) => ({ headerLength: String(Math.floor(JSON.stringify(h).length / 2)) }));
  bin('INT64 id with the high word set', (_h, t) => void t[1].writeInt32LE(1, 4));
  bin('INT64 negative id', (_h, t) => void t[1].writeBigInt64LE(-5n, 0));
  bin('INT64 offset past the ids', (_h, t) => void t[2].writeBigInt64LE(99999n, 8));
  bin('dense NaN bits', (_h, t) => void t[0].writeUInt32LE(0x7fc00000, 0));
  bin('dense Infinity bits', (_h, t) => void t[0].writeUInt32LE(0x7f800000, 4));
  for (const dt of ['FP32', 'INT32', 'FP16']) bin(`indices as ${dt}`, (h) => void (h.inputs[1].datatype = dt));

  // Sizes: a body over the limit by its declared length (the server must not wait for it) and a JSON part over its own limit.
  add('size', 'Content-Length 65 MiB, no body sent', Buffer.from(`POST ${infer} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: ${65 << 20}\r\n\r\n{"inputs": [`));
  postJson('size', 'JSON of 9 MiB', `{"id": "${'x'.repeat(9 << 20)}", "inputs": []}`);
  return cases;
}
