"""Hair-like geometry of the character (engine v2): the scalp-hair shell, eyebrow strips and eyelash ribbons.

Scalp hair is a grid of strands, as the shells of game hair: COLUMNS meridians around the skull's vertical
axis (azimuth phi: 0 = the face, + towards the subject's left), each running from the crown over the scalp
to the hairline, then on down the forehead (the fringe) or straight down (the length). The head's surface
along every meridian is tabulated once (`ScalpTable`); each render re-makes the rows from the hair sliders
by interpolating that table, so volume, length, fringe, parting, hairline and sideburns move the shell
continuously and never through the skin. Brow strips float just above the skin and keep their shape (their
sliders recolour them); lash ribbons grow out of the upper lid margin with `eyelash_length`.
Written here rather than taken from a library: no hair or groom package builds a shell for a parametric head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d, maximum_filter1d
from scipy.spatial import cKDTree

from game.masks import inside_polygon_2d, polyline_distance, smoothstep

COLUMNS = 40
UPPER_ROWS = 8
LOWER_ROWS = 8
FINE_THETA = np.deg2rad(np.linspace(0.0, 150.0, 101))  # polar angle from straight up, along each meridian
CLEARANCE_Y = np.linspace(-3.5, 1.5, 51)
BROW_ALONG, BROW_ACROSS, BROW_HALF_HEIGHT = 16, 6, 0.13
LASH_ALONG, LASH_ROWS = 16, 3
# The brows' landmark rows (lower, upper), outer end first: the subject's left brow, then the right.
BROW_LANDMARKS = (
    ([276, 283, 282, 295, 285], [300, 293, 334, 296, 336]),
    ([46, 53, 52, 65, 55], [70, 63, 105, 66, 107]),
)
# Upper lid margins, inner corner to outer corner: the subject's left eye, then the right.
UPPER_LID_LANDMARKS = (
    [362, 398, 384, 385, 386, 387, 388, 466, 263],
    [133, 173, 157, 158, 159, 160, 161, 246, 33],
)


def unit_amount(f):
    """A slider in [-1, 1] (value / 2.5) as an amount in [0, 1]."""
    return (np.clip(f, -1.0, 1.0) + 1.0) / 2.0


def hairline_height(points: np.ndarray, hairline: float, sideburns: float, forehead_top: float) -> np.ndarray:
    """Height (y) of the hairline under each point's (x, z): no hair below it. hairline/sideburns in [-1, 1]."""
    front_y = forehead_top - 0.1 + 0.2 * hairline  # on the forehead; + recedes
    depth = np.clip((0.3 - points[..., 2]) / 2.1, 0, 1)  # 0 at the forehead, 1 at the back
    arc = 0.16 * np.clip(points[..., 0] / 0.75, -1, 1) ** 2 * (1 - depth)  # a rounded hairline, high at the temples
    line = front_y + arc + (-1.0 - front_y) * depth**1.6
    # Sideburns: the line dips in front of the ears; a compact bump, so they change nothing beyond the temples.
    near_ear = np.clip(1 - ((np.abs(points[..., 0]) - 1.05) / 0.24) ** 2 - ((points[..., 2] + 0.55) / 0.5) ** 2, 0, 1)
    near_ear = near_ear**2
    return line - near_ear * (0.35 + 0.25 * sideburns)


@dataclass
class ScalpTable:
    """The head's surface along each hair meridian, and how far out hanging hair must stay, from the neutral head."""

    centre: np.ndarray  # (3,) where the meridians start
    phi: np.ndarray  # (J,) azimuth of each column
    surface: np.ndarray  # (J, K, 3) head surface at FINE_THETA along each meridian
    direction: np.ndarray  # (J, K, 3) unit directions from the centre
    clearance: np.ndarray  # (J, len(CLEARANCE_Y)) horizontal radius about the centre's vertical axis to stay outside
    brow_theta: np.ndarray  # (J,) polar angle where the surface passes brow height (a fringe stops there)
    forehead_top: float


