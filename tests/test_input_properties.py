"""Property-based: the readers of dataset manifests, screenshot sets, `game render` parameter files and character
presets, fed arbitrary bytes, JSON or CSV text, return a correct result or raise ValueError / FileNotFoundError
naming the file, never another exception and never silent garbage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fakes import write_screenshot_set
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from datamodules.screenshots import open_screenshot_set
from game import parameters as P
from game.image_files import image_problem
from game.manifest import FIELDS, read_manifest
from game.presets import RESERVED_FIELDS, preset_dict, read_preset

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Values near the valid ones, so the properties also reach the checks after the first.
manifest_values = {
    "format_version": st.sampled_from([1, 2, True, "1", 1.0]),
    "kind": st.sampled_from(["likeness.screenshots", "other"]),
    "count": st.sampled_from([4, 0, -1, 3, 5, True, 4.0, "4", None, 10**30]),
    "size": st.sampled_from([16, 0, "16", None]),
    "image_format": st.sampled_from(["png", "jpg", "gif", 1]),
    "complete": st.sampled_from([True, False, "true", 1, None]),
    "engine_version": st.sampled_from([1, 2, "1"]),
    "num_parameters": st.sampled_from([267, 266, "267"]),
}


def _is_named_error(error: Exception, path: Path) -> bool:
    return isinstance(error, (ValueError, FileNotFoundError)) and str(path) in str(error)


@pytest.fixture(scope="module")
def fake_set(tmp_path_factory) -> Path:
    """A valid four-row format-v1 set (16 px), copied by each example that changes it."""
    return write_screenshot_set(tmp_path_factory.mktemp("property_set") / "set", count=4, size=16)


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.rmtree(target, ignore_errors=True)
    return Path(shutil.copytree(source, target))


# ---------------------------------------------------------------------------------------------------- manifest


@FAST
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_read_manifest_on_arbitrary_bytes(tmp_path, data):
    (tmp_path / "manifest.json").write_bytes(data)
    try:
        manifest = read_manifest(tmp_path)
    except Exception as error:  # noqa: BLE001 - the property: only a named ValueError / FileNotFoundError
        assert _is_named_error(error, tmp_path / "manifest.json"), repr(error)
    else:
        assert manifest == json.loads(data.decode("utf-8"))


@FAST
@given(document=json_values | st.fixed_dictionaries({}, optional={**manifest_values, "extras": json_values}))
def test_read_manifest_on_arbitrary_json(tmp_path, document):
    text = json.dumps(document)
    (tmp_path / "manifest.json").write_text(text)
    try:
        manifest = read_manifest(tmp_path)
    except Exception as error:  # noqa: BLE001
        assert _is_named_error(error, tmp_path / "manifest.json"), repr(error)
    else:  # a correct result: the document itself, every known field of its documented type
        assert manifest == json.loads(text)
        assert all(test(manifest[key]) for key, (_, test) in FIELDS.items() if key in manifest)
        assert manifest["kind"] == "likeness.screenshots" and manifest["format_version"] == 1


@FAST
@given(
    changes=st.fixed_dictionaries({}, optional=manifest_values), extra=st.dictionaries(st.text(max_size=8), json_values)
)
def test_open_screenshot_set_with_a_changed_manifest(fake_set, tmp_path, changes, extra):
    root = _copy(fake_set, tmp_path)
    manifest = {**extra, **json.loads((root / "manifest.json").read_text()), **changes}
    (root / "manifest.json").write_text(json.dumps(manifest))
    try:
        opened = open_screenshot_set(root)
    except Exception as error:  # noqa: BLE001
        assert _is_named_error(error, root), repr(error)
    else:  # only when it really describes the set on disk
        assert manifest["count"] == 4 and manifest["complete"] is True and manifest["image_format"] == "png"
        assert len(opened) == 4 and opened.parameters.shape == (4, 267) and opened.parameters.dtype == np.float32
        assert all(path.is_file() for path in opened.files)


@FAST
@given(data=st.binary(max_size=300))
def test_open_screenshot_set_with_arbitrary_parameters_npy(fake_set, tmp_path, data):
    root = _copy(fake_set, tmp_path)
    (root / "parameters.npy").write_bytes(data)
    with pytest.raises((ValueError, FileNotFoundError)) as caught:
        open_screenshot_set(root)
    assert str(root / "parameters.npy") in str(caught.value)


@FAST
@given(
    rows=st.integers(0, 6),
    columns=st.sampled_from([266, 267]),
    dtype=st.sampled_from(["f4", "f8", "i2", "U3", "c8", "?"]),
    scale=st.floats(0, 4),
)
def test_open_screenshot_set_with_other_parameter_arrays(fake_set, tmp_path, rows, columns, dtype, scale):
    root = _copy(fake_set, tmp_path)
    array = (np.random.default_rng(rows).uniform(-1, 1, (rows, columns)) * scale).astype(dtype)
    np.save(root / "parameters.npy", array)
    try:
        opened = open_screenshot_set(root)
    except Exception as error:  # noqa: BLE001
        assert _is_named_error(error, root / "parameters.npy"), repr(error)
    else:
        assert (rows, columns) == (4, 267) and dtype in ("f4", "f8", "i2", "?")
        assert np.abs(array.astype(np.float64)).max() <= 2.5 + 1e-6
        np.testing.assert_array_equal(opened.parameters, array.astype(np.float32))


# ---------------------------------------------------------------------------------------- `game render` parameters


@FAST
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".npy", ".txt"]))
def test_read_rows_on_arbitrary_bytes(tmp_path, data, suffix):
    path = tmp_path / f"params{suffix}"
    path.write_bytes(data)
    try:
        rows = P.read_rows(path)
    except Exception as error:  # noqa: BLE001
        assert _is_named_error(error, path), repr(error)
    else:  # not reached by chance in practice; when it is, the rows are valid parameters
        assert rows.ndim == 2 and rows.shape[1] == P.NUM_PARAMETERS and np.isfinite(rows).all()


cells = st.sampled_from(["0", "1.5", "-2.5", "2.5000001", "3", "nan", "inf", "", " 1 ", "x", "1e3", "#"])


@FAST
@given(
    lines=st.lists(st.lists(cells, min_size=1, max_size=3).map(lambda c: (c * 100)[: 267 + len(c) % 2]), max_size=3),
    header=st.booleans(),
)
def test_read_rows_on_arbitrary_csv(tmp_path, lines, header):
    path = tmp_path / "params.csv"
    text = [",".join(f"p{i}" for i in range(267))] if header else []
    path.write_text("\n".join(text + [",".join(line) for line in lines]) + "\n")
    try:
        rows = P.read_rows(path)
    except Exception as error:  # noqa: BLE001
        assert _is_named_error(error, path), repr(error)
    else:  # every non-blank, non-comment line was a valid row, read as written
        expected = [[float(v) for v in line] for line in lines if "".join(line).strip() and not line[0].startswith("#")]
        np.testing.assert_array_equal(rows, np.asarray(expected, np.float32))


@FAST
@given(
    values=st.lists(st.lists(st.floats(-2.5, 2.5, width=32), min_size=267, max_size=267), min_size=1, max_size=3),
    header=st.booleans(),
    blank=st.booleans(),
)
def test_read_rows_reads_valid_csv_and_npy_exactly(tmp_path, values, header, blank):
    expected = np.asarray(values, np.float32)
    lines = [",".join(f"p{i}" for i in range(267))] if header else []
    lines += [",".join(repr(float(v)) for v in row) + ("\n" if blank else "") for row in expected]
    (tmp_path / "params.csv").write_text("\n".join(lines) + "\n")
    np.testing.assert_array_equal(P.read_rows(tmp_path / "params.csv"), expected)
    np.save(tmp_path / "params.npy", expected)
    np.testing.assert_array_equal(P.read_rows(tmp_path / "params.npy"), expected)


def test_read_rows_names_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        P.read_rows(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match=f"{tmp_path}: a folder"):
        P.read_rows(tmp_path)


# ------------------------------------------------------------------------------------------- image file checks


@FAST
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8"]))
def test_image_problem_never_raises_on_arbitrary_bytes(tmp_path, data, prefix):
    path = tmp_path / "0000000.png"
    path.write_bytes(prefix + data)
    for verify in ("header", "full"):
        problem = image_problem(path, 16, verify)
        assert isinstance(problem, str) and problem  # nothing here is a whole 16 px RGB image


def test_image_problem_finds_a_late_jpeg_frame_header(tmp_path):
    image = Image.fromarray(np.zeros((32, 32, 3), np.uint8))
    image.save(tmp_path / "exif.jpg", exif=b"Exif\x00\x00" + bytes(5000), quality=95)  # frame header after 5 kB
    assert image_problem(tmp_path / "exif.jpg", 32) is None
    assert image_problem(tmp_path / "exif.jpg", 16) == "JPEG is 32x32 with 3 channels, expected 16x16 RGB"
    assert image_problem(tmp_path / "missing.jpg", 32) == "missing"


# ---------------------------------------------------------------------------------------------- character presets

slider_values = st.sampled_from(
    [0, 0.25, -2.5, 2.5, 2.5000001, 3, -1e9, 10**400, float("nan"), float("-inf"), "1", True]
)


@FAST
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_read_preset_on_arbitrary_bytes(tmp_path, data):
    path = tmp_path / "preset.json"
    path.write_bytes(data)
    with pytest.raises((ValueError, FileNotFoundError)) as caught:  # 267 named sliders never come by chance
        read_preset(path)
    assert str(caught.value).startswith(str(path)), caught.value


@FAST
@given(
    version=st.sampled_from([P.TABLE_VERSION, "v0-000000000000", None, 3, "absent"]),
    changes=st.dictionaries(st.sampled_from([*P.names()[:4], "jaw_hieght", ""]), slider_values, max_size=3),
    dropped=st.lists(st.sampled_from(P.names()[:4]), max_size=2),
    notes=st.dictionaries(st.text(max_size=8).filter(lambda key: key not in RESERVED_FIELDS), json_values, max_size=2),
)
def test_read_preset_on_changed_presets(tmp_path, version, changes, dropped, notes):
    document = preset_dict(np.zeros(P.NUM_PARAMETERS), **notes)
    document["parameter_table_version"] = version
    if version == "absent":
        del document["parameter_table_version"]
    document["parameters"].update(changes)
    for name in dropped:
        document["parameters"].pop(name, None)
    path = tmp_path / "preset.json"
    path.write_text(json.dumps(document))
    try:
        values = read_preset(path)
    except Exception as error:  # noqa: BLE001
        assert _is_named_error(error, path) and "\n" not in str(error), repr(error)
    else:  # only a preset of this table (or none recorded) naming every slider once, each a number in range
        assert version in (P.TABLE_VERSION, None, "absent") and list(document["parameters"]) == P.names()
        sliders = document["parameters"].values()
        assert all(type(v) in (int, float) and abs(v) <= 2.5 + 1e-6 for v in sliders)
        np.testing.assert_array_equal(values, np.asarray(list(sliders), np.float32))
