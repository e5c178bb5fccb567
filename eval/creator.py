"""The character creator behind the web app (eval/app_page.py), free of any web framework: uploaded photos of one
person -> detected and aligned faces -> the model's character, edited slider by slider, and its files.

`Creator` holds the model and the game engine and runs every detection, model pass and render on one thread of its
own: the engine's GL context is current only in the thread that made it (game/render.py). A photo that cannot be
used (damaged, not an image, too large, no face, several faces) becomes a `PhotoReading` with a one-line `problem`
naming the file, never an exception, so the page says what was wrong and goes on serving.
"""

from __future__ import annotations

import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from eval.align import AlignedFace, align_upright, is_grayscale, read_photo
from eval.character import (
    apply_rules,
    combine,
    confidence,
    load_predictor,
    read_face,
)
from game import Game
from game import parameters as P
from game.appearance import estimate_skin_tone
from game.mesh_export import character_mesh, write_mesh
from game.presets import preset_dict, write_preset

# A photo above these is refused before it is decoded: a phone's 50 MP photo decodes to 150 MB, and a small PNG can
# hold a gigapixel of one colour. Faces this app reads need far less (the detector sees 128 px, the model 256 px).
MAX_PHOTO_PIXELS = 50_000_000
MAX_PHOTO_BYTES = 50 * 2**20
THREE_QUARTER_YAW = 35.0  # degrees the engine turns the head for the second view (nose to the image's right)
PREVIEW_SIDE = 512  # long side of the photo shown with its detected faces
BOX_COLOUR = (40, 220, 90)  # the face that was read
OTHER_BOX_COLOUR = (235, 60, 50)  # faces of a photo with several, none read


@dataclass
class PhotoReading:
    """What one uploaded photo gave: its face and the model's reading of it, or the problem that stopped it."""

    name: str  # the file's name as uploaded
    problem: str | None = None  # one line naming the file, when the photo cannot be used
    preview: np.ndarray | None = None  # (H, W, 3) uint8: the photo scaled down, the detected faces drawn
    face: AlignedFace | None = None
    reading: np.ndarray | None = None  # (267,) the model's parameters, before the colour rules
    colour: bool = True  # False for a grayscale photo: its colour sliders stay neutral
    skin_tone: float | None = None  # the palette entry nearest the photo's skin (colour photos)

    @property
    def usable(self) -> bool:
        return self.problem is None and self.reading is not None


