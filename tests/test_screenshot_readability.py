"""studies.screenshot_readability: every network trains on a tiny set and reports the held-out ratio."""

import json

import pytest
from fakes import write_screenshot_set

from studies.screenshot_readability.__main__ import main
from studies.screenshot_readability.networks import NETWORKS, build


@pytest.mark.parametrize("name", NETWORKS)
def test_each_network_trains_and_writes_its_held_out_ratio(tmp_path, name):
    root = write_screenshot_set(tmp_path / "set", count=24, size=64)
    (log,) = main(
        [
            name,
            "--root",
            str(root),
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--eval-every",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert [row["step"] for row in log["rows"]] == [1, 2]
    assert all(row["held_out_rmse_over_neutral"] > 0 for row in log["rows"])
    assert json.loads((tmp_path / "out" / f"{name}.json").read_text())["rows"] == log["rows"]
    assert json.loads((root / "split.json").read_text())["count"] == 24


def test_unquantised_demo_networks_have_no_codebooks_and_the_quantised_ones_do():
    from models.vqvae2 import Quantizer

    assert any(isinstance(m, Quantizer) for m in build("demo").modules())
    assert not any(isinstance(m, Quantizer) for m in build("demo_unquantised").modules())


def test_unknown_network_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        main(["vgg", "--root", str(tmp_path)])
