"""Face-verification evaluation: benchmark readers on fake trees in the distributed layouts, the 3DMM-CNN
protocol, Table 6's masks, the verify CLI end to end, and the training callback."""

import json
import pickle
import re
import sys
import types
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import pytest
import torch
from fakes import write_network_checkpoint
from hypothesis import given, settings
from hypothesis import strategies as st

from eval import benchmarks as B
from eval import protocol
from eval.protocol import apply_mask, best_threshold, mask_rectangle, signed_sqrt, verify
from game.dataset import generate
from game.framing import TEMPLATE, similarity_to_template

REPO = Path(__file__).resolve().parents[1]
DOT_COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]], np.uint8)


def write_jpeg(path: Path, image: np.ndarray | None = None, size: int = 60, seed: int = 0) -> Path:
    """A small RGB JPEG (random smooth colours unless `image` is given)."""
    if image is None:
        rng = np.random.default_rng(seed)
        image = cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (size, size))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


def dots(size: int, points: np.ndarray) -> np.ndarray:
    """A grey image with a 5x5 coloured dot centred on each point (pixel centres at +0.5)."""
    image = np.full((size, size, 3), 128, np.uint8)
    for (x, y), colour in zip(points, DOT_COLOURS):
        image[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3] = colour
    return image


def assert_dots_at(aligned: np.ndarray, points: np.ndarray) -> None:
    """The dots of `dots(..., points)` sit where the least-squares similarity to the template takes `points`."""
    matrix = similarity_to_template(points, aligned.shape[0])
    for (x, y), colour in zip(points @ matrix[:, :2].T + matrix[:, 2], DOT_COLOURS):
        assert np.abs(aligned[int(y), int(x)].astype(int) - colour).max() < 60, (x, y, aligned[int(y), int(x)])


PEOPLE = {"Ann_A": 2, "Bob_B": 2, "Cy_C": 1}


def write_lfw(root: Path, per_fold: int = 1) -> Path:
    """LFW as distributed: <name>/<name>_<4 digits>.jpg and pairs.txt ("10 N", then N same + N different per fold)."""
    for k, (name, count) in enumerate(PEOPLE.items()):
        for n in range(1, count + 1):
            write_jpeg(root / name / f"{name}_{n:04d}.jpg", seed=10 * k + n)
    lines = [f"10 {per_fold}"]
    for fold in range(10):
        lines += ["Ann_A 1 2" if fold % 2 else "Bob_B   1   2"] * per_fold
        lines += ["Ann_A 1 Cy_C 1" if fold % 2 else "Bob_B 2\tCy_C 1"] * per_fold
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def write_cfp(root: Path) -> Path:
    """CFP as distributed: Data/Images/<id>/{frontal,profile}/NN.jpg, Protocol/Pair_list_{F,P}.txt, Split/{FF,FP}/NN."""
    frontal, profile = [], []
    for person in ("001", "002"):
        for n in ("01", "02"):
            frontal.append(write_jpeg(root / "Data" / "Images" / person / "frontal" / f"{n}.jpg", seed=len(frontal)))
            path = root / "Data" / "Images" / person / "profile" / f"{n}.jpg"
            profile.append(write_jpeg(path, seed=9 + len(profile)))
    for name, files in (("F", frontal), ("P", profile)):
        (root / "Protocol").mkdir(parents=True, exist_ok=True)
        (root / "Protocol" / f"Pair_list_{name}.txt").write_text(
            "".join(f"{i} ../{p.relative_to(root).as_posix()}\n" for i, p in enumerate(files, 1))
        )
    for proto, same, diff in (("FF", "1,2\n3,4\n", "1,3\n2,4\n"), ("FP", "1,1\n3,4\n", "1,3\n4,2\n")):
        for fold in range(1, 11):
            split = root / "Protocol" / "Split" / proto / f"{fold:02d}"
            split.mkdir(parents=True, exist_ok=True)
            (split / "same.txt").write_text(same)
            (split / "diff.txt").write_text(diff)
    return root


def write_bin(
    path: Path, count: int = 20, protocol_version: int = pickle.HIGHEST_PROTOCOL, image: np.ndarray | None = None
) -> Path:
    """An insightface .bin: pickle of (encoded 112x112 JPEG bytes, is_same flags), images 2k, 2k+1 = pair k."""
    rng = np.random.default_rng(0)
    images = []
    for _i in range(2 * count):
        crop = image if image is not None else cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (112, 112))
        images.append(cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))[1].tobytes())
    path.write_bytes(pickle.dumps((images, [k % 2 == 0 for k in range(count)]), protocol=protocol_version))
    return path


@pytest.fixture(scope="module")
def synthetic(rendered_set):
    return rendered_set(12, 32, style="photo", renders_per_identity=2)


# ---------------------------------------------------------------------------------------------------- readers


