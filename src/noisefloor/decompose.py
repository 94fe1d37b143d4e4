"""Where the noise comes from: the ``decompose`` section's runs, named and placed.

The decomposition runs the baseline once per source of randomness with only
that source's seed changing and every other source held at a reference seed
(``decompose_init``, ``decompose_order``, ...), then with all of them
changing (``decompose_all``), each at ``decompose.seeds``. Its runs live in
``<runs>/decompose/<config>/seed<s>`` beside a record of the section,
``<runs>/decompose/decompose.json``: one folder, so an engine without dynamic
stages (DVC) tracks the decomposition as one output, as for a sweep.

The held sources stay at ``decompose.reference`` (default: the seed after the
largest of ``decompose.seeds``, so no single-source run is the reference run
itself); a held data split is the fixed one of ``data.split_seed``. The
all-sources runs draw every stream from their seed plus
:data:`ALL_OFFSET`, so they share no stream with a single-source run.

The sources (``noisefloor.params.SOURCES``): ``init`` (the initial weights),
``order`` (the order of the training examples), ``dropout`` (dropout's masks),
``data`` (which examples are training and which validation: a different
stratified split of the same pool per seed, the test set fixed), and, in a
decomposition only, ``numeric`` (the reference seed again with
non-deterministic kernels: CUDA only; on CPU its runs are recorded as
skipped).
"""

from __future__ import annotations

#: The prefix of the decomposition's configs (no named config may take it).
PREFIX = "decompose_"
#: The folder, under the runs folder, of its runs and its record (no config may take this name).
FOLDER = "decompose"
#: The record in that folder.
RECORD = "decompose.json"
#: The source name of the runs with every source varying at once.
ALL = "all"
#: Added to every stream seed of the all-sources runs: at seed s they draw each stream from s + this, so
#: they share no stream with a single-source run at s, and the variance estimates are independent (what
#: the intervals of the shares and of the sum of the parts assume).
ALL_OFFSET = 1_000_000


def config_name(source: str) -> str:
    """The config of the runs with only ``source`` varying (``ALL``: every source)."""
    return f"{PREFIX}{source}"


def is_decompose_config(name: str) -> bool:
    return str(name).startswith(PREFIX)


def source_of(config: str) -> str:
    """The source a decomposition config varies (``all`` for every source)."""
    return str(config)[len(PREFIX):]