@dataclass
class Character:
    """The character of the photos read so far, with the sliders the user moved by hand.

    `edits` (slider name -> value) win over the model's reading; reset clears them. With no photo read it is the
    neutral face.
    """

    readings: list[PhotoReading] = field(default_factory=list)  # the usable photos, in upload order
    snap_skin: bool = True
    edits: dict[str, float] = field(default_factory=dict)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # names this character's folder of files

    def __post_init__(self):
        self._combined = None  # (median, spread) of the readings, by snap setting

    def combined(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(regressed parameters (267,), spread across photos (267,) or None for fewer than two photos)."""
        if not self.readings:
            return np.zeros(P.NUM_PARAMETERS, np.float32), None
        if self._combined is None or self._combined[0] != self.snap_skin:
            rows = [apply_rules(r.reading, r.colour, r.skin_tone if self.snap_skin else None) for r in self.readings]
            self._combined = (self.snap_skin, combine(np.stack(rows), np.array([r.colour for r in self.readings])))
        return self._combined[1]

    @property
    def regressed(self) -> np.ndarray:
        """The model's parameters (median over the photos), skin snap as set, without the hand edits."""
        return self.combined()[0]

    @property
    def spread(self) -> np.ndarray | None:
        return self.combined()[1]

    @property
    def confidence(self) -> np.ndarray | None:
        """Per-slider confidence in [0, 1] (NaN where unknown) from the spread across photos; None for one photo."""
        spread = self.spread
        return None if spread is None else confidence(spread)

    @property
    def parameters(self) -> np.ndarray:
        """(267,) float32: what the character is now, the hand edits over the model's reading."""
        params = self.regressed.copy()
        for name, value in self.edits.items():
            params[P.index_of(name)] = value
        return params

    def edit(self, name: str, value: float) -> None:
        """Set one slider by hand; a value outside the range or not finite is refused naming the slider."""
        index = P.index_of(name)
        row = self.parameters
        row[index] = value
        P.validate(row, f"slider {name}")
        self.edits[name] = float(np.float32(value))

    @property
    def stem(self) -> str:
        """The files' name: the first photo's name without its extension, or 'character' with no photo."""
        return Path(self.readings[0].name).stem if self.readings else "character"

    @property
    def grayscale(self) -> bool:
        return bool(self.readings) and not any(r.colour for r in self.readings)

    def notes(self, checkpoint: str | None) -> dict:
        """The preset's notes as the reconstruct tool writes them; the photos and the hand-moved sliders too.

        One photo gives the reconstruct tool's notes exactly (source is the file's name as uploaded); several add
        `photos` (each one's name, grayscale flag and turn) and the source names the median; hand edits add `edited`.
        """
        snapped = self.snap_skin and not self.grayscale and "skin_tone" not in self.edits and bool(self.readings)
        names = [r.name for r in self.readings]
        if len(names) == 1:
            source, more = names[0], {"turned_degrees": self.readings[0].face.turned}
        else:
            source = f"median of {len(names)} photos" if names else "no photo: the neutral face"
            more = {"photos": [{"name": r.name, "grayscale": not r.colour, "turned_degrees": r.face.turned}
                               for r in self.readings]}  # fmt: skip
        notes = {"skin_tone_snapped": snapped, "source": source, "checkpoint": checkpoint, "grayscale": self.grayscale}
        notes.update(more)
        if self.edits:
            notes["edited"] = sorted(self.edits, key=P.index_of)
        return notes

    def preset(self, checkpoint: str | None) -> dict:
        """The character's preset (game.presets), as the reconstruct tool writes it for one photo."""
        return preset_dict(self.parameters, **self.notes(checkpoint))


def open_photo(path: str | Path, name: str) -> np.ndarray:
    """An uploaded photo as uint8 HxWx3 RGB, or ValueError with one line naming `name` (the file as uploaded).

    Refused before decoding: a file over MAX_PHOTO_BYTES or an image over MAX_PHOTO_PIXELS (read from its header).
    """
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    if size > MAX_PHOTO_BYTES:
        raise ValueError(
            f"{name} is {size / 2**20:.0f} MB, over the {MAX_PHOTO_BYTES / 2**20:.0f} MB this app reads: "
            "scale the photo down or crop it to the face"
        )
    try:
        with Image.open(path) as image:
            width, height = image.size  # the header only: nothing decoded yet
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        width = height = 0  # not a header PIL reads: read_photo decides
    if width * height > MAX_PHOTO_PIXELS:
        raise ValueError(
            f"{name} is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels), over the "
            f"{MAX_PHOTO_PIXELS / 1e6:.0f} megapixels this app reads: scale the photo down or crop it to the face"
        )
    try:
        return read_photo(path)
    except ValueError as error:  # read_photo names the upload's temporary path: name the file as uploaded instead
        raise ValueError(str(error).replace(str(path), name)) from None


def draw_faces(photo: np.ndarray, faces: list[AlignedFace], read: bool) -> np.ndarray:
    """The photo scaled to PREVIEW_SIDE with each face's box and five template points drawn (numbered when several;
    green for the face that was read, red for faces that were not)."""
    scale = min(1.0, PREVIEW_SIDE / max(photo.shape[:2]))
    preview = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else photo.copy()
    colour = BOX_COLOUR if read else OTHER_BOX_COLOUR
    thickness = max(2, round(max(preview.shape[:2]) / 250))
    for number, face in enumerate(faces, start=1):
        x0, y0, x1, y1 = (np.asarray(face.box) * scale).round().astype(int)
        cv2.rectangle(preview, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
        for x, y in face.points * scale:
            cv2.circle(preview, (round(x), round(y)), thickness + 1, colour, -1, cv2.LINE_AA)
        if len(faces) > 1:
            cv2.putText(preview, str(number), (x0, max(y0 - 6, 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * thickness / 2,
                        colour, thickness, cv2.LINE_AA)  # fmt: skip
    return preview


class Creator:
    """The model and the engine the app serves, every call run on one thread (the engine's GL context lives there)."""

    def __init__(self, ckpt: str | Path | None, size: int = 256):
        self.checkpoint = None if ckpt is None or str(ckpt).lower() == "none" else str(ckpt)
        self.size = size
        # The model first: importing triton after Mesa's EGL context exists crashes the process (game/render.py).
        self.predictor = load_predictor(ckpt, size)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="creator")
        self._files = tempfile.TemporaryDirectory(prefix="likeness-app-")
        self.game = Game(size)

    def close(self) -> None:
        """Stop the worker thread and remove the files written for downloads."""
        self._thread.shutdown(wait=True)
        self._files.cleanup()

    def _call(self, function, *args):
        return self._thread.submit(function, *args).result()

    # ------------------------------------------------------------------------------------------------ photos

    def read_photos(self, uploads: list[tuple[str | Path, str]]) -> list[PhotoReading]:
        """One PhotoReading per (path, name as uploaded), in order; the model reads each usable one."""
        return self._call(lambda: [self._read_photo(Path(path), name) for path, name in uploads])

    def _read_photo(self, path: Path, name: str) -> PhotoReading:
        try:
            photo = open_photo(path, name)
        except ValueError as error:
            return PhotoReading(name, problem=str(error))
        faces = align_upright(photo, self.size)
        if not faces:
            # The short-range detector misses faces narrower than about a tenth of the photo's long side.
            return PhotoReading(
                name,
                problem=f"no face found in {name}, upright or turned: upload a photo where the face fills more of "
                "the picture (crop closer to it)",
                preview=draw_faces(photo, [], read=False),
            )
        if len(faces) > 1:
            return PhotoReading(
                name,
                problem=f"{len(faces)} faces found in {name} (numbered in the picture): upload photos of one person "
                "alone, or crop this one to one face",
                preview=draw_faces(photo, faces, read=False),
            )
        (face,) = faces
        colour = not is_grayscale(photo)
        return PhotoReading(
            name,
            preview=draw_faces(photo, faces, read=True),
            face=face,
            reading=read_face(face, self.predictor),
            colour=colour,
            skin_tone=estimate_skin_tone(face.image)[0] if colour else None,
        )

    # ------------------------------------------------------------------------------------------------ views

    def views(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The engine's screenshots of the character (S, S, 3) uint8: front, and turned THREE_QUARTER_YAW degrees."""
        return self._call(lambda: (self.game.render(params), self.game.render(params, yaw_degrees=THREE_QUARTER_YAW)))

    # ------------------------------------------------------------------------------------------------ files

    def folder(self, character: Character) -> Path:
        """This character's folder of download files (rewritten on each change, removed when the app stops)."""
        folder = Path(self._files.name) / character.key
        folder.mkdir(exist_ok=True)
        return folder

    def write_preset(self, character: Character) -> Path:
        """<stem>.json, the character's preset as the reconstruct tool writes it (game.presets)."""
        notes = character.notes(self.checkpoint)
        return write_preset(self.folder(character) / f"{character.stem}.json", character.parameters, **notes)

    def write_mesh(self, character: Character) -> Path:
        """<stem>.glb, the character's head mesh (game.mesh_export: glTF binary, vertex colours)."""
        mesh = self._call(character_mesh, character.parameters, self.game)
        return write_mesh(mesh, self.folder(character) / f"{character.stem}.glb", "glb")