def test_lfw_pairs_folds_and_images(tmp_path):
    root = write_lfw(tmp_path / "lfw", per_fold=2)
    bench = B.read_lfw(root, 32)
    assert len(bench) == 40 and bench.num_images == 5
    assert bench.is_same.tolist() == ([True] * 2 + [False] * 2) * 10
    assert np.bincount(bench.folds).tolist() == [4] * 10
    a, b = bench.pairs[2]  # fold 0's first different pair: "Bob_B 2 Cy_C 1" (a tab inside)
    assert Path(bench.sources[a]).name == "Bob_B_0002.jpg" and Path(bench.sources[b]).name == "Cy_C_0001.jpg"
    image_a, image_b, same, fold = next(iter(bench))
    assert image_a.shape == (32, 32, 3) and image_a.dtype == np.uint8 and same is True and fold == 0
    assert "fixed placement" in bench.alignment


def test_lfw_landmarks_file_aligns_the_points_onto_the_template(tmp_path):
    root = write_lfw(tmp_path / "lfw")
    angle = np.deg2rad(8)  # the template, rotated, scaled and moved: the similarity is exact
    rotation = 70 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = TEMPLATE @ rotation.T + (18.0, 4.0)
    write_jpeg(root / "Ann_A" / "Ann_A_0001.jpg", dots(100, points))
    (tmp_path / "marks.txt").write_text(
        "# name x1 y1 ... x5 y5\nAnn_A/Ann_A_0001.jpg " + " ".join(f"{v:g}" for v in points.ravel()) + "\n"
    )
    bench = B.read_lfw(root, 128, landmarks=tmp_path / "marks.txt")
    index = next(i for i, s in enumerate(bench.sources) if Path(s).name == "Ann_A_0001.jpg")
    aligned = bench.image(index)
    assert_dots_at(aligned, points)
    matrix = similarity_to_template(points, 128)
    assert np.allclose(points @ matrix[:, :2].T + matrix[:, 2], TEMPLATE * 128)  # exact: dots on the template
    assert "landmarks file for 1/5 images" in bench.alignment


def test_detected_landmarks_find_a_face_and_are_read_back(tmp_path):
    photos = generate(
        tmp_path / "photos", 1, size=128, style="photo", renders_per_identity=1, workers=1, progress=False
    )
    root = write_lfw(tmp_path / "lfw")
    (photos / "images" / "0000000.jpg").replace(root / "Ann_A" / "Ann_A_0001.jpg")
    path = B.detect_landmarks(B.read_lfw(root, 64), tmp_path / "marks.txt", progress=False)
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("Ann_A/Ann_A_0001.jpg ")  # random images hold no face
    found = np.array(lines[0].split()[1:], float).reshape(5, 2)
    assert np.abs(found - np.load(photos / "points.npy")[0]).max() < 8  # ground truth of the rendered photo
    assert "landmarks file for 1/5 images" in B.read_lfw(root, 64, landmarks=path).alignment