def scalp_table(surface_points: np.ndarray, obstacle_points: np.ndarray, centre: np.ndarray, forehead_top: float):
    """Tabulate the head surface (radius along directions from `centre`, inverse-distance weighted) per meridian."""
    phi = np.arange(COLUMNS) * 2 * np.pi / COLUMNS
    phi = np.where(phi > np.pi, phi - 2 * np.pi, phi)
    theta = FINE_THETA
    direction = np.stack(
        [
            np.sin(theta)[None] * np.sin(phi)[:, None],
            np.cos(theta)[None] * np.ones_like(phi)[:, None],
            np.sin(theta)[None] * np.cos(phi)[:, None],
        ],
        -1,
    )  # (J, K, 3)
    offsets = surface_points - centre
    radius = np.linalg.norm(offsets, axis=1)
    distance, nearest = cKDTree(offsets / radius[:, None]).query(direction.reshape(-1, 3), k=8)
    weight = 1.0 / (distance + 1e-3) ** 2
    table_radius = (weight * radius[nearest]).sum(1) / weight.sum(1)
    surface = centre + direction * table_radius.reshape(direction.shape[:2])[..., None]

    # Clearance: the widest head point (ears included) in each column's wedge and height band.
    rel = obstacle_points - centre
    azimuth = np.arctan2(rel[:, 0], rel[:, 2])
    horizontal = np.hypot(rel[:, 0], rel[:, 2])
    clearance = np.zeros((COLUMNS, len(CLEARANCE_Y)))
    band = np.abs(obstacle_points[:, 1][None] - CLEARANCE_Y[:, None]) < 0.12  # (Y, P)
    for j, angle in enumerate(phi):
        wedge = np.abs(np.angle(np.exp(1j * (azimuth - angle)))) < np.deg2rad(9)
        values = np.where(band & wedge[None], horizontal[None], 0.0).max(1)
        clearance[j] = gaussian_filter1d(maximum_filter1d(values, 5), 1.0)
    below_brows = surface[..., 1] < 0.26
    first = np.where(below_brows.any(1), below_brows.argmax(1), len(theta) - 1)
    return ScalpTable(centre, phi, surface, direction, clearance, theta[first], forehead_top)


