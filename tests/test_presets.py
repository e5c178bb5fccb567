"""Character presets (game.presets): one JSON format written by the reconstruct tool and read by `game render`;
the round trip is exact and every bad preset is one error naming the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from game import parameters as P
from game.__main__ import main
from game.engine import Game
from game.presets import preset_dict, read_preset, write_preset


def character(seed: int) -> np.ndarray:
    row = np.random.default_rng(seed).uniform(-2.5, 2.5, P.NUM_PARAMETERS).astype(np.float32)
    row[:3] = (-2.5, 2.5, 0.0)  # the ends of the range and the neutral value travel exactly too
    return row


@pytest.mark.parametrize("seed", [0, 1])
def test_write_then_read_gives_the_same_vector(tmp_path, seed):
    row = character(seed)
    path = write_preset(tmp_path / "me.json", row, source="photo.jpg", checkpoint=None)
    again = read_preset(path)
    assert again.dtype == np.float32 and again.shape == (P.NUM_PARAMETERS,)
    np.testing.assert_array_equal(again, row)
    document = json.loads(path.read_text())
    assert list(document) == ["parameter_table_version", "parameters", "source", "checkpoint"]
    assert document["parameter_table_version"] == P.TABLE_VERSION and list(document["parameters"]) == P.names()


def test_sliders_are_read_by_name_whatever_their_order(tmp_path):
    row = character(2)
    document = preset_dict(row)
    document["parameters"] = dict(reversed(document["parameters"].items()))
    (tmp_path / "reversed.json").write_text(json.dumps(document))
    np.testing.assert_array_equal(read_preset(tmp_path / "reversed.json"), row)


def test_a_preset_without_a_recorded_table_version_is_read_by_its_names(tmp_path):
    """As game.parameters.check_same_table does for any file: an unrecorded version is not checked."""
    document = preset_dict(character(3))
    del document["parameter_table_version"]
    (tmp_path / "old.json").write_text(json.dumps(document))
    np.testing.assert_array_equal(read_preset(tmp_path / "old.json"), character(3))


@pytest.mark.parametrize(
    ("params", "notes", "message"),
    [
        (np.full(267, np.nan), {}, "not finite"),
        (np.full(267, 3.0), {}, "outside"),
        (np.zeros(266), {}, "expected 267 parameters"),
        (np.zeros((2, 267)), {}, "one character"),
        (np.zeros(267), {"parameters": {}}, "'parameters' is a field of the preset"),
    ],
    ids=["nan", "out_of_range", "wrong_length", "two_rows", "note_named_parameters"],
)
def test_write_preset_refuses_bad_parameters_and_writes_nothing(tmp_path, params, notes, message):
    with pytest.raises(ValueError, match=message):
        write_preset(tmp_path / "bad.json", params, **notes)
    assert not (tmp_path / "bad.json").exists()


def _document(**changes) -> dict:
    document = preset_dict(np.zeros(P.NUM_PARAMETERS))
    sliders = document["parameters"]
    for key, value in changes.items():
        if key == "drop":
            del sliders[value]
        elif key == "add":
            sliders[value] = 0.0
        elif key == "sliders":
            document["parameters"] = value
        elif key == "version":
            document["parameter_table_version"] = value
        else:
            sliders[key] = value
    return document


# (file content, words the one-line error must hold after the file's name). Shared with tests/test_game_cli.py,
# which runs each through `python -m game render`.
BAD_PRESETS = {
    "other_table_version": (
        json.dumps(_document(version="v0-000000000000")),
        ["uses parameter table v0-000000000000", "this game uses", "mean different things"],
    ),
    "version_not_a_string": (json.dumps(_document(version=3)), ["parameter_table_version must be a string"]),
    "missing_slider": (json.dumps(_document(drop="jaw_height")), ["1 of the 267 sliders missing", "jaw_height"]),
    "unknown_slider": (json.dumps(_document(add="jaw_hieght")), ["unknown slider name", "jaw_hieght", "jaw_height"]),
    "nan": (json.dumps(_document(jaw_height=float("nan"))), ["'jaw_height' is nan, not a finite number"]),
    "infinity": (json.dumps(_document(jaw_height=float("-inf"))), ["'jaw_height' is -inf, not a finite number"]),
    "out_of_range": (json.dumps(_document(jaw_height=3)), ["'jaw_height' = 3 is outside [-2.5, 2.5]"]),
    "huge_integer": (json.dumps(_document(jaw_height=10**400)), ["'jaw_height' = 10000000... is outside"]),
    "not_a_number": (json.dumps(_document(jaw_height="wide")), ["'jaw_height' is \"wide\", not a number"]),
    "boolean": (json.dumps(_document(jaw_height=True)), ["'jaw_height' is true, not a number"]),
    "repeated_slider": (
        json.dumps(_document()).replace('"jaw_height": 0.0', '"jaw_height": 0.0, "jaw_height": 1.0'),
        ["'jaw_height' appears twice"],
    ),
    "bad_json": ('{"parameters": {"jaw_height": 0.0,}', ["not a JSON preset", "line 1"]),
    "not_utf8": (b"\xff\xfe{}", ["not a JSON preset", "not UTF-8"]),
    "not_an_object": ("[1, 2, 3]", ["expected a JSON object", "got a list"]),
    "no_parameters": (json.dumps({"parameter_table_version": P.TABLE_VERSION}), ["no 'parameters' object"]),
    "parameters_a_list": (json.dumps(_document(sliders=[0.0] * 267)), ["expected a 'parameters' object", "a list"]),
}


def write_bad_preset(folder: Path, name: str) -> tuple[Path, list[str]]:
    """One of BAD_PRESETS as `folder/<name>.json`: (path, the words its error must hold)."""
    content, words = BAD_PRESETS[name]
    path = folder / f"{name}.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path, words


@pytest.mark.parametrize("name", list(BAD_PRESETS))
def test_a_bad_preset_is_one_error_naming_the_file_and_the_problem(tmp_path, name):
    path, words = write_bad_preset(tmp_path, name)
    with pytest.raises(ValueError) as caught:
        read_preset(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    for word in words:
        assert word in message, message


def test_a_missing_preset_or_a_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nobody.json'}: preset file not found"):
        read_preset(tmp_path / "nobody.json")
    with pytest.raises(ValueError, match=f"{tmp_path}: a folder"):
        read_preset(tmp_path)
    (tmp_path / "folder.json").mkdir()
    for path, says in ((tmp_path / "nobody.json", "preset file not found"), (tmp_path / "folder.json", "a folder")):
        assert run_game_render(path, "--out", tmp_path / "out") == f"python -m game render: error: {path}: {says}" + (
            ", expected a preset .json file" if says == "a folder" else ""
        )


# ------------------------------------------------------------------------------------ `python -m game render PRESET`


def run_game_render(*argv) -> str | None:
    """`python -m game render ARGV` in this process: None on success, else the one-line error it exits with."""
    try:
        main(["render", *map(str, argv)])
    except SystemExit as exit_:
        assert isinstance(exit_.code, str), exit_.code  # sys.exit(message): status 1, message on stderr
        return exit_.code
    return None


@pytest.mark.parametrize("name", list(BAD_PRESETS))
def test_game_render_refuses_a_bad_preset_in_one_line_and_writes_nothing(tmp_path, capsys, name):
    path, words = write_bad_preset(tmp_path, name)
    message = run_game_render(path, "--out", tmp_path / "out", "--size", 16, "--mesh", "obj")
    assert message is not None and message.startswith(f"python -m game render: error: {path}"), message
    assert "\n" not in message and all(word in message for word in words), message
    assert not (tmp_path / "out").exists() and "images" not in capsys.readouterr().out


@pytest.mark.parametrize("style", ["game", "photo"])
def test_the_render_of_a_preset_is_the_render_of_its_vector(tmp_path, capsys, style):
    import cv2

    row = character(4)
    write_preset(tmp_path / "alice.json", row, source="test")
    assert run_game_render(tmp_path / "alice.json", "--out", tmp_path / "out", "--size", 32, "--style", style) is None
    assert "1 images in" in capsys.readouterr().out
    image = Game(32, style).render(row, np.random.default_rng([0, 0]))  # the CLI's draws for row 0 at --seed 0
    cv2.imwrite(str(tmp_path / "reference.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert (tmp_path / "out" / "alice.png").read_bytes() == (tmp_path / "reference.png").read_bytes()
