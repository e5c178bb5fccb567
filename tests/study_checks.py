"""What every training study's tests check the same way."""

from __future__ import annotations

import pytest


def assert_refused_before_training(study, arguments: list[str], message: str, capsys, monkeypatch) -> None:
    """study.main(arguments) exits with 2 and `message` on stderr without training anything."""
    monkeypatch.setattr(study, "train", lambda *a, **k: pytest.fail("trained despite a bad argument"))
    with pytest.raises(SystemExit) as exit_:
        study.main(arguments)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