def _along(table: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Linear interpolation of a (J, K, ...) table at per-column polar angles theta (J, R)."""
    position = np.clip(theta / FINE_THETA[-1] * (len(FINE_THETA) - 1), 0, len(FINE_THETA) - 1 - 1e-9)
    low = np.floor(position).astype(int)
    t = (position - low)[..., None]
    rows = np.arange(len(table))[:, None]
    return table[rows, low] * (1 - t) + table[rows, low + 1] * t


# The `hair` sliders of game/parameters.csv and the HairValues field each sets.
HAIR_SLIDERS = {
    "hair_volume": "volume",
    "hair_length": "length",
    "hair_fringe": "fringe",
    "hair_parting": "parting",
    "hair_hairline": "hairline",
    "sideburn_length": "sideburns",
    "eyelash_length": "lashes",
    "beard_length": "beard",
}


@dataclass
class HairValues:
    """The hair sliders as fractions in [-1, 1] (value / 2.5)."""

    volume: float = 0.0
    length: float = 0.0
    fringe: float = 0.0
    parting: float = 0.0
    hairline: float = 0.0
    sideburns: float = 0.0
    lashes: float = 0.0
    beard: float = 0.0


class ScalpHair:
    """Re-makes the scalp-hair grid (pole + COLUMNS x (UPPER_ROWS + LOWER_ROWS) vertices) from hair sliders."""

    def __init__(self, table: ScalpTable):
        self.table = table
        # Fixed ragged ends (part of the look, the same for everyone), mirror-symmetric like the rest of the head.
        rng = np.random.default_rng(77)
        mirror = (-np.arange(COLUMNS)) % COLUMNS
        jitter = rng.random((2, COLUMNS)) - 0.5
        jitter = (jitter + jitter[:, mirror]) / 2
        self.fringe_jitter = 1.0 + 0.25 * jitter[0]
        self.length_jitter = 1.0 + 0.15 * jitter[1]
        phi = np.abs(table.phi)
        self.front = 1.0 - smoothstep((phi - np.deg2rad(28)) / np.deg2rad(30))  # fringe columns
        self.side = smoothstep((phi - np.deg2rad(62)) / np.deg2rad(33))  # columns that hang: behind the temples
        self._last = None  # (HairValues, cover) of the last positions() call: the appearance reads it
        self.frame = np.concatenate([table.surface, table.direction], -1)  # (J, K, 6)
        self.upper_t = np.arange(1, UPPER_ROWS + 1) / UPPER_ROWS
        self.lower_t = np.arange(1, LOWER_ROWS + 1) / LOWER_ROWS

    @staticmethod
    def triangles(offset: int) -> tuple[np.ndarray, np.ndarray]:
        """(triangles, on the dome) of the grid, wound counter-clockwise seen from outside: a fan round the crown
        pole, then quads between rows (wrapping round the columns). The dome (the fan and the quads between the
        upper rows) lies on the scalp, so its inside never shows; the lower rows may hang and show both sides."""
        rows = UPPER_ROWS + LOWER_ROWS
        ring = offset + 1 + np.arange(COLUMNS) * rows  # first row of each column
        fan = np.stack([np.full(COLUMNS, offset), np.roll(ring, -1), ring], 1)
        c = np.arange(COLUMNS)[:, None]
        r = np.arange(rows - 1)[None]
        a = offset + 1 + c * rows + r
        b = offset + 1 + ((c + 1) % COLUMNS) * rows + r
        quads = np.stack([np.stack([a, a + 1, b], -1), np.stack([b, a + 1, b + 1], -1)], 2).reshape(-1, 3)
        dome = np.broadcast_to(r < UPPER_ROWS - 1, (COLUMNS, rows - 1))
        on_dome = np.concatenate([np.ones(COLUMNS, bool), np.repeat(dome.ravel(), 2)])
        return np.concatenate([fan, quads]).astype(np.int64), on_dome

    @staticmethod
    def uv() -> np.ndarray:
        """Strand coordinates for the detail texture: u across the strands (fine), v along them (coarse)."""
        rows = UPPER_ROWS + LOWER_ROWS
        column, row = np.meshgrid(np.arange(COLUMNS), np.arange(1, rows + 1), indexing="ij")
        # u runs once round the head (~2 texels per strand) with its seam at the back, out of the camera's sight.
        uv = np.stack([((column / COLUMNS + 0.5) % 1.0) * 3.5, row / rows * 1.5], -1).reshape(-1, 2)
        return np.concatenate([[[0.0, 0.0]], uv])

    def positions(self, h: HairValues) -> np.ndarray:
        """(1 + J * rows, 3) vertices: the pole, then each column's rows from the crown down."""
        table = self.table
        volume, length, fringe = unit_amount(h.volume), unit_amount(h.length), unit_amount(h.fringe)
        thickness = 0.006 + 0.26 * volume**1.7
        hang_length = 3.0 * length**1.6
        fringe_length = 0.6 * fringe**1.2  # along the forehead: 0.26 at the neutral 0, to the brows at +2.5
        parting_x = 0.45 * h.parting

        # Hairline: the first polar angle, from the crown down, where the surface leaves the hair region.
        line = hairline_height(table.surface, h.hairline, h.sideburns, table.forehead_top)
        inside = table.surface[..., 1] - line  # (J, K): > 0 carries hair
        outside = inside < 0
        first = np.where(outside.any(1), outside.argmax(1), len(FINE_THETA) - 1)
        first = np.maximum(first, 1)
        columns = np.arange(COLUMNS)
        above, below = inside[columns, first - 1], inside[columns, first]
        frac = np.clip(above / np.maximum(above - below, 1e-9), 0, 1)
        theta_line = FINE_THETA[first - 1] + frac * (FINE_THETA[first] - FINE_THETA[first - 1])
        theta_split = np.minimum(theta_line, np.pi / 2)

        # Fringe per column: longer on the side away from the parting, split where the parting meets it.
        line_point = _along(table.surface, theta_line[:, None])[:, 0]
        sweep = np.clip(1.0 + 2.5 * h.parting * np.clip(-line_point[:, 0] / 0.5, -1, 1), 0.05, None)
        gap = 1.0 - 0.7 * np.exp(-(((line_point[:, 0] - parting_x) / 0.1) ** 2))
        fringe_arc = fringe_length * self.front * self.fringe_jitter * sweep * gap
        fringe_theta = np.minimum(fringe_arc / 1.25, np.maximum(table.brow_theta - theta_line, 0.0))
        presence = smoothstep(fringe_arc / 0.06)[:, None]
        theta_end = np.where(self.front > 0, theta_line + fringe_theta, theta_line)

        def shell(theta):
            """Surface + thickness along the columns at polar angles theta (J, R)."""
            base = thickness * (0.6 + 0.4 * np.sin(theta))
            edge = smoothstep((theta_line[:, None] - theta) / 0.3)  # hair thins towards the hairline
            on_scalp = base * (edge + (1 - edge) * presence) - 0.012 * (1 - edge) * (1 - presence)
            t_f = np.clip((theta - theta_line[:, None]) / np.maximum(fringe_theta[:, None], 1e-6), 0, 1)
            base_line = thickness * (0.6 + 0.4 * np.sin(theta_line))[:, None]
            on_forehead = presence * (base_line * (1 - 0.4 * t_f) + 0.03 * t_f) - 0.012 * (1 - presence)
            thick = np.where(theta <= theta_line[:, None], on_scalp, on_forehead)
            frame = _along(self.frame, theta)  # surface and direction in one lookup
            surface, direction = frame[..., :3], frame[..., 3:]
            # The parting: a narrow groove from the front hairline back over the top, fading before the crown.
            groove = np.exp(-(((surface[..., 0] - parting_x) / 0.05) ** 2))
            groove *= smoothstep((surface[..., 1] - table.forehead_top + 0.25) / 0.3)
            groove *= smoothstep((surface[..., 2] - table.centre[2] - 0.55) / 0.4)
            parted = thick - 0.75 * np.maximum(thick, 0) * groove
            return surface + direction * parted[..., None], thick  # cover: from the hair's thickness unparted

        # Upper rows at fixed polar angles (those past the split fold onto it), so moving the hairline moves
        # the hair near it only; the lower rows spread from the split to the fringe or the nape.
        theta = np.concatenate(
            [
                np.minimum(np.pi / 2 * self.upper_t[None], theta_split[:, None]),
                theta_split[:, None] + (theta_end - theta_split)[:, None] * self.lower_t[None],
            ],
            1,
        )
        points, thick = shell(theta)
        upper, hug = points[:, :UPPER_ROWS], points[:, UPPER_ROWS:]
        upper_thick, hug_thick = thick[:, :UPPER_ROWS], thick[:, UPPER_ROWS:]
        # Hair lying over the ears goes round them, not through them.
        hug_rel = hug - table.centre
        hug_reach = np.hypot(hug_rel[..., 0], hug_rel[..., 2])
        around = self._clearance(hug[..., 1]) + 0.02 + 0.5 * thickness
        push = np.maximum(around - hug_reach, 0) * self.side[:, None] * smoothstep(hug_thick / 0.02)
        hug = hug + np.stack([np.sin(table.phi)[:, None] * push, 0 * push, np.cos(table.phi)[:, None] * push], -1)

        # Hanging: straight down from the split point, kept clear of the head (ears), flaring with volume.
        start = upper[:, -1]
        drop = np.maximum(hang_length * self.side * self.length_jitter, start[:, 1] - hug[:, -1, 1])
        drape = smoothstep(hang_length * self.side / 0.5)[:, None, None]
        y = start[:, 1:2] - drop[:, None] * self.lower_t[None]
        rel = start - table.centre
        reach = np.hypot(rel[:, 0], rel[:, 2])
        flare = reach[:, None] + (0.05 + 1.2 * thickness) * np.sqrt(self.lower_t)[None]
        clear = np.maximum.accumulate(self._clearance(y), axis=1) + 0.05 + thickness  # once out past the ears, out
        radius = 0.5 * (flare + clear + np.sqrt((flare - clear) ** 2 + 0.02**2))  # a smooth max
        hang = np.stack(
            [
                table.centre[0] + radius * np.sin(table.phi)[:, None],
                y,
                table.centre[2] + radius * np.cos(table.phi)[:, None],
            ],
            -1,
        )
        lower = hug * (1 - drape) + hang * drape
        pole_thick = thickness * 0.6
        pole = table.surface[0, 0] + table.direction[0, 0] * pole_thick
        grid = np.concatenate([upper, lower], 1).reshape(-1, 3)
        # How much hair each vertex shows: thin at the hairline (the skin shows through), full where it hangs.
        cover = np.concatenate([smoothstep(upper_thick / 0.04), smoothstep(hug_thick / 0.04) * (1 - drape[..., 0])
                                + drape[..., 0]], 1)  # fmt: skip
        self._last = (h, np.concatenate([[1.0], cover.ravel()]))
        return np.concatenate([pole[None], grid])

    def _clearance(self, y: np.ndarray) -> np.ndarray:
        """(J, R) horizontal radius to stay outside at heights y (J, R), per column, from the table."""
        position = np.clip((y - CLEARANCE_Y[0]) / (CLEARANCE_Y[1] - CLEARANCE_Y[0]), 0, len(CLEARANCE_Y) - 1.001)
        low = position.astype(int)
        t = position - low
        columns = np.arange(COLUMNS)[:, None]
        return self.table.clearance[columns, low] * (1 - t) + self.table.clearance[columns, low + 1] * t

    def cover(self, h: HairValues) -> np.ndarray:
        """(1 + J * rows,) how densely each vertex shows hair, 0..1, for the values `positions` was last given."""
        if self._last is None or self._last[0] != h:
            self.positions(h)
        return self._last[1]

    def anchors(self, neutral: np.ndarray) -> np.ndarray:
        """Where each grid vertex sits on the scalp at the neutral style: skinning weights are taken from there."""
        rows = UPPER_ROWS + LOWER_ROWS
        grid = neutral[1:].reshape(COLUMNS, rows, 3).copy()
        # Hanging rows ride with the point they hang from.
        hanging = self.side > 0.5
        grid[hanging, UPPER_ROWS:] = grid[hanging, UPPER_ROWS - 1 : UPPER_ROWS]
        return np.concatenate([neutral[:1], grid.reshape(-1, 3)])


@dataclass
class Strip:
    """A brow strip or lash ribbon: its vertices' roots on the skin and the directions it grows."""

    root: np.ndarray  # (n, 3)
    growth: np.ndarray  # (n, 3) offset at full length (zero for brows, which keep their shape)
    along: np.ndarray  # (n,) 0..1 along the strip (brows: outer end 0; lashes: inner corner 0)
    across: np.ndarray  # (n,) -1..1 across a brow, 0..1 root to tip of a lash
    triangles: np.ndarray  # (m, 3) local indices
    uv: np.ndarray  # (n, 2)


def _grid_triangles(rows: int, cols: int, offset: int = 0) -> np.ndarray:
    """Quads of a rows x cols vertex grid (row-major, open), two triangles each."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel() + offset
    return np.concatenate([np.stack([a, a + 1, a + cols], 1), np.stack([a + 1, a + cols + 1, a + cols], 1)])


def _project_to_skin(points, skin_points, skin_normals, lift: float):
    """Points moved onto the local tangent plane of the nearest skin vertices, then `lift` out along the normal."""
    _, nearest = cKDTree(skin_points).query(points, k=6)
    centre = skin_points[nearest].mean(1)
    normal = skin_normals[nearest].mean(1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    height = ((points - centre) * normal).sum(1, keepdims=True)
    return points - normal * height + normal * lift, normal


def _resample(points: np.ndarray, count: int, extend: float = 0.0) -> np.ndarray:
    """`count` points along a smooth curve through `points`, extended by `extend` of its length at each end."""
    chord = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    spline = CubicSpline(chord / chord[-1], points, bc_type="natural")
    return spline(np.linspace(-extend, 1 + extend, count))


def brow_strips(landmarks: np.ndarray, skin_points: np.ndarray, skin_normals: np.ndarray) -> list[Strip]:
    """Two brow strips (left, right): BROW_ALONG x BROW_ACROSS vertices over each brow's centreline."""
    strips = []
    for lower, upper in BROW_LANDMARKS:
        centre = _resample((landmarks[lower] + landmarks[upper]) / 2, BROW_ALONG, extend=0.08)
        tangent = np.gradient(centre, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        _, normal = _project_to_skin(centre, skin_points, skin_normals, 0.0)
        up = np.cross(normal, tangent)
        up *= np.sign(up[:, 1:2])
        up /= np.linalg.norm(up, axis=1, keepdims=True)
        across = np.linspace(-1, 1, BROW_ACROSS)
        points = centre[:, None] + up[:, None] * (across * BROW_HALF_HEIGHT)[None, :, None]
        root, _ = _project_to_skin(points.reshape(-1, 3), skin_points, skin_normals, 0.02)
        along = np.repeat(np.linspace(0, 1, BROW_ALONG), BROW_ACROSS)
        across_all = np.tile(across, BROW_ALONG)
        triangles = _grid_triangles(BROW_ALONG, BROW_ACROSS)
        corners = root[triangles]
        facing = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        if (facing * normal.mean(0)).sum() < 0:  # wound counter-clockwise seen from outside, like the skin
            triangles = triangles[:, ::-1]
        strips.append(
            Strip(
                root=root,
                growth=np.zeros_like(root),
                along=along,
                across=across_all,
                triangles=triangles,
                uv=np.stack([across_all * 0.12, along * 1.2], 1),
            )
        )
    return strips


def lash_ribbons(landmarks: np.ndarray, skin_points: np.ndarray, skin_normals: np.ndarray) -> list[Strip]:
    """Two upper-lash ribbons (left, right): LASH_ALONG x LASH_ROWS vertices from the lid margin outwards."""
    strips = []
    for indices in UPPER_LID_LANDMARKS:
        margin = _resample(landmarks[indices], LASH_ALONG)
        margin, normal = _project_to_skin(margin, skin_points, skin_normals, 0.004)
        s = np.linspace(0, 1, LASH_ALONG)
        length = np.sin(np.pi * np.clip(s * 0.96 + 0.02, 0, 1)) ** 0.6 * (0.55 + 0.45 * s)
        outward = np.sign(margin[:, :1]) * np.array([[1.0, 0.0, 0.0]])
        rows = np.linspace(0, 1, LASH_ROWS)
        root, growth = [], []
        for t in rows:  # curling: forward first, then up
            direction = np.array([0.0, 0.0, 1.0]) * (1.0 - 0.35 * t) + np.array([0.0, 1.0, 0.0]) * (0.2 + 0.7 * t)
            offset = (direction[None] + 0.25 * outward * s[:, None]) * t
            root.append(margin)
            growth.append(offset * length[:, None])
        root = np.stack(root, 1).reshape(-1, 3)
        growth = np.stack(growth, 1).reshape(-1, 3)
        along = np.repeat(s, LASH_ROWS)
        across = np.tile(rows, LASH_ALONG)
        strips.append(
            Strip(
                root=root,
                growth=growth,
                along=along,
                across=across,
                triangles=_grid_triangles(LASH_ALONG, LASH_ROWS),
                uv=np.stack([along * 3.0, across * 0.3], 1),
            )
        )
    return strips


BEARD_ONSET = -0.1  # `beard_length` / 2.5 below which the beard shell lies inside the skin (clean-shaven)


@dataclass
class Beard:
    """A shell over the beard area (chin, jaw, lower cheeks, upper lip) that stands off the skin with the beard."""

    root: np.ndarray  # (n, 3) the skin under each shell vertex
    normal: np.ndarray  # (n, 3)
    weight: np.ndarray  # (n,) 1 inside the beard area, fading to 0 at its border
    chin: np.ndarray  # (n,) where a long beard hangs lower (the chin)
    triangles: np.ndarray  # (m, 3) local indices
    uv: np.ndarray  # (n, 2)

    def offset(self, beard: float) -> np.ndarray:
        """(n,) distance of the shell from the skin for `beard_length` / 2.5: inside the skin (clean-shaven) up to
        the neutral 0, then growing to a full beard at +2.5."""
        thickness = -0.012 + 0.21 * np.clip((beard - BEARD_ONSET) / (1 - BEARD_ONSET), 0.0, 1.0) ** 1.3
        return thickness * self.weight - 0.012 * (1 - self.weight)

    def positions(self, beard: float) -> np.ndarray:
        """(n, 3) shell vertices; clean-shaven, all at one point inside the head (no area to rasterise)."""
        if beard <= BEARD_ONSET:
            return np.broadcast_to(self.root.mean(0) - [0.0, 0.0, 0.5], self.root.shape).copy()
        offset = self.offset(beard)
        sag = 1.2 * np.maximum(offset, 0)[:, None] * self.chin[:, None] * np.array([0.0, -1.0, 0.25])
        return self.root + self.normal * offset[:, None] + sag


def beard_shell(skin_points, skin_normals, skin_triangles, landmarks) -> tuple[np.ndarray, Beard]:
    """(source skin vertex indices, Beard) over the lower face and under the jaw, clear of the lips."""
    x, y, z = skin_points.T
    nose_bottom = landmarks[2, 1]
    top = nose_bottom + 0.02 + 0.55 * smoothstep((np.abs(x) - 0.25) / 0.75)  # rises to the sideburns
    area = smoothstep((top - y) / 0.08)
    area *= smoothstep((z + 1.05) / 0.15)  # not the back of the head
    area *= smoothstep((y + 2.0) / 0.1)
    lips = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
    contour = np.concatenate([landmarks[lips], landmarks[lips[:1]]])
    lip_distance, _ = polyline_distance(skin_points, contour)
    in_lips = inside_polygon_2d(skin_points, landmarks[lips]) & (z > landmarks[lips, 2].min() - 0.1)
    area *= np.where(in_lips, 0.0, smoothstep((lip_distance - 0.015) / 0.05))
    source = np.flatnonzero(area > 0)
    keep = np.zeros(len(skin_points), bool)
    keep[source] = True
    triangles = skin_triangles[keep[skin_triangles].all(1)]
    local = np.full(len(skin_points), -1)
    local[source] = np.arange(len(source))
    chin = np.exp(-((x[source] / 0.45) ** 2)) * smoothstep((landmarks[17, 1] - 0.1 - y[source]) / 0.3)
    return source, Beard(
        root=skin_points[source],
        normal=skin_normals[source],
        weight=area[source],
        chin=chin,
        triangles=local[triangles],
        uv=np.stack([x[source] * 1.2, y[source] * 0.25], 1),
    )


def lash_length(lashes: float) -> float:
    """Lash length (iod units) at the longest point for `eyelash_length` / 2.5 in [-1, 1]."""
    return 0.025 + 0.11 * unit_amount(lashes)


class HairRig:
    """Where the hair-like parts sit in the head's vertex array, and their rest shape for given hair sliders."""

    def __init__(self, scalp: ScalpHair, scalp_index: np.ndarray, brows: list, lashes: list, beard: tuple):
        self.scalp = scalp
        self.scalp_index = scalp_index
        self.brows = brows  # [(vertex indices, Strip)], left then right
        self.lashes = lashes
        self.beard_index, self.beard = beard  # (vertex indices, Beard)

    def rest(self, vertices: np.ndarray, values: HairValues) -> np.ndarray:
        """The neutral head's vertices with the hair, lashes re-made for `values` (a new array)."""
        out = vertices.copy()
        out[self.scalp_index] = self.scalp.positions(values)
        length = lash_length(values.lashes)
        for index, strip in self.lashes:
            out[index] = strip.root + strip.growth * length
        out[self.beard_index] = self.beard.positions(values.beard)
        return out
