#!/usr/bin/python3
"""check-torch.py: do the reference PyTorch modules and this project's C networks give the same
outputs on the same weights and inputs? Optional check, not part of the build or the tests.

Needs /usr/bin/python3 with numpy and torch, and a checkout of the reference code
(mouthful/ClofNet) given with --ref; nothing of it is part of this repository.

  # C weights and C predictions on the test split of an ES(5) dataset
  nbody-export --model M.ckpt --npz M.npz
  nbody-eval --model M.ckpt --data data/small --predictions M-pred.npy
  # the same weights in the reference module, the same inputs, the largest difference
  scripts/check-torch.py --ref ClofNet --arch clofnet --npz M.npz --data data/small \
      --predictions M-pred.npy

  # a model the reference trained (torch.save(model, ...)) as a state_dict .npz for nbody-import
  scripts/check-torch.py --ref ClofNet --convert best_model.pt --npz M.npz
"""
import argparse
import glob
import os
import sys

import numpy as np


def load_split(data, split):
    """loc, vel [N, 49, 3, n] and edges [N, n, n] of one split (the one suffix in the folder)."""
    found = glob.glob(os.path.join(data, "loc_%s_*.npy" % split))
    if len(found) != 1:
        sys.exit("check-torch: expected one loc_%s_*.npy in %s, found %d" % (split, data, len(found)))
    suffix = os.path.basename(found[0])[len("loc_%s" % split):]
    get = lambda q: np.load(os.path.join(data, "%s_%s%s" % (q, split, suffix)))
    return get("loc"), get("vel"), get("edges")


def reference_inputs(torch, loc, vel, edges, dtype):
    """Inputs exactly as main_newtonian.py builds them: frame 30, nodes [N*n, 3], edges i -> j
    (i != j) listed by i then j, edge_attr [q_i q_j, |x_i - x_j|^2], node feature |v_i|."""
    N, _, _, n = loc.shape
    x = torch.tensor(loc[:, 30].transpose(0, 2, 1).reshape(-1, 3), dtype=dtype)
    v = torch.tensor(vel[:, 30].transpose(0, 2, 1).reshape(-1, 3), dtype=dtype)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    rows = torch.tensor([g * n + i for g in range(N) for i, _ in pairs])
    cols = torch.tensor([g * n + j for g in range(N) for _, j in pairs])
    qq = torch.tensor(np.stack([edges[:, i, j] for i, j in pairs], 1).reshape(-1, 1), dtype=dtype)
    dist = torch.sum((x[rows] - x[cols]) ** 2, 1).unsqueeze(1)
    nodes = torch.sqrt(torch.sum(v ** 2, dim=1)).unsqueeze(1)
    return nodes, x, [rows, cols], v, torch.cat([qq, dist], 1), n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", required=True, help="checkout of mouthful/ClofNet (its newtonian/ and models/)")
    ap.add_argument("--npz", required=True, help="state_dict archive (nbody-export output, or --convert's)")
    ap.add_argument("--arch", choices=["clofnet", "egnn"], help="architecture of --npz")
    ap.add_argument("--data", help="dataset folder")
    ap.add_argument("--split", default="test", choices=["train", "valid", "test"])
    ap.add_argument("--predictions", help="nbody-eval --predictions output (.npy) to compare with")
    ap.add_argument("--convert", metavar="MODEL.pt", help="write the state_dict of a torch.save()d model as --npz")
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.ref))
    import torch
    from newtonian.clof import ClofNet_vel
    from newtonian.egnn import EGNN_vel

    if a.convert:
        model = torch.load(a.convert, map_location="cpu")
        np.savez(a.npz, **{k: v.cpu().numpy() for k, v in model.state_dict().items()})
        print("check-torch: %s (%s) -> %s" % (a.convert, type(model).__name__, a.npz))
        return
    if not (a.arch and a.data and a.predictions):
        sys.exit("check-torch: --arch, --data and --predictions are needed to compare")
    sd = {k: torch.from_numpy(v) for k, v in np.load(a.npz).items()}
    hidden = sd["embedding_node.weight" if a.arch == "clofnet" else "embedding.weight"].shape[0]
    layers = len([k for k in sd if k.endswith("edge_mlp.0.weight")])
    loc, vel, edges = load_split(a.data, a.split)
    c_pred = np.load(a.predictions)  # [N, 3, n], float64 of the C float network's output
    truth = loc[:, 40]
    for dtype, name in [(torch.float32, "float32"), (torch.float64, "float64")]:
        cls = ClofNet_vel if a.arch == "clofnet" else EGNN_vel
        model = cls(in_node_nf=1, in_edge_nf=2, hidden_nf=hidden, n_layers=layers,
                    recurrent=True, norm_diff=True, tanh=False)
        model.load_state_dict(sd, strict=True)
        model = model.to(dtype).eval()
        h, x, e, v, ea, n = reference_inputs(torch, loc, vel, edges, dtype)
        with torch.no_grad():
            if a.arch == "clofnet":
                out = model(h, x, e, v, ea, n_nodes=n)
            else:
                out = model(h, x, e, v, ea)
        t_pred = out.double().numpy().reshape(len(loc), n, 3).transpose(0, 2, 1)
        diff = np.abs(t_pred - c_pred)
        print("check-torch: PyTorch %s vs C float on %d trajectories: max |diff| %.3g, mean "
              "%.3g; MSE PyTorch %.9g, C %.9g" % (name, len(loc), diff.max(), diff.mean(),
                                                  ((t_pred - truth) ** 2).mean(),
                                                  ((c_pred - truth) ** 2).mean()))


if __name__ == "__main__":
    main()
