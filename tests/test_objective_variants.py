"""studies.objective_variants: the numbers its table is made of, on predictions with a known answer."""

import numpy as np
import pytest

from studies.objective_variants.__main__ import parse_args
from studies.objective_variants.variants import IMITATORS, VARIANTS, summary


def test_summary_separates_offset_slope_and_correlation():
    rng = np.random.default_rng(0)
    truth = rng.uniform(-2.5, 2.5, size=(500, 3))
    predicted = np.stack(
        [
            0.5 * truth[:, 0] + 1.0,  # half the slope, offset +1, perfectly correlated
            np.zeros(500),  # the neutral face
            truth[:, 2],
        ],
        axis=1,
    )  # exact
    result = summary(predicted, truth, visible=np.array([0, 2]), names=["a", "b", "c"])
    a, c = result["visible"]["a"], result["visible"]["c"]
    assert a["slope"] == pytest.approx(0.5) and a["correlation"] == pytest.approx(1.0)
    assert a["offset"] == pytest.approx(1.0 - 0.5 * truth[:, 0].mean())
    assert c == pytest.approx({"correlation": 1.0, "offset": 0.0, "slope": 1.0})
    assert "b" not in result["visible"]
    assert result["rmse_predicting_zero"] == pytest.approx(np.sqrt((truth**2).mean()))
    assert result["mean_abs_offset"] == pytest.approx(np.abs((predicted - truth).mean(0)).mean())


def test_every_variant_overrides_known_init_args_and_names_an_imitator_it_can_train():
    import dataclasses
    import inspect

    from lightning_modules.regression import RegressionModule
    from losses import ObjectiveSettings

    known = set(inspect.signature(RegressionModule.__init__).parameters)
    known |= {f"objective.{field.name}" for field in dataclasses.fields(ObjectiveSettings)}
    for name, (_, overrides) in VARIANTS.items():
        keys = [flag.removeprefix("--model.init_args.") for flag in overrides[::2] if flag.startswith("--model.")]
        assert set(keys) <= known, name
        imitator = overrides[overrides.index("--model.init_args.imitator_checkpoint") + 1]
        assert imitator in IMITATORS, name  # so train() can make it when it is missing


def test_command_line_defaults_to_every_variant_and_rejects_unknown_ones():
    assert parse_args([]).names == list(VARIANTS)
    assert parse_args(["sup_only", "demo"]).names == ["sup_only", "demo"]
    with pytest.raises(SystemExit):
        parse_args(["no_such_variant"])
