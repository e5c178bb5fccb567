"""The character's head as a mesh for other tools: a `trimesh.Trimesh`, and glTF binary (.glb) or OBJ files of it.

The mesh is what the engine rasterises for a parameter vector, before any view: every part (face, skull, neck,
ears, eyeballs with iris and pupil, mouth cavity), the engine's triangles, its smooth normals and the renderer's
per-vertex colours. Units and axes are the game's world space (docs/contracts.md section 3): 1 unit = the neutral
inter-ocular distance, origin between the neutral eyes, x to the subject's left, y up, z out of the face; glTF's
own axes are the same (+y up, the asset faces +z). Colours (8 bits a channel, alpha 255):
- `.glb`: COLOR_0 holds the colours in linear light, as glTF defines it (the renderer's display values decoded
  from sRGB), under one double-sided, non-metal PBR material with a white base colour, so viewers show them.
- `.obj`: each `v x y z r g b` line carries the renderer's display (sRGB) colour, the vertex-colour extension
  Blender, MeshLab and trimesh read; no .mtl file.
Not exported: per-vertex gloss (the material has one roughness) and the photo style's texture and extras.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from game import parameters as P
from game.engine import Game, game_engine
from game.shading import vertex_incidence, vertex_normals

if TYPE_CHECKING:
    import trimesh

MESH_FORMATS = ("glb", "obj")
MESH_NAME = "likeness_character"
ROUGHNESS = 0.6  # one value for the renderer's per-vertex gloss: a soft, skin-like highlight


def character_mesh(params: np.ndarray, game: Game | None = None) -> trimesh.Trimesh:
    """The head of the character with (267,) `params`: the renderer's vertices, triangles, normals and colours.

    Vertex colours are the renderer's (display sRGB) as RGBA uint8; `game` defaults to the shared game engine.
    """
    import trimesh  # here, not at the top: ~0.7 s that the photo tool and the game CLI pay only with --mesh

    game = game or game_engine(256)
    params = P.validate(params, "character_mesh")[0]
    vertices = game.vertices(params)
    colours, _ = game.appearance(params)
    triangles = game.head.triangles
    normals = vertex_normals(vertices, triangles, vertex_incidence(triangles, len(vertices)))
    rgba = np.concatenate([_to_bytes(colours), np.full((len(colours), 1), 255, np.uint8)], axis=1)
    # process=False: trimesh must not merge or drop vertices (the oval seam, the eyeballs), so the file's
    # vertex i is the engine's vertex i.
    mesh = trimesh.Trimesh(vertices, triangles, vertex_normals=normals, vertex_colors=rgba, process=False)
    mesh.metadata["name"] = MESH_NAME
    return mesh


def mesh_bytes(mesh: trimesh.Trimesh, mesh_format: str) -> bytes:
    """The file content of `character_mesh`'s mesh as "glb" or "obj" (colours as in the module docstring)."""
    if mesh_format not in MESH_FORMATS:
        raise ValueError(f"mesh format must be one of {MESH_FORMATS}, got {mesh_format!r}")
    if mesh_format == "obj":
        text = mesh.export(file_type="obj", include_normals=True, include_color=True, include_texture=False)
        return text.encode()
    import trimesh

    rgba = np.array(mesh.visual.vertex_colors, np.uint8)
    rgba[:, :3] = _to_bytes(_srgb_to_linear(rgba[:, :3] / 255.0))
    material = trimesh.visual.material.PBRMaterial(
        name=MESH_NAME,
        baseColorFactor=[255, 255, 255, 255],
        metallicFactor=0.0,
        roughnessFactor=ROUGHNESS,
        doubleSided=True,  # the engine draws both sides: a few parts (one eyeball cap, an ear) face inwards
    )
    visual = trimesh.visual.TextureVisuals(material=material)
    gltf = trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_normals=mesh.vertex_normals, visual=visual, process=False)
    gltf.visual.vertex_attributes["color"] = rgba  # exported as COLOR_0 next to the material
    gltf.metadata["name"] = MESH_NAME  # the glTF node's and mesh's name
    return gltf.export(file_type="glb", include_normals=True)


def write_mesh(mesh: trimesh.Trimesh, path: str | Path, mesh_format: str | None = None) -> Path:
    """Write the mesh to `path` as `mesh_format` ("glb" or "obj"; default: from the file's suffix)."""
    path = Path(path)
    mesh_format = mesh_format or path.suffix.lower().lstrip(".")
    data = mesh_bytes(mesh, mesh_format)  # made in full before the file is opened
    path.write_bytes(data)
    return path


def _srgb_to_linear(values: np.ndarray) -> np.ndarray:
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def _to_bytes(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
