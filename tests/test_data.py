import gzip
import struct

import numpy as np
import pytest
import torch

from noisefloor.data import IDX_FILES, DataError, load_dataset
from noisefloor.params import DataParams


def test_digits_splits_are_disjoint_fixed_and_scaled():
    a = load_dataset(DataParams(dataset="digits"))
    b = load_dataset(DataParams(dataset="digits"))
    assert a.x_train.shape[1:] == (8, 8) and a.row_size == 8 and a.n_classes == 10
    assert sum(a.sizes().values()) == 1797
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_train, b.y_train)
    assert 0.0 <= float(a.x_train.min()) and float(a.x_train.max()) <= 1.0
    # no image appears in two splits
    rows = lambda x: {tuple(r) for r in x.reshape(len(x), -1).numpy().round(4)}
    assert not rows(a.x_val) & rows(a.x_test)
    # stratified: every class in the validation set
    assert set(a.y_val.tolist()) == set(range(10))


def test_embedded_digits_equal_scikit_learns():
    sklearn = pytest.importorskip("sklearn.datasets")
    from noisefloor.data import digits_arrays

    ref = sklearn.load_digits()
    images, target = digits_arrays()
    assert np.array_equal(images, ref.images) and np.array_equal(target, ref.target)


def test_split_seed_changes_the_split_and_subset_truncates():
    a = load_dataset(DataParams(dataset="digits", split_seed=0))
    b = load_dataset(DataParams(dataset="digits", split_seed=1, train_subset=100))
    assert not torch.equal(a.y_val, b.y_val)
    assert len(b.y_train) == 100


def _idx(path, array, gz):
    array = np.asarray(array, dtype=np.uint8)
    head = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = head + array.tobytes()
    (gzip.open(str(path) + ".gz", "wb") if gz else open(path, "wb")).write(data)


def _fake_fashion(tmp_path, gz=True, n_train=50, n_test=20):
    rng = np.random.default_rng(0)
    src = tmp_path / "fashion"
    src.mkdir()
    _idx(src / IDX_FILES[0], rng.integers(0, 256, (n_train, 28, 28)), gz)
    _idx(src / IDX_FILES[1], np.arange(n_train) % 10, gz)
    _idx(src / IDX_FILES[2], rng.integers(0, 256, (n_test, 28, 28)), gz)
    _idx(src / IDX_FILES[3], np.arange(n_test) % 10, gz)
    return src


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_files_through_torchvision(tmp_path, gz):
    src = _fake_fashion(tmp_path, gz=gz)
    s = load_dataset(DataParams(dataset="fashion-mnist", root=str(src), cache_dir=str(tmp_path / "cache")))
    assert s.x_train.shape[1:] == (28, 28) and s.row_size == 28
    assert len(s.y_train) + len(s.y_val) == 50 and len(s.y_test) == 20
    assert s.x_test.dtype == torch.float32 and float(s.x_test.max()) <= 1.0
    # the uncompressed copies sit where torchvision's download=False check looks
    assert (tmp_path / "cache/fashion-mnist/FashionMNIST/raw" / IDX_FILES[0]).is_file()


def test_fashion_mnist_missing_directory_says_where(tmp_path):
    with pytest.raises(DataError, match="not found .*dataset-fashion-mnist"):
        load_dataset(DataParams(dataset="fashion-mnist", root=str(tmp_path / "nowhere")))


def test_fashion_mnist_missing_file_and_corrupt_files(tmp_path):
    src = _fake_fashion(tmp_path)
    (src / (IDX_FILES[3] + ".gz")).unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset(DataParams(dataset="fashion-mnist", root=str(src), cache_dir=str(tmp_path / "c1")))
    (src / (IDX_FILES[0] + ".gz")).write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset(DataParams(dataset="fashion-mnist", root=str(src), cache_dir=str(tmp_path / "c2")))
    # neither failure leaves a half-staged file behind
    assert not [p for p in tmp_path.glob("c*/**/*") if p.name.endswith(".partial")]


def test_fashion_mnist_truncated_idx_is_reported(tmp_path):
    src = _fake_fashion(tmp_path, gz=False)
    data = (src / IDX_FILES[0]).read_bytes()
    (src / IDX_FILES[0]).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or unreadable IDX"):
        load_dataset(DataParams(dataset="fashion-mnist", root=str(src), cache_dir=str(tmp_path / "c")))


def test_mnist_without_network_says_where_to_put_files(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self, *a, **k):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(DataError) as info:
        load_dataset(DataParams(dataset="mnist", cache_dir=str(tmp_path)))
    msg = str(info.value)
    assert "could not be downloaded" in msg and str(tmp_path / "mnist" / "MNIST" / "raw") in msg


def test_check_available_fails_fast_without_reading_data(tmp_path):
    from noisefloor.data import check_available

    check_available(DataParams(dataset="digits"))
    src = _fake_fashion(tmp_path)
    check_available(DataParams(dataset="fashion-mnist", root=str(src)))
    (src / (IDX_FILES[1] + ".gz")).unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte"):
        check_available(DataParams(dataset="fashion-mnist", root=str(src)))
    with pytest.raises(DataError, match="directory not found"):
        check_available(DataParams(dataset="fashion-mnist", root=str(tmp_path / "nope")))


def _stage_after(barrier, src, raw_dir, errors):
    from noisefloor.data import _stage_idx

    barrier.wait()
    try:
        _stage_idx(src, raw_dir)
    except Exception as exc:                  # reported to the parent, which fails the test
        errors.put(f"{type(exc).__name__}: {exc}")


def test_jobs_staging_the_same_files_at_once_all_get_whole_files(tmp_path):
    """Jobs that start together (one per seed block on a GPU) stage the same IDX files concurrently."""
    import multiprocessing

    rng = np.random.default_rng(1)
    src = tmp_path / "fashion"
    src.mkdir()
    images = rng.integers(0, 256, (20_000, 28, 28))         # 15 MB: staging takes long enough to overlap
    for stem, array in zip(IDX_FILES, (images, np.arange(20_000) % 10, images[:100], np.arange(100) % 10)):
        _idx(src / stem, array, gz=True)
    raw_dir = tmp_path / "cache" / "raw"
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_stage_after, args=(barrier, src, raw_dir, errors)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    problems = [errors.get() for _ in range(errors.qsize())]
    assert problems == [] and [p.exitcode for p in procs] == [0] * 6
    for stem in IDX_FILES:
        with gzip.open(src / f"{stem}.gz", "rb") as f:
            assert (raw_dir / stem).read_bytes() == f.read(), stem
    assert sorted(p.name for p in raw_dir.iterdir()) == sorted(IDX_FILES)      # no temporary file left behind
