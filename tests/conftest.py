"""Shared fixtures. Matplotlib must never try to open a window in tests."""

from __future__ import annotations

import copy
from pathlib import Path

import matplotlib
import pytest
import yaml

from tests.helpers import SMOKE

matplotlib.use("Agg")


@pytest.fixture(scope="session", autouse=True)
def private_fork_servers(tmp_path_factory):
    """Fork servers started by the tests live in a directory of their own and are stopped at the end.

    Without this, `noisefloor train` subprocesses would share (and leave
    running for a minute) the user's own servers.
    """
    from noisefloor import forkserver

    mp = pytest.MonkeyPatch()
    mp.setenv(forkserver.ENV_DIR, str(tmp_path_factory.mktemp("forkservers")))
    yield
    forkserver.stop()
    mp.undo()


@pytest.fixture(scope="session")
def smoke():
    """The smoke params, loaded."""
    from noisefloor import params as P

    return P.load(SMOKE)


@pytest.fixture(scope="session")
def splits(smoke):
    """The smoke experiment's data (loaded once per test session)."""
    from noisefloor.data import load_dataset

    return load_dataset(smoke.data)


@pytest.fixture
def smoke_raw() -> dict:
    """The smoke params as a fresh, mutable dict."""
    return copy.deepcopy(yaml.safe_load(SMOKE.read_text()))


@pytest.fixture
def write_params(tmp_path):
    """Write a params dict (or raw text) to a file in tmp_path and return its path."""

    def _write(raw, name="params.yaml") -> Path:
        path = tmp_path / name
        path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
        return path

    return _write


@pytest.fixture(scope="module")
def result():
    """The real analysis of the synthetic sweep (tests/synthetic.py): the figures' and the report's input."""
    from tests import synthetic

    return synthetic.analysis(synthetic.make_runs())
