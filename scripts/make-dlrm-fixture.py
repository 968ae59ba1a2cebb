#!/usr/bin/python3
"""Builds the PyTorch fixtures for `shardwise import`: small facebookresearch/dlrm DLRM_Net
models (same module names and forward pass), their state_dict() as safetensors, an Open
Inference Protocol request and the scores PyTorch computes for it.

Run with Debian's python3 and python3-torch (see .ci/run); the outputs are committed, so the
tests need no PyTorch:  /usr/bin/python3 scripts/make-dlrm-fixture.py test/fixtures
"""
import json
import struct
import sys

import torch
import torch.nn as nn


class DLRM_Net(nn.Module):
    """The parts of facebookresearch/dlrm's DLRM_Net that define inference."""

    def __init__(self, m_spa, ln_emb, ln_bot, ln_top, interaction, mode):
        super().__init__()
        self.arch_interaction_op = interaction
        self.arch_interaction_itself = False
        self.emb_l = nn.ModuleList([nn.EmbeddingBag(n, m_spa, mode=mode) for n in ln_emb])
        self.bot_l = self.create_mlp(ln_bot, -1)
        self.top_l = self.create_mlp(ln_top, len(ln_top) - 2)

    @staticmethod
    def create_mlp(ln, sigmoid_layer):
        layers = []
        for i in range(len(ln) - 1):
            layers.append(nn.Linear(int(ln[i]), int(ln[i + 1]), bias=True))
            layers.append(nn.Sigmoid() if i == sigmoid_layer else nn.ReLU())
        return nn.Sequential(*layers)

    def interact_features(self, x, ly):
        if self.arch_interaction_op == "dot":
            (batch_size, d) = x.shape
            T = torch.cat([x] + ly, dim=1).view((batch_size, -1, d))
            Z = torch.bmm(T, torch.transpose(T, 1, 2))
            _, ni, nj = Z.shape
            offset = 1 if self.arch_interaction_itself else 0
            li = torch.tensor([i for i in range(ni) for j in range(i + offset)])
            lj = torch.tensor([j for i in range(nj) for j in range(i + offset)])
            Zflat = Z[:, li, lj]
            return torch.cat([x] + [Zflat], dim=1)
        return torch.cat([x] + ly, dim=1)

    def forward(self, dense_x, lS_o, lS_i, lS_w=None):
        x = self.bot_l(dense_x)
        ly = [E(lS_i[k], lS_o[k], per_sample_weights=None if lS_w is None else lS_w[k]) for k, E in enumerate(self.emb_l)]
        return self.top_l(self.interact_features(x, ly))


def save_safetensors(state, path):
    header, blobs, offset = {}, [], 0
    for name, t in state.items():
        data = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def make(outdir, name, interaction, seed):
    torch.manual_seed(seed)
    num_dense, dim, rows, batch = 5, 8, [50, 30, 70], 6
    T = len(rows)
    n = T + 1
    top_in = dim + n * (n - 1) // 2 if interaction == "dot" else dim * n
    nets = {mode: DLRM_Net(dim, rows, [num_dense, 16, dim], [top_in, 16, 1], interaction, mode) for mode in ("sum", "mean")}
    nets["mean"].load_state_dict(nets["sum"].state_dict())
    for E in nets["sum"].emb_l:  # DLRM's init is tiny for small tables; widen it so rows matter.
        nn.init.uniform_(E.weight, -0.5, 0.5)
    nets["mean"].load_state_dict(nets["sum"].state_dict())

    g = torch.Generator().manual_seed(seed + 1)
    dense = torch.randn(batch, num_dense, generator=g)
    # Sample-major CSR over (sample, table); bag lengths 0..4 so empty bags are covered.
    lengths = torch.randint(0, 5, (batch, T), generator=g)
    lengths[0, 0] = 0
    indices, offsets, per_table = [], [0], [[[] for _ in range(batch)] for _ in range(T)]
    for s in range(batch):
        for t in range(T):
            ids = torch.randint(0, rows[t], (int(lengths[s, t]),), generator=g).tolist()
            indices += ids
            offsets.append(len(indices))
            per_table[t][s] = ids
    weights = (torch.rand(len(indices), generator=g) + 0.5).tolist()
    # DLRM's own input: per table, a flat index list and per-sample start offsets.
    lS_i = [torch.tensor([i for s in range(batch) for i in per_table[t][s]], dtype=torch.int64) for t in range(T)]
    lS_o = [torch.tensor([sum(len(per_table[t][q]) for q in range(s)) for s in range(batch)], dtype=torch.int64) for t in range(T)]
    # per_sample_weights in DLRM's per-table order, from the sample-major flat list.
    w_sm = iter(weights)
    w_table = [[[] for _ in range(batch)] for _ in range(T)]
    for s in range(batch):
        for t in range(T):
            w_table[t][s] = [next(w_sm) for _ in per_table[t][s]]
    lS_w = [torch.tensor([w for s in range(batch) for w in w_table[t][s]], dtype=torch.float32) for t in range(T)]

    with torch.no_grad():
        scores = {mode: net(dense, lS_o, lS_i).flatten().tolist() for mode, net in nets.items()}
        scores["sum_weighted"] = nets["sum"](dense, lS_o, lS_i, lS_w).flatten().tolist()

    save_safetensors(nets["sum"].state_dict(), f"{outdir}/{name}.safetensors")
    request = {"inputs": [
        {"name": "dense", "datatype": "FP32", "shape": [batch, num_dense], "data": dense.flatten().tolist()},
        {"name": "indices", "datatype": "INT64", "shape": [len(indices)], "data": indices},
        {"name": "offsets", "datatype": "INT64", "shape": [len(offsets)], "data": offsets},
    ]}
    expected = {"torch": torch.__version__, "interaction": interaction, "request": request,
                "per_sample_weights": weights, "scores": scores}
    with open(f"{outdir}/{name}.expected.json", "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures"
    make(out, "dlrm-dot", "dot", 7)
    make(out, "dlrm-cat", "cat", 11)
    print(f"wrote {out}/dlrm-dot.* and {out}/dlrm-cat.*")
