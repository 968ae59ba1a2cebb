#!/usr/bin/python3
"""PyTorch serving peer for `npm run bench:peer`: the same DLRM (a shardwise model directory)
in nn.EmbeddingBag + nn.Sequential under torch.inference_mode(), behind a small aiohttp server
that speaks the same KServe v2 / Triton binary-tensor request and response as shardwise.

    torch_server.py MODEL_DIR PORT WORKERS

WORKERS processes share the port (SO_REUSEPORT), one torch thread each, as shardwise runs one
process per core. Prints "ready <port>" on stdout once every worker listens. Not part of the
product: a baseline to measure shardwise against.
"""
import json
import os
import signal
import sys

import numpy as np
import torch
from aiohttp import web


def load_model(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        manifest = json.load(f)

    def tensor(name):
        entry = manifest["tensors"][name]
        data = np.fromfile(os.path.join(model_dir, entry["file"]), dtype="<f4")
        return torch.from_numpy(data.reshape(entry["shape"]))

    tables = []
    for t in range(len(manifest["tables"])):
        weight = tensor(f"emb.{t}")
        tables.append(torch.nn.EmbeddingBag.from_pretrained(weight, mode=manifest["poolingMode"], freeze=True))

    def mlp(kind, widths, final):
        layers = []
        for i in range(len(widths)):
            w = tensor(f"{kind}.{i}.weight")
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            lin.weight.data = w
            lin.bias.data = tensor(f"{kind}.{i}.bias")
            layers += [lin, torch.nn.ReLU() if i < len(widths) - 1 or final == "relu" else torch.nn.Sigmoid()]
        return torch.nn.Sequential(*layers)

    bottom = mlp("bottom", manifest["bottomMlp"], "relu")
    top = mlp("top", manifest["topMlp"], "sigmoid")
    return manifest, tables, bottom, top


def make_app(model_dir):
    manifest, tables, bottom, top = load_model(model_dir)
    T = len(tables)
    num_dense = manifest["numDense"]
    n = T + 1
    li, lj = torch.tril_indices(n, n, offset=-1)
    dot = manifest["interaction"] == "dot"

    def predict(dense, indices, offsets, weights, batch):
        x = bottom(dense.view(batch, num_dense))
        # Bags come sample-major, (sample, table); EmbeddingBag wants one table's bags
        # together: a stable sort by table keeps each table's lookups in sample order.
        sizes = offsets[1:] - offsets[:-1]
        table_of = torch.arange(batch * T).remainder_(T).repeat_interleave(sizes)
        order = torch.sort(table_of, stable=True).indices
        ids = indices[order].long()
        w = weights[order] if weights is not None else None
        per_table = sizes.view(batch, T).t()  # [T, B]
        table_lookups = per_table.sum(1).tolist()
        pooled = []
        at = 0
        for t in range(T):
            n_t = table_lookups[t]
            off = torch.zeros(batch, dtype=torch.int64)
            off[1:] = torch.cumsum(per_table[t], 0)[:-1]
            pooled.append(tables[t](ids[at : at + n_t], off, per_sample_weights=None if w is None else w[at : at + n_t]))
            at += n_t
        v = torch.stack([x] + pooled, dim=1)  # [B, n, d]
        if dot:
            z = torch.bmm(v, v.transpose(1, 2))[:, li, lj]
            z = torch.cat([x, z], dim=1)
        else:
            z = v.reshape(batch, -1)
        return top(z).view(-1)

    async def infer(request):
        body = await request.read()
        header_len = int(request.headers.get("Inference-Header-Content-Length", len(body)))
        header = json.loads(body[:header_len])
        at = header_len
        inputs = {}
        for inp in header["inputs"]:
            size = inp["parameters"]["binary_data_size"]
            dtype = np.float32 if inp["datatype"] == "FP32" else np.int32
            inputs[inp["name"]] = torch.from_numpy(np.frombuffer(body, dtype=dtype, count=size // 4, offset=at).copy())
            at += size
        batch = (inputs["offsets"].numel() - 1) // T
        with torch.inference_mode():
            scores = predict(inputs["dense"], inputs["indices"], inputs["offsets"].long(), inputs.get("per_sample_weights"), batch)
        data = scores.numpy().astype("<f4").tobytes()
        out = json.dumps({"model_name": manifest["name"], "outputs": [{"name": "score", "datatype": "FP32", "shape": [batch, 1], "parameters": {"binary_data_size": len(data)}}]}).encode()
        return web.Response(body=out + data, headers={"Inference-Header-Content-Length": str(len(out)), "Content-Type": "application/octet-stream"})

    async def ready(_request):
        return web.Response(text="")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post(f"/v2/models/{manifest['name']}/infer", infer)
    app.router.add_get("/v2/health/ready", ready)
    return app


def worker(model_dir, port, ready_fd):
    torch.set_num_threads(1)
    app = make_app(model_dir)

    async def announce(_app):
        os.write(ready_fd, b"1")

    app.on_startup.append(announce)
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, print=None, access_log=None, handle_signals=True)


def main():
    model_dir, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    r, w = os.pipe()
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            worker(model_dir, port, w)
            os._exit(0)
        children.append(pid)
    os.close(w)
    got = 0
    while got < workers:
        chunk = os.read(r, workers)
        if not chunk:
            sys.exit("a worker exited before it listened")
        got += len(chunk)
    print(f"ready {port}", flush=True)

    def stop(*_):
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        os.waitpid(pid, 0)


main()