def test_lfw_bad_line_names_the_file_and_line(tmp_path):
    root = write_lfw(tmp_path / "lfw")
    lines = (root / "pairs.txt").read_text().splitlines()
    lines[3] = "Ann_A 1 Bob_B 1 extra"
    (root / "pairs.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"pairs.txt: line 4 has 5 fields"):
        B.read_lfw(root, 32)


def test_cfp_ff_and_fp(tmp_path):
    root = write_cfp(tmp_path / "cfp-dataset")
    ff, fp = B.load("cfp_ff", root, 32), B.load("cfp_fp", root, 32)
    assert len(ff) == len(fp) == 40 and ff.name == "cfp_ff" and fp.name == "cfp_fp"
    assert ff.is_same.tolist()[:4] == [True, True, False, False] and np.bincount(fp.folds).tolist() == [4] * 10
    a, b = fp.pairs[0]  # FP "1,1": frontal 1 against profile 1
    assert Path(fp.sources[a]).parts[-2:] == ("frontal", "01.jpg")
    assert Path(fp.sources[b]).parts[-3:] == ("001", "profile", "01.jpg")
    assert all("profile" not in str(s) for s in ff.sources)
    assert fp.image(b).shape == (32, 32, 3)


@pytest.mark.parametrize("version", [2, pickle.HIGHEST_PROTOCOL])
def test_bin_pairs_folds_and_arcface_mapping(tmp_path, version):
    crop = dots(112, B.ARCFACE_POINTS_112 + 0.5)
    crop[:, :3] = (200, 10, 10)  # a distinct left edge, to see it replicated beyond the crop
    bench = B.load("agedb", write_bin(tmp_path / "agedb_30.bin", 20, version, crop), 128)
    assert len(bench) == 20 and bench.num_images == 40 and bench.pairs[3].tolist() == [6, 7]
    assert bench.is_same[:4].tolist() == [True, False, True, False]
    assert np.bincount(bench.folds).tolist() == [2] * 10 and (np.diff(bench.folds) >= 0).all()
    aligned = bench.image(0)
    assert_dots_at(aligned, B.ARCFACE_POINTS_112 + 0.5)
    assert np.abs(aligned[64, 0].astype(int) - (200, 10, 10)).max() < 40  # outside the crop: its edge, replicated


def test_bin_refuses_a_pickle_that_would_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    (tmp_path / "lfw.bin").write_bytes(pickle.dumps(([Evil()], [True])))
    with pytest.raises(ValueError, match="not an insightface verification .bin"):
        B.read_bin(tmp_path / "lfw.bin", 32)


def test_synthetic_pairs_are_balanced_labelled_and_deterministic(synthetic):
    bench = B.read_synthetic(synthetic, 32, seed=3)
    identities = np.load(synthetic / "identities.npy")
    same_ids = identities[bench.pairs[:, 0]] == identities[bench.pairs[:, 1]]
    assert (same_ids == bench.is_same).all() and bench.is_same.sum() == (~bench.is_same).sum() == 6
    assert bench.parameters.shape == (12, 267) and bench.image(0).shape == (32, 32, 3)
    assert np.array_equal(bench.identities, identities)  # the recovery interval resamples people
    again, other = B.read_synthetic(synthetic, 32, seed=3), B.read_synthetic(synthetic, 32, seed=4)
    assert np.array_equal(again.pairs, bench.pairs) and not np.array_equal(other.pairs, bench.pairs)
    small = B.limit_pairs(bench, 4)
    assert small.is_same.tolist() == [True, True, False, False] and len(np.unique(small.folds)) == 2
    assert small.num_images <= 8 and small.parameters.shape == (small.num_images, 267)
    assert small.identities.shape == (small.num_images,)
    assert np.array_equal(
        small.sources[small.pairs[0, 1]],
        bench.sources[bench.pairs[np.flatnonzero(np.isin(bench.folds, small.folds) & bench.is_same)[0], 1]],
    )


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("lfw_pairs", r"lfw/pairs.txt not found.*vis-www.cs.umass.edu"),
        ("lfw_image", r"Bob_B_0002.jpg not found.*LFW page"),
        ("cfp_list", r"Pair_list_P.txt not found.*cfpw.io"),
        ("agedb", r"agedb_30.bin not found.*insightface"),
        ("synthetic", r"manifest.json not found.*game generate"),
        ("locate", r"cfp-dataset.*cfp_fp.bin.*cfpw.io"),
    ],
)
def test_missing_files_name_the_file_and_where_it_is_published(tmp_path, case, pattern):
    if case in ("lfw_pairs", "lfw_image"):
        root = write_lfw(tmp_path / "lfw")
        (root / "pairs.txt" if case == "lfw_pairs" else root / "Bob_B" / "Bob_B_0002.jpg").unlink()

        def call():
            return B.load("lfw", root, 32)
    elif case == "cfp_list":
        root = write_cfp(tmp_path / "cfp-dataset")
        (root / "Protocol" / "Pair_list_P.txt").unlink()

        def call():
            return B.load("cfp_fp", root, 32)
    elif case == "agedb":

        def call():
            return B.load("agedb", tmp_path, 32)
    elif case == "synthetic":

        def call():
            return B.load("synthetic", tmp_path / "synthetic", 32)
    else:

        def call():
            return B.locate("cfp_fp", tmp_path)

    with pytest.raises(B.MissingBenchmarkFile, match=pattern):
        call()


# ---------------------------------------------------------------------------------------------------- protocol


