"""The character's head mesh out (game.mesh_export): the files `python -m game render --mesh` writes, re-read with
trimesh, hold the engine's mesh for that parameter vector (vertex count, bounds, triangles, colours), and the
re-read mesh rendered by the engine's rasteriser is the engine's own screenshot."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from game.__main__ import main
from game.engine import GAME_BACKGROUND, Game
from game.mesh_export import MESH_FORMATS, character_mesh, mesh_bytes, write_mesh
from game.render import MeshRenderer
from game.shading import Lighting

SIZE = 64


@pytest.fixture(scope="module")
def game() -> Game:
    return Game(SIZE)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rows = np.random.default_rng(11).uniform(-2.5, 2.5, (2, 267)).astype(np.float32)
    rows[0] = 0  # the neutral character
    return rows


def read_mesh(path: Path) -> tuple[trimesh.Trimesh, np.ndarray]:
    """(mesh, (V, 4) uint8 vertex colours as stored in the file) of a .glb or .obj, read by trimesh alone."""
    loaded = trimesh.load(path, process=False)
    if isinstance(loaded, trimesh.Scene):  # a glTF file: one node, its colours beside the material
        (loaded,) = loaded.geometry.values()
        return loaded, np.asarray(loaded.visual.vertex_attributes["color"])
    return loaded, np.asarray(loaded.visual.vertex_colors)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


def test_the_mesh_is_the_engines_head(game, rows):
    for row in rows:
        mesh = character_mesh(row, game)
        np.testing.assert_array_equal(mesh.vertices, game.vertices(row))
        np.testing.assert_array_equal(mesh.faces, game.head.triangles)
        colours, _ = game.appearance(row)
        assert np.abs(mesh.visual.vertex_colors[:, :3] / 255 - colours).max() <= 0.5 / 255 + 1e-6
        assert (mesh.visual.vertex_colors[:, 3] == 255).all()
    # the default engine gives the same mesh
    np.testing.assert_array_equal(character_mesh(rows[1]).vertices, mesh.vertices)


@pytest.mark.parametrize("mesh_format", MESH_FORMATS)
def test_game_render_writes_a_mesh_per_row_that_reads_back_as_the_engines_mesh(
    tmp_path, capsys, game, rows, mesh_format
):
    np.save(tmp_path / "rows.npy", rows)
    out = tmp_path / "out"
    main(["render", str(tmp_path / "rows.npy"), "--out", str(out), "--size", str(SIZE), "--mesh", mesh_format])
    assert f"2 images and {mesh_format.upper()} meshes in {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{i:04d}.{suffix}" for i in range(2) for suffix in ("png", mesh_format)
    )
    for i, row in enumerate(rows):
        expected = character_mesh(row, game)
        mesh, colours = read_mesh(out / f"{i:04d}.{mesh_format}")
        assert len(mesh.vertices) == len(expected.vertices) == game.head.num_vertices
        np.testing.assert_allclose(mesh.bounds, expected.bounds, atol=1e-6)  # glTF stores float32
        np.testing.assert_allclose(mesh.vertices, expected.vertices, atol=1e-6)
        np.testing.assert_array_equal(mesh.faces, expected.faces)
        display = colours[:, :3] / 255
        if mesh_format == "glb":  # glTF's COLOR_0 is linear light: back to the display values, 8-bit steps apart
            display = linear_to_srgb(display)
            assert np.abs(display - expected.visual.vertex_colors[:, :3] / 255).max() < 0.03
        else:
            np.testing.assert_array_equal(colours, expected.visual.vertex_colors)


@pytest.mark.parametrize("mesh_format", MESH_FORMATS)
def test_the_reread_mesh_renders_as_the_engines_screenshot(tmp_path, game, rows, mesh_format):
    """A known answer independent of trimesh's reading: the file's geometry and colours, drawn by the engine's
    rasteriser with the engine's camera and light (and its gloss, which the files do not carry), give its picture
    without engine v2's per-pixel detail (which the files do not carry either: the engine's render at material 0)."""
    row = rows[1]
    path = write_mesh(character_mesh(row, game), tmp_path / f"me.{mesh_format}")
    mesh, colours = read_mesh(path)
    display = colours[:, :3] / 255
    if mesh_format == "glb":
        display = linear_to_srgb(display)
    faces = np.asarray(mesh.faces, np.int32)
    depth = -mesh.vertices[faces].mean(1)[:, 2]
    renderer = MeshRenderer(SIZE, faces, samples=0, supersample=2, solid=game.head.solid, depth=depth)
    image = renderer.render(
        mesh.vertices,
        display.astype(np.float32),
        game.camera,
        Lighting.studio(),
        game.appearance(row)[1],
        background=GAME_BACKGROUND,
    )[..., :3]
    shade = game.appearance.shade(row)
    engine = game.renderer.render(
        game.vertices(row), shade.colours, game.camera, Lighting.studio(), shade.gloss, GAME_BACKGROUND
    )[..., :3]
    difference = np.abs(image.astype(int) - engine.astype(int))
    # Measured at 256 px: obj max 1 grey level (8-bit colours), glb max 4 (8-bit linear colours, dark tones).
    assert difference.max() <= 6 and difference.mean() < 0.5, (difference.max(), difference.mean())


def test_the_glb_has_a_double_sided_non_metal_material_and_a_named_node(game):
    data = mesh_bytes(character_mesh(np.zeros(267), game), "glb")
    assert data[:4] == b"glTF"
    length = int.from_bytes(data[12:16], "little")
    document = json.loads(data[20 : 20 + length])
    (material,) = document["materials"]
    assert material["doubleSided"] is True and material["pbrMetallicRoughness"]["metallicFactor"] == 0.0
    (primitive,) = document["meshes"][0]["primitives"]
    assert {"POSITION", "NORMAL", "COLOR_0"} <= set(primitive["attributes"])
    assert document["nodes"][0]["name"] == "likeness_character"


def test_the_obj_carries_colours_and_normals_without_a_material_file(game):
    text = mesh_bytes(character_mesh(np.zeros(267), game), "obj").decode()
    vertex_lines = [line.split() for line in text.splitlines() if line.startswith("v ")]
    assert len(vertex_lines) == game.head.num_vertices and all(len(line) == 7 for line in vertex_lines)
    assert sum(line.startswith("vn ") for line in text.splitlines()) == game.head.num_vertices
    assert "mtllib" not in text
    mesh = trimesh.load(io.BytesIO(text.encode()), file_type="obj", process=False)
    assert len(mesh.vertices) == game.head.num_vertices


def test_an_unknown_mesh_format_is_refused(tmp_path, game):
    with pytest.raises(ValueError, match="mesh format must be one of"):
        write_mesh(character_mesh(np.zeros(267), game), tmp_path / "me.stl")
    assert not (tmp_path / "me.stl").exists()


def test_game_render_names_a_mesh_it_cannot_write(tmp_path, capsys, rows):
    np.save(tmp_path / "rows.npy", rows)
    (tmp_path / "out" / "0001.glb").mkdir(parents=True)  # a folder where the second mesh goes
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(tmp_path / "rows.npy"), "--out", str(tmp_path / "out"), "--size", "16", "--mesh", "glb"])
    message = str(exit_.value.code)
    assert message.startswith(f"python -m game render: error: {tmp_path / 'out' / '0001.glb'}: cannot write"), message
    assert message.endswith("1 of 2 characters written") and "images" not in capsys.readouterr().out
    assert (tmp_path / "out" / "0000.glb").is_file()  # what was written before stays


def test_game_render_refuses_an_unknown_mesh_format(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(tmp_path / "rows.npy"), "--mesh", "stl"])
    assert exit_.value.code == 2
    assert "argument --mesh: invalid choice: 'stl'" in capsys.readouterr().err
