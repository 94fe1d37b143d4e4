"""The shipped examples stay valid and at the size the README promises."""

from pathlib import Path

from noisefloor import params as P

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_reference_design_examples_are_the_designs_shape():
    laptop = P.load(EXAMPLES / "reference-design" / "params.yaml")
    gpu = P.load(EXAMPLES / "reference-design" / "params.fashion-mnist.yaml")
    for p, n, dataset, top_k in ((laptop, 40, "digits", 3), (gpu, 210, "fashion-mnist", 5)):
        assert p.data.dataset == dataset and not p.configs and p.sweep.method == "random"
        assert len(p.noise_seeds) == n and len(p.sweep_configs) == n and p.sweep.seeds == (0,)
        # the winner confirmed at fresh seeds (not the search's), where the baseline runs too
        assert p.sweep.confirm_top_k == top_k and 0 not in p.sweep.confirm_seeds
        assert set(p.sweep.confirm_seeds) <= set(p.noise_seeds)
        assert len(p.runs()) == 2 * n
        base = p.resolve(p.baseline)
        assert (base.model.hidden_size, base.model.num_layers, base.model.bidirectional) == (128, 2, True)
        assert (base.train.optimizer, base.train.lr, base.train.batch_size) == ("adam", 0.003, 100)
    # the laptop version is the first 40 configs of the GPU one's space, drawn the same way
    assert dict(laptop.sweep.parameters) == dict(gpu.sweep.parameters)
    assert [dict(laptop.sweep_configs[c]) for c in laptop.sweep_configs] == \
        [dict(gpu.sweep_configs[c]) for c in list(gpu.sweep_configs)[:40]]


def test_the_own_model_example_is_a_program_with_its_deps():
    p = P.load(EXAMPLES / "own-model" / "params.yaml")
    assert not p.program.builtin and p.program.deps == ("train.py",)
    assert len(p.runs()) == 20 + 3 * 4


def test_the_adaptive_example_is_the_shipped_experiment_with_adaptive_seeds():
    shipped = P.load(EXAMPLES.parent / "params.yaml")
    p = P.load(EXAMPLES / "adaptive" / "params.yaml")
    assert p.runs() == shipped.runs() and dict(p.configs) == dict(shipped.configs)
    assert p.resolve(p.baseline).config_hash == shipped.resolve(shipped.baseline).config_hash
    assert p.adaptive.max_seeds == len(p.noise_seeds)        # every run of every round stays paired


def test_the_adaptive_example_has_every_key_dvc_reads():
    """Copied over params.yaml it runs under DVC too (DVC stops on a params key that is missing)."""
    import yaml

    raw = yaml.safe_load((EXAMPLES / "adaptive" / "params.yaml").read_text())
    stages = yaml.safe_load((EXAMPLES.parent / "dvc.yaml").read_text())["stages"]
    keys = {k for stage in stages.values() for k in stage.get("params", []) if isinstance(k, str) and "${" not in k}
    assert {"seeds.sources", "stats.baseline"} <= keys
    for key in keys:
        node = raw
        for part in key.split("."):
            assert part in node, key
            node = node[part]
