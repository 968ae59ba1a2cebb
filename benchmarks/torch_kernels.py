#!/usr/bin/python3
"""PyTorch peer for `npm run bench:kernels`: times nn.EmbeddingBag and nn.Sequential MLPs on
the shapes it is given (JSON on argv[1]) with one thread, and prints one JSON object.
Same method as the Node side: pre-made distinct batches cycled, best of 5 rounds."""
import json
import sys
import time

import torch

torch.set_num_threads(1)


def best_ms(fn, iters):
    for _ in range(max(3, iters // 10)):
        fn()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        best = min(best, (time.perf_counter() - t) / iters)
    return best * 1e3


def main():
    spec = json.loads(sys.argv[1])
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "embedding": [], "mlp": []}
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for e in spec["embedding"]:
            emb = torch.nn.EmbeddingBag(e["rows"], e["dim"], mode="sum")
            batches = []
            for _ in range(e["variants"]):
                idx = torch.randint(0, e["rows"], (e["batch"] * e["pooling"],), generator=g)
                off = torch.arange(0, e["batch"] * e["pooling"], e["pooling"])
                batches.append((idx, off))
            state = {"i": 0}

            def run():
                idx, off = batches[state["i"] % len(batches)]
                state["i"] += 1
                emb(idx, off)

            out["embedding"].append({**e, "ms": best_ms(run, e["iters"])})
            del emb
        for m in spec["mlp"]:
            w = m["widths"]
            layers = []
            for i in range(len(w) - 1):
                layers += [torch.nn.Linear(w[i], w[i + 1]), torch.nn.ReLU()]
            net = torch.nn.Sequential(*layers)
            x = torch.randn(m["batch"], w[0], generator=g)
            out["mlp"].append({**m, "ms": best_ms(lambda: net(x), m["iters"])})
    print(json.dumps(out))


main()
