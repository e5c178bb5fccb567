"""`python -m game` on bad input (docs/bad_input.md): arguments are checked before any worker starts or any file is
written, an error is one line naming the argument or file, a damaged set is repaired, and no write is reported that
was not made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import write_screenshot_set

from datamodules import CrossDomainDataModule
from datamodules.screenshots import ScreenshotDataset, open_screenshot_set
from game import dataset
from game.__main__ import main
from game.dataset import generate, image_path, read_manifest

REPO = Path(__file__).resolve().parents[1]


def run_game(capsys, *argv) -> tuple[int, str, str]:
    """`python -m game ARGV` in this process: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


# ------------------------------------------------------------------------------------------------------- generate


@pytest.mark.parametrize("count", [200, 4])
def test_generate_with_a_bad_size_fails_at_once_and_leaves_nothing(tmp_path, count):
    """count 200 used to hang (spawned workers restarting on the size check); count 4 left a half-made folder."""
    out = tmp_path / "set"
    command = [sys.executable, "-m", "game", "generate", "--out", out, "--size", 7, "--count", count, "--workers", 2]
    done = subprocess.run(list(map(str, command)), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    one_line_error(done.stderr, "--size", "at least 16")
    assert not out.exists()
    with pytest.raises(ValueError, match="size must be at least 16"):  # the library too, with several workers
        generate(out, count, size=7, workers=2, progress=False)
    assert not out.exists()


def test_a_worker_whose_setup_fails_reports_it_instead_of_restarting(monkeypatch):
    monkeypatch.setattr(dataset, "_worker_game", None)
    monkeypatch.setattr(dataset, "_worker_error", None)
    dataset._init_worker(7, "game")
    with pytest.raises(ValueError, match="size must be at least 16"):
        dataset._render_rows(("unused", 0, "png", [0], np.zeros((1, 267), np.float32)))


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _zero_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:24] = bytes(24)
    path.write_bytes(bytes(data))


def _wrong_size(path: Path) -> None:
    import cv2

    cv2.imwrite(str(path), np.zeros((16, 16, 3), np.uint8))


def _corrupt_pixels(path: Path) -> None:
    """Garble the compressed pixels; signature, header and end marker stay."""
    data = bytearray(path.read_bytes())
    middle = slice(60, len(data) - 30)
    data[middle] = bytes(b ^ 0x5A for b in data[middle])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("style", "damage", "verify"),
    [
        ("game", _delete, "header"),
        ("game", _truncate, "header"),
        ("photo", _truncate, "header"),
        ("game", _zero_header, "header"),
        ("photo", _wrong_size, "header"),
        ("game", _corrupt_pixels, "full"),
    ],
    ids=["deleted", "truncated-png", "truncated-jpg", "no-signature", "wrong-size", "corrupt-pixels-full"],
)
def test_generate_on_a_complete_set_rerenders_missing_or_damaged_images(tmp_path, capsys, style, damage, verify):
    settings = ["--size", 32, "--count", 4, "--seed", 5, "--style", style, "--renders-per-identity", 2]
    out = tmp_path / "set"
    assert run_game(capsys, "generate", "--out", out, *settings, "--workers", 1)[0] == 0
    fmt = read_manifest(out)["image_format"]
    original = {i: image_path(out, i, fmt).read_bytes() for i in range(4)}
    damage(image_path(out, 2, fmt))
    untouched = {i: image_path(out, i, fmt).stat().st_mtime_ns for i in (0, 1, 3)}
    code, _, _ = run_game(
        capsys, "generate", "--out", out, *settings, "--workers", 1, *(["--verify", "full"] if verify == "full" else [])
    )
    assert code == 0
    assert read_manifest(out)["complete"] is True
    assert {i: image_path(out, i, fmt).read_bytes() for i in range(4)} == original  # the same bytes as the first run
    assert {i: image_path(out, i, fmt).stat().st_mtime_ns for i in (0, 1, 3)} == untouched


def test_generate_on_a_sound_complete_set_writes_nothing(tmp_path):
    out = generate(tmp_path / "set", 3, size=32, workers=1, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in [*out.iterdir(), *(out / "images").iterdir()]}
    generate(out, 3, size=32, workers=1, progress=False, verify="full")
    assert {p.name: p.stat().st_mtime_ns for p in [*out.iterdir(), *(out / "images").iterdir()]} == before


@pytest.mark.parametrize("renders", [0, -1])
def test_generate_refuses_a_bad_renders_per_identity(tmp_path, capsys, renders):
    out = tmp_path / "set"
    code, _, err = run_game(
        capsys,
        "generate",
        "--out",
        out,
        "--style",
        "photo",
        "--size",
        32,
        "--count",
        4,
        "--renders-per-identity",
        renders,
    )
    assert code != 0
    one_line_error(err, "--renders-per-identity", "at least 1")
    with pytest.raises(ValueError, match="renders_per_identity must be a positive integer"):
        generate(out, 4, size=32, style="photo", renders_per_identity=renders, workers=1, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    ("argument", "value"),
    [("--count", 0), ("--workers", 0), ("--glasses", 1.5), ("--count", "many")],
)
def test_generate_refuses_other_bad_arguments_in_one_line(tmp_path, capsys, argument, value):
    arguments = {"--out": tmp_path / "set", "--count": 4, "--size": 32, "--style": "photo", argument: value}
    code, _, err = run_game(capsys, "generate", *[x for pair in arguments.items() for x in pair])
    assert code != 0
    one_line_error(err, argument)
    assert not (tmp_path / "set").exists()