def pairs_with_labels(count: int, seed: int = 0):
    """Labels alternating in blocks so every fold holds both kinds; 10 interleaved folds."""
    is_same = (np.arange(count) // 10) % 2 == 0
    return is_same, np.arange(count) % 10, np.random.default_rng(seed)


def test_separable_descriptors_verify_perfectly():
    is_same, folds, rng = pairs_with_labels(400)
    a = rng.normal(size=(400, 30))
    b = np.where(is_same[:, None], a + 0.05 * rng.normal(size=a.shape), rng.normal(size=a.shape))
    result = verify(a, b, is_same, folds)
    assert result.accuracy == 1.0 and result.std == 0.0 and len(result.fold_accuracy) == 10


def test_random_descriptors_verify_at_chance():
    is_same, folds, rng = pairs_with_labels(4000)
    result = verify(rng.normal(size=(4000, 20)), rng.normal(size=(4000, 20)), is_same, folds)
    assert abs(result.accuracy - 0.5) < 0.04


def test_pca_is_fitted_on_the_training_folds_only(monkeypatch):
    fitted = []

    class SpyPCA(protocol.PCA):
        def fit(self, x, y=None):
            fitted.append(np.asarray(x).copy())
            return super().fit(x, y)

    monkeypatch.setattr(protocol, "PCA", SpyPCA)
    is_same, folds, rng = pairs_with_labels(100)
    a, b = rng.normal(size=(100, 5)), rng.normal(size=(100, 5))
    verify(a, b, is_same, folds)
    for fold, rows in enumerate(fitted):
        train = folds != fold
        assert np.array_equal(rows, np.concatenate([a[train], b[train]]))


def test_the_test_fold_does_not_leak_into_pca():
    """Fold 0 holds most pairs, all shifted far along one offset. PCA fitted on the other folds leaves that offset
    in, so every fold-0 pair looks alike (accuracy 0.5); had fold 0 leaked into the PCA mean, it would be ~1.0."""
    rng = np.random.default_rng(0)
    sizes = [4000] + [10] * 9
    folds = np.repeat(np.arange(10), sizes)
    is_same = np.concatenate([np.arange(n) % 2 == 0 for n in sizes])
    a = rng.normal(size=(len(folds), 10))
    b = np.where(is_same[:, None], a + 0.05 * rng.normal(size=a.shape), rng.normal(size=a.shape))
    offset = np.where(folds == 0, 20.0, 0.0)[:, None] * np.ones(10)
    result = verify(a + offset, b + offset, is_same, folds)
    assert result.fold_accuracy[0] == pytest.approx(0.5, abs=0.02)
    # The same data with the test fold in the PCA (what leakage would do) separates fold 0 almost perfectly.
    everything = np.concatenate([a + offset, b + offset])
    leaky = protocol.pair_scores(a[:4000] + 20, b[:4000] + 20, protocol.PCA().fit(everything))
    assert ((leaky >= 0.5) == is_same[:4000]).mean() > 0.9


def test_signed_sqrt_keeps_the_sign_of_negatives():
    assert signed_sqrt(np.array([-9.0, -0.25, 0.0, 4.0])).tolist() == [-3.0, -0.5, 0.0, 2.0]


def test_best_threshold_separates_training_scores():
    threshold = best_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True]))
    assert 0.2 < threshold <= 0.8
    assert best_threshold(np.array([0.3, 0.4]), np.array([True, True])) == -np.inf


@pytest.mark.parametrize("size", [256, 128])
def test_mask_rectangles_land_on_the_eye_nose_and_mouth_rows(size):
    expected = {"upper": (98, 93, 158, 133), "middle": (98, 128, 158, 168), "lower": (98, 159, 158, 199)}
    for name, row in (("upper", TEMPLATE[0, 1]), ("middle", TEMPLATE[2, 1]), ("lower", TEMPLATE[3, 1])):
        x0, y0, x1, y1 = mask_rectangle(name, size)
        assert (x1 - x0, y1 - y0) == (round(60 * size / 256), round(40 * size / 256))
        assert y0 <= row * size < y1 and x0 < size / 2 < x1
        if size == 256:
            assert (x0, y0, x1, y1) == expected[name]
        images = torch.ones(2, 3, size, size)
        masked = apply_mask(images, name)
        assert masked[..., y0:y1, x0:x1].eq(0).all() and masked.eq(0).sum() == 2 * 3 * (x1 - x0) * (y1 - y0)
        assert images.eq(1).all()  # the input is left alone


# ---------------------------------------------------------------------------------------------------- CLI

ENCODER = {
    "class_path": "models.vqvae2.VQVAE2",
    "init_args": {"image_size": 32, "channel": 16, "n_res_block": 1, "n_res_channel": 8, "embed_dim": 8, "n_embed": 16},
}
REGRESSOR = {
    "class_path": "models.regressor.Regressor",
    "init_args": {"image_size": 32, "in_channels": 16, "channels": [8, 8, 8, 8, 8]},
}


def tiny_networks(seed: int = 0):
    from models.checkpoints import build_network

    torch.manual_seed(seed)
    return build_network(ENCODER).eval(), build_network(REGRESSOR).eval()


def write_checkpoint(path: Path, seed: int = 0) -> Path:
    """A stand-in regression checkpoint in the format load_network reads (specs + prefixed weights)."""
    encoder, regressor = tiny_networks(seed)
    return write_network_checkpoint(path, encoder=encoder, regressor=regressor)


