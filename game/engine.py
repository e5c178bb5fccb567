"""The stand-in game engine: parameters -> bone-driven head -> screenshot, in the `game` or `photo` style."""

from __future__ import annotations

import numbers
from functools import cached_property, lru_cache

import numpy as np

from game import camera, framing, photo_style
from game import parameters as P
from game.appearance import Appearance
from game.detail import detail_texture, level_for
from game.head import Head, build_head
from game.photo_extras import PhotoExtras
from game.render import MeshRenderer
from game.rig import Rig
from game.shading import DEFAULT_BACKGROUND, Lighting
from game.topology import loop

STYLES = ("game", "photo")
# Bump when a change alters the pictures of given parameters (mesh, rig, colours, camera, shading):
# datasets record it, and resuming or training on a set made by another engine version is refused.
# 2: hair shell, brows, lashes, beard, neck and clothed shoulders, detail texture and softer skin light.
ENGINE_VERSION = 2
GAME_BACKGROUND = (0.62, 0.66, 0.72)  # the creator's plain studio backdrop
NECK_PIVOT = np.array([0.0, -1.2, -0.9])  # head pose rotates about the top of the neck
BODY_FOLLOWS = (0.35, 0.0, 0.3)  # how much of the head's yaw, pitch and roll the shoulders take in a photo


