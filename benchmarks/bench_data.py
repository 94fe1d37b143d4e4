"""Data path: indexing an in-memory tensor vs torchvision-style DataLoader pipelines.

Times one shuffled epoch of batches (batch size 100) yielding (images, labels)
as the model wants them ((B, rows, cols) float32), for:

- ``tensor-index`` (the baseline; what noisefloor.train does): ``x[perm[i:i+B]]``;
- ``loader-tensor``: ``DataLoader(TensorDataset(x, y), shuffle=True)``;
- ``loader-pil``: ``DataLoader`` over a dataset whose ``__getitem__`` follows
  ``torchvision.datasets.MNIST``: uint8 tensor -> PIL image -> ``ToTensor()``;
- ``loader-pil-2w``: the same with 2 persistent worker processes.

Also one training step of the reference model (2-layer BiLSTM, hidden 128, 1
thread) on the same shape, to show what share of a step the data path costs.
Variants are interleaved over ``--repeat`` rounds; medians are reported.

Usage::

    python benchmarks/bench_data.py [--repeat 3] [--n 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

BATCH = 100


class PILDataset(Dataset):
    """Items as torchvision.datasets.MNIST makes them: PIL image, then a transform."""

    def __init__(self, images_u8: torch.Tensor, labels: torch.Tensor):
        from torchvision import transforms

        self.data, self.targets = images_u8, labels
        self.transform = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.data[i].numpy(), mode="L")
        return self.transform(img).squeeze(0), int(self.targets[i])


def epoch_tensor_index(x, y, gen) -> int:
    n = 0
    perm = torch.randperm(len(y), generator=gen)
    for i in range(0, len(y), BATCH):
        idx = perm[i:i + BATCH]
        xb, yb = x[idx], y[idx]
        n += len(yb)
    return n


def epoch_loader(loader) -> int:
    n = 0
    for xb, yb in loader:
        n += len(yb)
    return n


def model_step_time(rows: int, cols: int, steps: int = 5) -> float:
    from noisefloor.models import BiLSTMClassifier

    torch.manual_seed(0)
    model = BiLSTMClassifier(cols, 10)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    x, y = torch.rand(BATCH, rows, cols), torch.randint(0, 10, (BATCH,))
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--n", type=int, default=20000, help="images in the synthetic 28x28 set")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {machine()}")
    from noisefloor.data import digits_arrays

    images, target = digits_arrays()
    gen = torch.Generator().manual_seed(0)
    sets = {
        "digits 8x8": (torch.as_tensor(images, dtype=torch.uint8), torch.as_tensor(target)),
        f"synthetic 28x28 (n={args.n})": (torch.randint(0, 256, (args.n, 28, 28), dtype=torch.uint8, generator=gen),
                                         torch.randint(0, 10, (args.n,), generator=gen)),
    }
    for name, (u8, y) in sets.items():
        x = u8.float() / 255.0
        pil = PILDataset(u8, y)
        loaders = {
            "loader-tensor": DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True),
            "loader-pil": DataLoader(pil, batch_size=BATCH, shuffle=True),
            "loader-pil-2w": DataLoader(pil, batch_size=BATCH, shuffle=True, num_workers=2, persistent_workers=True),
        }
        epoch_loader(loaders["loader-pil-2w"])            # start its workers outside the clock
        times: dict[str, list[float]] = {"tensor-index": [], **{k: [] for k in loaders}}
        for _ in range(args.repeat):
            for variant in times:
                t = time.perf_counter()
                n = epoch_tensor_index(x, y, gen) if variant == "tensor-index" else epoch_loader(loaders[variant])
                times[variant].append(time.perf_counter() - t)
                assert n == len(y)
        steps = -(-len(y) // BATCH)
        step = model_step_time(*x.shape[1:])
        base = statistics.median(times["tensor-index"])
        print(f"\n{name}: {len(y)} images, {steps} batches/epoch; one model step (BiLSTM h128, 1 thread): "
              f"{1000 * step:.1f} ms")
        print(f"  {'variant':<16}{'ms/epoch':>10}{'ms/batch':>10}{'x baseline':>12}{'% of a step':>13}")
        for variant, ts in times.items():
            med = statistics.median(ts)
            mark = "  <- baseline" if variant == "tensor-index" else ""
            print(f"  {variant:<16}{1000 * med:>10.1f}{1000 * med / steps:>10.3f}{med / base:>12.1f}"
                  f"{100 * med / steps / step:>12.1f}%{mark}")
        loaders["loader-pil-2w"]._iterator = None    # stop its workers
    return 0


if __name__ == "__main__":
    sys.exit(main())