def test_cli_runs_end_to_end_and_writes_json_and_markdown(tmp_path, synthetic, run_cli):
    root = tmp_path / "benchmarks"
    write_lfw(root / "lfw")
    ckpt = write_checkpoint(tmp_path / "run.ckpt")
    out = tmp_path / "out"
    done = run_cli(
        "eval/verify.py",
        "--bench",
        "lfw",
        "synthetic",
        "--ckpt",
        str(ckpt),
        "--ckpt",
        f"no_contrastive={write_checkpoint(tmp_path / 'other.ckpt', 1)}",
        "--root",
        str(root),
        "--root-synthetic",
        str(synthetic),
        "--size",
        "32",
        "--face-id",
        "none",
        "--mask",
        "upper",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    report = json.loads((out / "results.json").read_text())
    assert list(report["results"]) == ["ours", "no_contrastive"] and report["mask"] == "upper"
    row = report["results"]["ours"]
    assert 0 <= row["lfw"]["accuracy"] <= 1 and len(row["synthetic"]["fold_accuracy"]) == 6
    assert row["mean"] == row["lfw"]["accuracy"]  # the synthetic set is not in the paper's mean
    assert row["images_per_second"] > 0
    assert report["benchmarks"]["lfw"]["pairs"] == 20 and report["benchmarks"]["synthetic"]["images"] == 12
    recovered = report["recovery"]["ours"]["synthetic"]
    assert len(recovered["groups"]) == 12 and list(recovered["visibility_quartiles"]) == [
        "Q1",
        "Q2",
        "Q3",
        "Q4",
    ]  # v2: + hair
    markdown = (out / "results.md").read_text()
    assert "| descriptor | LFW | synthetic | Mean | images/s |" in markdown and "| ours | " in markdown
    assert "Ours, upper face masked" in markdown and "| ours | " in done.stdout


def test_module_entry_point_and_unknown_face_id_is_skipped(run_cli):
    done = run_cli("-m", "eval.verify", "--help")
    assert "--root-cfp-fp" in done.stdout
    from eval.descriptors import build_descriptors

    rows, skipped = build_descriptors([], "no-such-extractor", None, "cpu")
    assert rows == [] and "no-such-extractor" in skipped["face_id"]


def test_load_regression_falls_back_to_the_lightning_module(tmp_path, monkeypatch):
    from eval.descriptors import load_regression

    encoder, regressor = tiny_networks()
    torch.save({"hyper_parameters": {}, "state_dict": {}}, tmp_path / "bare.ckpt")
    fake = types.ModuleType("lightning_modules.regression")
    fake.RegressionModule = types.SimpleNamespace(
        load_from_checkpoint=lambda path, map_location: types.SimpleNamespace(encoder=encoder, regressor=regressor)
    )
    monkeypatch.setitem(sys.modules, "lightning_modules.regression", fake)
    assert load_regression(tmp_path / "bare.ckpt") == (encoder, regressor)


# ---------------------------------------------------------------------------------------------------- callback


class TinyRegression(L.LightningModule):
    """Encoder + regressor trained on nothing in particular; a frozen BatchNorm part must stay in eval mode."""

    def __init__(self):
        super().__init__()
        self.encoder, self.regressor = (net.train() for net in tiny_networks())
        self.frozen = torch.nn.BatchNorm1d(3).eval()

    def training_step(self, batch, batch_idx):
        return self.regressor(self.encoder(batch[0]).features).parameters.square().mean()

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.regressor.parameters(), lr=1e-3)


@pytest.mark.filterwarnings("ignore:.*eval mode at the start of training", "ignore:dead_code_threshold")
def test_callback_logs_verification_accuracy(tmp_path, synthetic):
    from callbacks.verification import VerificationCallback

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(4, 3, 32, 32)), batch_size=2)
    callback = VerificationCallback(str(synthetic), every_n_epochs=1, max_pairs=20)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=[callback],
    )
    module = TinyRegression()
    trainer.fit(module, data, data)
    assert 0 <= float(trainer.callback_metrics["val/verify_acc"]) <= 1
    assert "val/verify_acc_std" in trainer.callback_metrics
    module.train()
    module.frozen.eval()
    callback.evaluate(module)
    assert module.training and module.encoder.training and not module.frozen.training


def test_callback_prefers_the_module_hook():
    from callbacks.verification import predict_parameters

    module = types.SimpleNamespace(predict_parameters=lambda images: images.mean((2, 3)))
    assert predict_parameters(module, torch.ones(2, 3, 4, 4)).tolist() == [[1.0] * 3] * 2


def test_recovery_tells_recovered_visible_parameters_from_guessing_zero():
    from eval.recovery import VISIBLE_GREY_LEVELS, recovery

    rng = np.random.default_rng(0)
    truth = rng.uniform(-2.5, 2.5, (200, 267))
    visibility = np.linspace(0.0, 2.0, 267)  # the last ones visible, the last quartile the most
    visible = visibility >= VISIBLE_GREY_LEVELS
    predicted = np.zeros_like(truth)
    predicted[:, visible] = truth[:, visible]  # only the visible parameters recovered
    r = recovery(predicted, truth, visibility)
    assert r["visibility_quartiles"]["Q4"] == pytest.approx(0.0)
    assert r["visibility_quartiles_predicting_zero"]["Q4"] == pytest.approx(2.5 / np.sqrt(3), rel=0.05)
    assert r["visibility_quartiles"]["Q1"] == pytest.approx(r["visibility_quartiles_predicting_zero"]["Q1"])
    assert len(r["visible"]["parameters"]) == visible.sum()
    assert r["visible"]["rmse"] == pytest.approx(0.0) and r["visible"]["correlation_mean"] == pytest.approx(1.0)
    assert r["visible"]["rmse_predicting_zero"] == pytest.approx(2.5 / np.sqrt(3), rel=0.05)
    assert r["rmse"] < r["rmse_predicting_zero"]
    assert recovery(np.zeros_like(truth), truth, visibility)["visible"]["correlation_mean"] == 0.0