class Game:
    """Renders characters from parameter vectors; cheap to pickle (GL state is made on first render)."""

    def __init__(
        self,
        size: int = 256,
        style: str = "game",
        samples: int = 0,
        supersample: int = 2,
        extras: PhotoExtras | None = None,
    ):
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        if size < 16:
            raise ValueError(f"size must be at least 16 px, got {size}")
        # 2x supersampling matches 4x MSAA within a grey level and is ~1.5x faster on llvmpipe; fixed
        # per dataset so a set looks the same whatever machine rendered it.
        self.size, self.style, self.samples, self.supersample = size, style, samples, supersample
        self.extras = extras or PhotoExtras()
        if self.extras.active and style != "photo":
            raise ValueError("expressions, glasses and occluders belong to the photo style")

    def __getstate__(self):
        return {
            "size": self.size,
            "style": self.style,
            "samples": self.samples,
            "supersample": self.supersample,
            "extras": self.extras,
        }

    def __setstate__(self, state):
        self.__init__(**state)

    @cached_property
    def head(self) -> Head:
        return build_head()

    @cached_property
    def rig(self) -> Rig:
        return Rig(self.head)

    @cached_property
    def appearance(self) -> Appearance:
        return Appearance(self.head)

    @cached_property
    def renderer(self) -> MeshRenderer:
        return MeshRenderer(
            self.size,
            self.head.triangles,
            samples=self.samples,
            supersample=self.supersample,
            uv=self.head.uv,
            detail=detail_texture(level_for(self.size, self.supersample)),
            solid=self.head.solid,
            depth=-self.head.vertices[self.head.triangles].mean(1)[:, 2],  # the camera looks down -z: nearest first
        )

    @cached_property
    def _framing(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(view_proj, camera position, depth of the eyes) of the game camera on the neutral head."""
        points = self.template_points(self.head.vertices)
        view_proj, eye = framing.game_camera(points)
        return view_proj, eye, float(points[:2, 2].mean())

    @property
    def camera(self) -> np.ndarray:
        """The fixed game camera (view-projection), framed on the neutral head (docs/contracts.md)."""
        return self._framing[0]

    def template_points(self, vertices: np.ndarray) -> np.ndarray:
        """(5, 3) right eye, left eye, nose tip, right and left mouth corner of a head's vertices."""
        return np.stack(
            [
                vertices[loop("RIGHT_EYE")].mean(0),
                vertices[loop("LEFT_EYE")].mean(0),
                vertices[1],
                vertices[61],
                vertices[291],
            ]
        )

    def vertices(self, params: np.ndarray) -> np.ndarray:
        """(V, 3) world-space vertices of the character."""
        return self.rig.deform(params)

    def turned(self, vertices: np.ndarray, yaw_degrees: float) -> np.ndarray:
        """Head vertices turned by `yaw_degrees` about the neck's vertical axis (positive: nose to image right)."""
        if not isinstance(yaw_degrees, numbers.Real) or isinstance(yaw_degrees, bool) or not np.isfinite(yaw_degrees):
            raise ValueError(f"yaw_degrees must be a finite number of degrees, got {yaw_degrees!r}")
        if yaw_degrees == 0.0:  # untouched, so the front view stays bit-identical to renders made without a yaw
            return vertices
        return (vertices - NECK_PIVOT) @ camera.rotation(yaw_degrees, 0.0, 0.0).T + NECK_PIVOT

    def render(
        self, params: np.ndarray, rng: np.random.Generator | None = None, yaw_degrees: float = 0.0
    ) -> np.ndarray:
        """One screenshot (S, S, 3) uint8 RGB; the photo style draws its randomness from `rng`.

        `yaw_degrees` turns the character on a turntable under the fixed camera and light (35 gives a
        three-quarter view with the nose towards the image's right; 0, the default, is the game's front view).
        """
        return self.render_with_points(params, rng, yaw_degrees)[0]

    def render_with_points(self, params, rng=None, yaw_degrees: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(screenshot, (5, 2) pixel positions of the template points in it); `yaw_degrees` as in `render`."""
        params = P.validate(params, "Game.render")[0]
        extra_rng = self._extra_rng(rng)
        vertices = self.vertices(self.extras.expression(params, extra_rng) if extra_rng else params)
        vertices = self.turned(vertices, yaw_degrees)  # the whole bust turns on the turntable
        if self.style == "game":
            view_proj, lighting = self.camera, Lighting.studio()
            shade = self.appearance.shade(params)
            rgba = self.renderer.render(
                vertices, shade.colours, view_proj, lighting, shade.gloss, GAME_BACKGROUND, shade.material
            )
            image = np.ascontiguousarray(rgba[..., :3])
        else:
            conditions, vertices, view_proj = self._pose_photo(vertices, rng)
            shade = self.appearance.shade(params, clothing=conditions.clothing)
            rgba = self.renderer.render(
                vertices, shade.colours, view_proj, conditions.lighting, shade.gloss, DEFAULT_BACKGROUND, shade.material
            )
            if extra_rng:
                points = camera.project(self.template_points(vertices), view_proj, self.size)
                rgba = self.extras.paint(rgba, points, extra_rng)
            image = photo_style.finish_photo(rgba, conditions, rng, render_background=DEFAULT_BACKGROUND)
        points = camera.project(self.template_points(vertices), view_proj, self.size)
        return image, points

    def photo_points(self, params: np.ndarray, rng: np.random.Generator, yaw_degrees: float = 0.0) -> np.ndarray:
        """(5, 2) pixel positions of the template points in the photo that `render(params, rng, yaw_degrees)`
        makes, without rendering it (the same draws from a fresh copy of `rng`)."""
        params = P.validate(params, "Game.photo_points")[0]
        extra_rng = self._extra_rng(rng)
        vertices = self.vertices(self.extras.expression(params, extra_rng) if extra_rng else params)
        vertices = self.turned(vertices, yaw_degrees)
        _, vertices, view_proj = self._pose_photo(vertices, rng)
        return camera.project(self.template_points(vertices), view_proj, self.size)

    def _extra_rng(self, rng):
        """A child stream for the extras: spawning leaves `rng`'s own draws, hence plain photos, unchanged."""
        return rng.spawn(1)[0] if self.extras.active and rng is not None else None

    def _pose_photo(self, vertices: np.ndarray, rng):
        if rng is None:
            raise ValueError("the photo style needs a numpy Generator (rng) for pose, light and camera effects")
        conditions = photo_style.sample_photo_conditions(rng)
        head_pose = camera.rotation(conditions.yaw, conditions.pitch, conditions.roll)
        yaw, pitch, roll = (a * k for a, k in zip((conditions.yaw, conditions.pitch, conditions.roll), BODY_FOLLOWS))
        body = self.head.body[:, None]  # the neck bends: shoulders turn less than the head
        centred = vertices - NECK_PIVOT
        posed = (1 - body) * (centred @ head_pose.T) + body * (centred @ camera.rotation(yaw, pitch, roll).T)
        return conditions, posed + NECK_PIVOT, self._photo_camera(conditions)

    def _photo_camera(self, conditions: photo_style.PhotoConditions) -> np.ndarray:
        _, eye, target_depth = self._framing  # the game camera, moved per photo
        distance = (eye[2] - target_depth) * conditions.distance_scale
        moved = np.array([eye[0], eye[1], target_depth + distance])
        view = camera.look_at(moved, moved - np.array([0.0, 0.0, 1.0]))
        projection = camera.perspective(framing.GAME_FOV_DEG, 1.0, distance * 0.5, distance * 2.0)
        return camera.shift_image((projection @ view).astype(np.float32), *conditions.offset)

    def render_batch(self, params: np.ndarray, seeds=None) -> np.ndarray:
        """(N, S, S, 3) screenshots; photo style: row i uses np.random.default_rng(seeds[i])."""
        params = P.validate(params, "Game.render_batch")
        out = np.empty((len(params), self.size, self.size, 3), np.uint8)
        for i, row in enumerate(params):
            rng = None if self.style == "game" else np.random.default_rng(seeds[i] if seeds is not None else i)
            out[i] = self.render(row, rng)
        return out


@lru_cache(maxsize=4)
def game_engine(size: int) -> Game:
    """The game-style engine at `size` px, built once per process (rig and GL resources outlive one call)."""
    return Game(size, "game")


def engine_renders(parameters: np.ndarray, size: int):
    """(N, 3, S, S) float torch tensor in [0, 1]: game-style screenshots of (N, 267) parameters (clipped to range)."""
    import torch  # here: the game itself does not need torch

    images = game_engine(size).render_batch(np.clip(parameters, P.LOW, P.HIGH).astype(np.float32))
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 255
