"""The prepared GPU sweep: its params stay valid and at the scale it is meant to show."""

from noisefloor import params as P
from tests.helpers import ROOT


def test_gpu_sweep_params_are_valid_and_real_scale():
    sweep = P.load(ROOT / "benchmarks" / "params.gpu-sweep.yaml")
    variants = [name for name in sweep.config_names if name != sweep.baseline]
    base = sweep.resolve(sweep.baseline)
    assert base.data.dataset == "fashion-mnist" and base.data.train_subset is None
    assert base.train.device == "cuda" and base.train.epochs >= 3 and base.train.seed_batch > 1
    assert (base.model.hidden_size, base.model.num_layers, base.model.bidirectional) == (128, 2, True)
    assert (base.train.optimizer, base.train.lr, base.train.batch_size) == ("adam", 0.003, 100)
    assert len(sweep.noise_seeds) >= 32 and len(variants) == 8 and len(sweep.signal_seeds) == 4
    # each variant changes something, and no two are the same experiment
    hashes = {sweep.resolve(name).config_hash for name in sweep.config_names}
    assert len(hashes) == len(sweep.config_names)
    assert len(sweep.runs()) == len(sweep.noise_seeds) + 8 * 4