# ---------------------------------------------------------------------------------------------------- likeness


def write_imitator(path: Path) -> Path:
    """A tiny 64 px imitator checkpoint in the format load_network reads."""
    from models.imitator import Imitator

    torch.manual_seed(0)
    return write_network_checkpoint(path, net=Imitator(image_size=64, channels=(16, 16, 8, 8)))


@pytest.mark.parametrize("likeness_images", [3, 0])
def test_cli_measures_the_likeness_of_the_engines_character(tmp_path, synthetic, likeness_images):
    from eval.verify import main

    ckpt = write_checkpoint(tmp_path / "run.ckpt")
    saved = torch.load(ckpt, weights_only=True)
    torch.save(saved | {"frozen_sources": {"imitator": str(write_imitator(tmp_path / "imitator.ckpt"))}}, ckpt)
    out = tmp_path / "out"
    report = main(
        [
            "--bench",
            "synthetic",
            "--root-synthetic",
            str(synthetic),
            "--size",
            "32",
            "--ckpt",
            str(ckpt),
            "--face-id",
            "dlib",
            "--likeness-images",
            str(likeness_images),
            "--mask",
            "lower",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert report == json.loads((out / "results.json").read_text())
    ours, face_id = report["results"]["ours"], report["results"]["face_id"]
    table = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| ")]
    assert table[0].endswith(
        "| images/s | likeness (F_id cosine photo vs engine render) | imitator vs engine PSNR (dB) |"
    )
    assert next(line for line in table if line.startswith("| face_id |")).endswith("| - | - |")
    assert "likeness" not in face_id and "imitator_vs_engine_psnr_db" not in face_id
    markdown = (out / "results.md").read_text()
    if likeness_images:
        assert -1 <= ours["likeness"] <= 1 and 0 < ours["imitator_vs_engine_psnr_db"] < 100
        assert ours["synthetic"]["likeness"]["count"] == 3 and report["likeness"]["images"] == {"synthetic": 3}
        assert "imitator.ckpt (the imitator" in report["likeness"]["imitator"]
        assert f"| {ours['likeness']:.3f} | {ours['imitator_vs_engine_psnr_db']:.1f} |" in markdown
        assert "on 3 images (3 of synthetic), evenly spread" in markdown
    else:
        assert "likeness" not in ours and "likeness" not in ours["synthetic"]
        assert next(line for line in table if line.startswith("| ours |")).endswith("| - | - |")
        assert "Likeness of the engine's character not measured: switched off (--likeness-images 0)" in markdown


def test_cli_puts_the_baselines_in_its_table(tmp_path, synthetic, capsys):
    from eval.baselines.fastf2p import Translator, save_translator
    from eval.verify import main

    torch.manual_seed(0)
    translator = save_translator(tmp_path / "fastf2p.ckpt", Translator(128), "dlib")  # dlib's 128-d embedding
    out = tmp_path / "out"
    report = main(
        [
            "--bench",
            "synthetic",
            "--root-synthetic",
            str(synthetic),
            "--size",
            "32",
            "--ckpt",
            "none",  # no model row (without --ckpt: the shipped default model)
            "--baseline",
            f"fastf2p={translator}",
            "--baseline",
            f"f2p={write_imitator(tmp_path / 'imitator.ckpt')}",
            "--f2p-steps",
            "1",
            "--f2p-pairs",
            "4",
            "--likeness-images",
            "0",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert list(report["results"]) == ["face_id", "fastf2p", "f2p (4 pairs)"]
    assert 0 <= report["results"]["fastf2p"]["synthetic"]["accuracy"] <= 1
    assert len(report["results"]["f2p (4 pairs)"]["synthetic"]["fold_accuracy"]) <= 4
    assert set(report["recovery"]) == {"fastf2p", "f2p (4 pairs)"}
    markdown = (out / "results.md").read_text()
    assert "| fastf2p | " in markdown and "| f2p (4 pairs) | " in markdown
    assert "## Parameter recovery: f2p (4 pairs) on synthetic" in markdown
    with pytest.raises(SystemExit):  # checked with the other arguments, before anything loads
        main(["--bench", "synthetic", "--root-synthetic", str(synthetic), "--baseline", "fastf2p"])
    assert "--baseline 'fastf2p': expected KIND=PATH" in capsys.readouterr().err


def test_without_an_imitator_the_gap_is_left_out_and_the_reason_given(tmp_path):
    from eval.descriptors import load_imitator

    ckpt = write_checkpoint(tmp_path / "run.ckpt")
    net, reason = load_imitator(None, [f"ours={ckpt}"])
    assert net is None and "no --imitator" in reason
    saved = torch.load(ckpt, weights_only=True)
    torch.save(saved | {"frozen_sources": {"imitator": str(tmp_path / "gone.ckpt")}}, ckpt)
    net, reason = load_imitator(None, [str(ckpt)])
    assert net is None and "gone.ckpt, which is not here" in reason
    net, source = load_imitator(str(write_imitator(tmp_path / "imitator.ckpt")), [str(ckpt)])
    assert net.image_size == 64 and source.endswith("(--imitator)")


def test_recovery_interval_says_whether_a_method_measurably_beats_the_neutral_face():
    from eval.recovery import recovery

    rng = np.random.default_rng(0)
    truth = rng.uniform(-2.5, 2.5, (120, 267))
    zero = recovery(np.zeros_like(truth), truth, None)["against_zero"]
    assert zero["ratio"] == pytest.approx(1.0) and zero["interval"] == pytest.approx([1.0, 1.0])
    assert zero["verdict"] == "level"
    assert recovery(0.8 * truth, truth, None)["against_zero"]["verdict"] == "closer"
    assert recovery(truth + rng.normal(0, 2.0, truth.shape), truth, None)["against_zero"]["verdict"] == "farther"
    slightly = recovery(0.97 * truth + rng.normal(0, 0.3, truth.shape), truth, None)["against_zero"]
    assert slightly["interval"][0] < slightly["ratio"] < slightly["interval"][1]


def test_recovery_interval_resamples_people_not_photos():
    """Four identical photos per person are one person's worth of evidence, not four."""
    from eval.recovery import ratio_interval

    rng = np.random.default_rng(1)
    truth = rng.uniform(-2.5, 2.5, (40, 267))
    squared, zero = (0.9 * truth + rng.normal(0, 0.5, truth.shape) - truth) ** 2, truth**2
    people = ratio_interval(squared, zero, None)
    copies = [np.repeat(x, 4, axis=0) for x in (squared, zero)]
    by_person = ratio_interval(*copies, np.repeat(np.arange(40), 4))
    by_photo = ratio_interval(*copies, None)
    assert by_person["interval"] == pytest.approx(people["interval"])
    width = lambda r: r["interval"][1] - r["interval"][0]  # noqa: E731
    assert width(by_photo) < 0.7 * width(by_person)


# ------------------------------------------------------------------------------------- bad input (issue 12)


def bad_pairs_line(tmp_path):
    root = write_lfw(tmp_path / "benchmarks" / "lfw")
    lines = (root / "pairs.txt").read_text().splitlines()
    lines[3] = "Alice 1 two"
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    # --ckpt none: no model row (without --ckpt the shipped default model is needed); the benchmark is under test
    return ["--bench", "lfw", "--face-id", "none", "--ckpt", "none"], [
        str(root / "pairs.txt"),
        "line 4",
        "'Alice 1 two'",
    ]


def undecodable_bin(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    path = write_bin(tmp_path / "benchmarks" / "agedb_30.bin", 10)
    images, is_same = pickle.loads(path.read_bytes())
    images[7] = b"\xff\xd8 not a JPEG after all"
    path.write_bytes(pickle.dumps((images, is_same)))
    return ["--bench", "agedb", "--face-id", "none", "--ckpt", "none"], [str(path), "image 7 cannot be decoded"]


def missing_ckpt(tmp_path):
    write_lfw(tmp_path / "benchmarks" / "lfw")
    ckpt = tmp_path / "no" / "run.ckpt"
    return ["--bench", "lfw", "--detect", "--ckpt", f"mine={ckpt}"], [f"--ckpt mine={ckpt}", "not found"]


@pytest.mark.parametrize("case", [bad_pairs_line, undecodable_bin, missing_ckpt])
def test_cli_bad_input_is_one_line_naming_the_file(case, tmp_path, run_cli):
    arguments, says = case(tmp_path)
    out = tmp_path / "out"
    common = ["--root", tmp_path / "benchmarks", "--size", "32", "--device", "cpu", "--out", out]
    done = run_cli("eval/verify.py", *arguments, *common, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr[-2000:]  # no traceback
    assert lines[0].startswith("python eval/verify.py: error: ") and all(s in lines[0] for s in says), lines[0]
    assert not out.exists()  # --detect used to detect (and write) every photo before finding --ckpt missing


# Property-based: whatever the file holds, a reader returns a correct benchmark or names the file (and line/index).

TOKENS = ["Ann_A", "Bob_B", "Cy_C", "Alice", "1", "2", "3", "0", "-1", "two", "²", "10", "", "#", "\x00", "a/b", ".."]
token = st.one_of(st.sampled_from(TOKENS), st.text(max_size=6))
pair_line = st.lists(token, min_size=0, max_size=5).map(" ".join)
pairs_text = st.one_of(
    st.builds(
        lambda head, body: "\n".join([head, *body]),
        st.sampled_from(["10 1", "10 2", "1 10", "10"]),
        st.lists(
            st.one_of(st.sampled_from(["Ann_A 1 2", "Bob_B 1 2", "Ann_A 1 Cy_C 1", "Bob_B 2 Cy_C 1"]), pair_line),
            min_size=0,
            max_size=42,
        ),
    ),
    st.text(max_size=200),
)


def expected_pairs(text: str, root: Path) -> list[tuple[Path, Path, bool]] | None:
    """An independent reading of a pairs.txt: the pairs it means, or None where it is not a valid one."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    number = r"[1-9][0-9]*|0*[1-9][0-9]*"
    if not lines or len(lines[0]) != 2 or lines[0][0] != "10" or not re.fullmatch(number, lines[0][1]):
        return None
    if len(lines) - 1 != 20 * int(lines[0][1]):
        return None
    pairs = []
    for fields in lines[1:]:
        if len(fields) not in (3, 4):
            return None
        a, b = ((fields[0], fields[1]), (fields[0], fields[2])) if len(fields) == 3 else (fields[:2], fields[2:])
        if not all(re.fullmatch(number, k) and n in PEOPLE and int(k) <= PEOPLE[n] for n, k in (a, b)):
            return None
        pairs.append((*(root / n / f"{n}_{int(k):04d}.jpg" for n, k in (a, b)), len(fields) == 3))
    return pairs


@pytest.fixture(scope="module")
def lfw_root(tmp_path_factory):
    return write_lfw(tmp_path_factory.mktemp("fuzz") / "lfw")


@settings(max_examples=30, deadline=None)
@given(text=pairs_text, raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_lfw_pairs_reader_is_right_or_names_the_file(lfw_root, text, raw):
    pairs_file = lfw_root / "pairs.txt"
    pairs_file.write_bytes(raw if raw is not None else text.encode("utf-8", "surrogatepass"))
    try:
        bench = B.read_lfw(lfw_root, 32)
    except B.BenchmarkFileError as error:
        assert str(error).startswith(f"{pairs_file}: ")
        return
    except B.MissingBenchmarkFile as error:  # a well-formed line naming a photo that is not there
        assert str(lfw_root) in str(error)
        return
    expected = expected_pairs(pairs_file.read_text(), lfw_root)
    assert expected is not None, "read a pairs.txt that is not a valid one"
    got = [(Path(bench.sources[a]), Path(bench.sources[b]), bool(s)) for (a, b), s in zip(bench.pairs, bench.is_same)]
    assert got == expected and np.bincount(bench.folds).tolist() == [len(expected) // 10] * 10


JPEG = cv2.imencode(".jpg", np.full((112, 112, 3), 90, np.uint8))[1].tobytes()
bin_image = st.one_of(st.just(JPEG), st.binary(max_size=30), st.integers(), st.none(), st.text(max_size=5))
bin_flag = st.one_of(st.booleans(), st.integers(-1, 2), st.none(), st.text(max_size=3))


@st.composite
def bin_contents(draw):
    """(file bytes, the (images, flags) they pickle or None for random bytes): mostly the right shape."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200)), None
    flags = draw(st.lists(bin_flag if draw(st.booleans()) else st.booleans(), max_size=4))
    extra = draw(st.integers(0, 1))
    image = bin_image if draw(st.booleans()) else st.just(JPEG)
    images = draw(st.lists(image, min_size=2 * len(flags) + extra, max_size=2 * len(flags) + extra))
    return pickle.dumps((images, flags), protocol=draw(st.sampled_from([2, 4, 5]))), (images, flags)


@settings(max_examples=30, deadline=None)
@given(drawn=bin_contents())
def test_bin_reader_is_right_or_names_the_file_and_image(tmp_path_factory, drawn):
    contents, meant = drawn
    path = tmp_path_factory.mktemp("bin") / "lfw.bin"
    path.write_bytes(contents)
    try:
        bench = B.read_bin(path, 32)
    except B.BenchmarkFileError as error:
        assert str(error).startswith(f"{path}: ")
        if meant and meant[1] and all(isinstance(f, bool) for f in meant[1]) and len(meant[0]) == 2 * len(meant[1]):
            bad = [i for i, image in enumerate(meant[0]) if image != JPEG]
            assert bad and f"image {bad[0]} cannot be decoded" in str(error)  # else it should have been read
        return
    assert meant is not None, "read random bytes as a .bin"
    images, flags = meant
    assert len(flags) > 0 and len(images) == 2 * len(flags) and all(image == JPEG for image in images)
    assert all(f in (0, 1) and not isinstance(f, str) for f in flags)
    assert bench.is_same.tolist() == [bool(f) for f in flags]
    assert all(bench.image(i).shape == (32, 32, 3) for i in range(bench.num_images))
