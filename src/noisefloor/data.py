"""Datasets behind one interface: images as (N, rows, cols) float tensors.

Each image is read by the LSTM one row per time step. Everything is held as an
in-memory tensor and indexed directly; there is no per-item PIL transform
(that path, not the model, dominates a small model's step time).

- ``digits``: scikit-learn's 8x8 digits (1,797 images), shipped in the package; offline.
- ``fashion-mnist``: the real IDX files from a directory (Debian's
  ``dataset-fashion-mnist`` installs them in /usr/share/datasets/fashion-mnist),
  read through torchvision's ``FashionMNIST`` class.
- ``mnist``: torchvision's ``MNIST``, downloaded when a network exists.

Splits are fixed by ``data.split_seed``: by default the noise floor measures
training randomness against one fixed validation set. With ``data`` among the
sources a seed varies (``seeds.sources``, or the decomposition), each seed
splits the same training pool into training and validation examples anew,
stratified by class and at the same sizes (:func:`load_dataset`'s ``split``);
the test set never changes. A re-split, not a bootstrap: no example is
duplicated, no validation example is ever trained on, and every run's
accuracy has the same granularity.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import NoisefloorError
from .params import DataParams

if TYPE_CHECKING:
    import torch

FASHION_DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataError(NoisefloorError, RuntimeError):
    """A dataset cannot be read; the message is one line naming the file or directory."""


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors. Images are float32 in [0, 1], labels int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def row_size(self) -> int:
        """Features per time step (the image width)."""
        return int(self.x_train.shape[-1])

    def sizes(self) -> dict[str, int]:
        return {"n_train": len(self.y_train), "n_val": len(self.y_val), "n_test": len(self.y_test)}

    def to(self, device) -> "Splits":
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return Splits(name=self.name, n_classes=self.n_classes, **moved)


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out): ``fraction`` of each class held out, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        held.append(idx[: int(round(fraction * len(idx)))])
    held_out = np.sort(np.concatenate(held))
    kept = np.setdiff1d(np.arange(len(y)), held_out)
    return kept, held_out


def split_seed(p: DataParams, split: int | None) -> int:
    """The seed of the train/validation split: the fixed one, or seed ``split``'s own (the data source)."""
    if split is None:
        return p.split_seed + 1
    state = np.random.SeedSequence([p.split_seed, split, 0x5EED]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def _finish(name: str, x_trainval, y_trainval, x_test, y_test, p: DataParams, n_classes: int,
            split: int | None = None) -> Splits:
    """Carve the validation set from the training set (the fixed split, or seed ``split``'s) and apply ``train_subset``."""
    y_np = np.asarray(y_trainval)
    train_idx, val_idx = _stratified_split(y_np, p.val_fraction, split_seed(p, split))
    if p.train_subset is not None:
        train_idx = train_idx[: p.train_subset]
    import torch   # here, not at the top: the workflow imports this module to check paths only (torch: ~3 s)

    t = torch.as_tensor
    return Splits(
        name=name,
        x_train=t(x_trainval[train_idx]), y_train=t(y_np[train_idx]).long(),
        x_val=t(x_trainval[val_idx]), y_val=t(y_np[val_idx]).long(),
        x_test=t(x_test), y_test=t(np.asarray(y_test)).long(),
        n_classes=n_classes,
    )


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits (pixel values 0..16) and their labels, from the package.

    The same data as ``sklearn.datasets.load_digits`` (UCI optical recognition
    of handwritten digits, CC BY 4.0), shipped here as a 45 KB file because
    importing scikit-learn costs seconds in every training process.
    """
    with resources.files("noisefloor").joinpath("datasets/digits.npz").open("rb") as fh:
        with np.load(fh) as npz:
            return npz["images"], npz["target"]


def load_digits(p: DataParams, split: int | None = None) -> Splits:
    """The 8x8 digits; test and validation sets carved with ``split_seed``."""
    images, target = digits_arrays()
    x = (images / 16.0).astype(np.float32)
    y = target.astype(np.int64)
    trainval, test = _stratified_split(y, p.test_fraction, p.split_seed)
    return _finish("digits", x[trainval], y[trainval], x[test], y[test], p, n_classes=10, split=split)


def _stage_idx(src: Path, raw_dir: Path) -> None:
    """Put the four uncompressed IDX files where torchvision looks for them.

    torchvision's ``download=False`` check wants uncompressed files in
    ``<root>/<Class>/raw/``; Debian ships them gzipped (recompressed, so their
    md5s differ from torchvision's list, though the content is the real set).
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    for stem in IDX_FILES:
        target = raw_dir / stem
        if target.exists():
            continue
        plain, gz = src / stem, src / f"{stem}.gz"
        if not (plain.is_file() or gz.is_file()):
            raise DataError(f"{src}: missing {stem}[.gz] (expected the four Fashion-MNIST IDX files; "
                            "on Debian: apt-get install dataset-fashion-mnist)")
        # A temporary file of its own (unique across processes and hosts sharing the
        # cache): jobs that start together stage the same file at once, and a shared
        # name would let one truncate what another is about to move into place.
        fd, name = tempfile.mkstemp(dir=raw_dir, prefix=f".{stem}.", suffix=".partial")
        os.close(fd)
        tmp = Path(name)
        try:
            if plain.is_file():
                shutil.copyfile(plain, tmp)
            else:
                try:
                    with gzip.open(gz, "rb") as fin, open(tmp, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
                except (OSError, EOFError) as exc:
                    raise DataError(f"{gz}: not a readable gzip file ({exc})") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(target)     # atomic: concurrent runs never see a partial file


def _torchvision_tensors(cls, root: Path, train: bool, raw_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        ds = cls(str(root), train=train, download=False)
        x, y = ds.data, ds.targets
    except (RuntimeError, ValueError, AssertionError, OSError) as exc:
        raise DataError(f"{raw_dir}: corrupt or unreadable IDX files ({str(exc).splitlines()[0]})") from None
    if x.ndim != 3 or len(x) != len(y) or len(x) == 0:
        split = "train" if train else "t10k"
        raise DataError(f"{raw_dir}: {split} IDX files hold {tuple(x.shape)} images and {len(y)} labels "
                        "(expected one label per 2-D image)")
    return (x.numpy().astype(np.float32) / 255.0), y.numpy().astype(np.int64)


def load_fashion_mnist(p: DataParams, split: int | None = None) -> Splits:
    """Fashion-MNIST from IDX files (plain or .gz) in ``p.root``."""
    from torchvision.datasets import FashionMNIST

    src = Path(p.root or FASHION_DEFAULT_ROOT)
    if not src.is_dir():
        raise DataError(f"{src}: Fashion-MNIST directory not found (set data.root, or on Debian: "
                        "apt-get install dataset-fashion-mnist)")
    root = Path(p.cache_dir) / "fashion-mnist"
    raw_dir = root / "FashionMNIST" / "raw"
    _stage_idx(src, raw_dir)
    x_tr, y_tr = _torchvision_tensors(FashionMNIST, root, True, raw_dir)
    x_te, y_te = _torchvision_tensors(FashionMNIST, root, False, raw_dir)
    return _finish("fashion-mnist", x_tr, y_tr, x_te, y_te, p, n_classes=10, split=split)


def load_mnist(p: DataParams, split: int | None = None) -> Splits:
    """MNIST through torchvision: the local copy if present, else a download."""
    from torchvision.datasets import MNIST

    root = Path(p.root or Path(p.cache_dir) / "mnist")
    raw_dir = root / "MNIST" / "raw"
    if not all((raw_dir / stem).is_file() for stem in IDX_FILES):
        try:
            MNIST(str(root), train=True, download=True)
            MNIST(str(root), train=False, download=True)
        except Exception as exc:  # any network failure: say where the files go
            raise DataError(
                f"MNIST could not be downloaded ({type(exc).__name__}); put the four files "
                f"{', '.join(IDX_FILES)} (uncompressed) in {raw_dir}/ or set data.root"
            ) from None
    x_tr, y_tr = _torchvision_tensors(MNIST, root, True, raw_dir)
    x_te, y_te = _torchvision_tensors(MNIST, root, False, raw_dir)
    return _finish("mnist", x_tr, y_tr, x_te, y_te, p, n_classes=10, split=split)


def check_available(p: DataParams) -> None:
    """Fail fast, before any training, when a dataset's files cannot be found.

    Cheap (looks at file names only); corrupt content is caught when loading.
    MNIST may still be downloaded, so only an unusable ``root`` is an error.
    """
    if p.dataset == "fashion-mnist":
        src = Path(p.root or FASHION_DEFAULT_ROOT)
        if not src.is_dir():
            raise DataError(f"{src}: Fashion-MNIST directory not found (set data.root, or on Debian: "
                            "apt-get install dataset-fashion-mnist)")
        missing = [s for s in IDX_FILES if not (src / s).is_file() and not (src / f"{s}.gz").is_file()]
        if missing:
            raise DataError(f"{src}: missing {', '.join(missing)} (plain or .gz)")
    elif p.dataset == "mnist" and p.root is not None and Path(p.root).exists() and not Path(p.root).is_dir():
        raise DataError(f"{p.root}: data.root is a file, not a directory")


LOADERS = {"digits": load_digits, "fashion-mnist": load_fashion_mnist, "mnist": load_mnist}


def load_dataset(p: DataParams, split: int | None = None) -> Splits:
    """Load ``p.dataset`` and split it: the fixed split, or seed ``split``'s (deterministic in ``p`` and it)."""
    return LOADERS[p.dataset](p, split)