# --------------------------------------------------------------------------------------------------------- render


def _params_csv(path: Path, rows: np.ndarray, header: bool) -> Path:
    lines = [",".join(f"p{i}" for i in range(rows.shape[1]))] if header else []
    lines += [",".join(f"{v:.6f}" for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "spoil",
    ["image-is-a-folder", "out-is-a-file", "out-under-a-file"],
)
def test_render_into_an_unwritable_place_fails_naming_it(tmp_path, capsys, spoil):
    params = _params_csv(tmp_path / "params.csv", np.zeros((2, 267)), header=False)
    out = tmp_path / "out"
    if spoil == "image-is-a-folder":
        (out / "0000.png").mkdir(parents=True)
        named = "0000.png"
    elif spoil == "out-is-a-file":
        out.write_text("a file")
        named = str(out)
    else:
        (tmp_path / "file").write_text("a file")
        out = tmp_path / "file" / "out"
        named = str(out)
    code, stdout, err = run_game(capsys, "render", params, "--out", out, "--size", 16)
    assert code != 0
    one_line_error(err, named)
    assert "images in" not in stdout


def test_render_skips_a_header_row_and_names_a_bad_line(tmp_path, capsys):
    rows = np.random.default_rng(0).uniform(-2.5, 2.5, (2, 267))
    params = _params_csv(tmp_path / "params.csv", rows, header=True)
    code, stdout, err = run_game(capsys, "render", params, "--out", tmp_path / "out", "--size", 16)
    assert code == 0, err
    assert "2 images" in stdout and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0000.png", "0001.png"]
    params.write_text(params.read_text().replace(f"{rows[1, 5]:.6f}", "five", 1))
    code, stdout, err = run_game(capsys, "render", params, "--out", tmp_path / "out2", "--size", 16)
    assert code != 0
    one_line_error(err, f"{params} line 3", "five")
    assert not (tmp_path / "out2").exists()


def test_render_writes_what_cv2_imwrite_wrote(tmp_path, capsys):
    """The same bytes as before the write became checked."""
    import cv2

    from game.engine import Game

    row = np.random.default_rng(1).uniform(-2.5, 2.5, 267).astype(np.float32)
    np.save(tmp_path / "params.npy", row[None])
    assert (
        run_game(capsys, "render", tmp_path / "params.npy", "--out", tmp_path / "out", "--size", 16, "--seed", 3)[0]
        == 0
    )
    image = Game(16, "game").render(row, np.random.default_rng([3, 0]))
    cv2.imwrite(str(tmp_path / "reference.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert (tmp_path / "out" / "0000.png").read_bytes() == (tmp_path / "reference.png").read_bytes()


# ---------------------------------------------------------------------------------------------------- sensitivity


@pytest.mark.parametrize(("argument", "value"), [("--faces", 0), ("--faces", -3), ("--size", 8)])
def test_sensitivity_refuses_bad_arguments(tmp_path, capsys, argument, value):
    out = tmp_path / "sensitivity.csv"
    code, _, err = run_game(capsys, "sensitivity", "--out", out, argument, value)
    assert code != 0
    one_line_error(err, argument)
    assert not out.exists()
    from game.sensitivity import measure

    with pytest.raises(ValueError, match="faces must be a positive integer"):
        measure(size=16, faces=0, progress=False)


# ---------------------------------------------------------------------------------------- screenshot dataset skip


def _corrupt(root: Path, index: int) -> Path:
    path = root / "images" / f"{index:07d}.png"
    path.write_bytes(path.read_bytes()[:40])
    return path


def test_screenshot_dataset_skips_and_counts_a_corrupt_image(tmp_path, caplog):
    root = write_screenshot_set(tmp_path / "set", count=6, size=32)
    bad = _corrupt(root, 3)
    screenshots = open_screenshot_set(root)
    with pytest.raises(ValueError, match=f"{bad.name}: cannot decode image"):
        ScreenshotDataset(screenshots, range(6))[3]
    skipping = ScreenshotDataset(screenshots, range(6), on_corrupt="skip")
    item = skipping[3]
    assert item["index"] == 4 and skipping.skipped == 1
    np.testing.assert_array_equal(item["parameters"].numpy(), screenshots.parameters[4])  # the pair stays a pair
    assert bad.name in caplog.text and "1 skipped" in caplog.text
    assert [skipping[i]["index"] for i in (0, 5)] == [0, 5] and skipping.skipped == 1


def test_datamodule_on_corrupt_skip_reads_past_missing_and_corrupt_images(tmp_path, caplog):
    root = write_screenshot_set(tmp_path / "set", count=8, size=32)
    (root / "images" / "0000001.png").unlink()
    _corrupt(root, 5)
    with pytest.raises(FileNotFoundError, match="0000001.png: image missing"):
        open_screenshot_set(root)
    dm = CrossDomainDataModule(str(root), batch_size=2, num_workers=0, pin_memory=False, on_corrupt="skip")
    dm.prepare_data()
    dm.setup("fit")
    indices = [dataset[i]["index"] for dataset in (dm.train_dataset, dm.val_dataset) for i in range(len(dataset))]
    assert 1 not in indices and 5 not in indices and len(indices) == 8
    assert "image missing" in caplog.text and "0000005.png" in caplog.text
    with pytest.raises(ValueError, match="data.on_corrupt must be one of"):
        CrossDomainDataModule(str(root), on_corrupt="ignore")
