"""What engine v2's looks change for the face detector and the likeness benchmark, measured on whichever engine
`import game` finds (studies/engine_v2/__main__.py runs it once per engine, in a fresh interpreter each).

- Detector: BlazeFace (models/face_detector.py) on 256 px renders of each prior; a hit is a detection whose two
  eye keypoints lie within a tenth of the picture of the face's true eye centres (the template points).
- Likeness: the held-out likeness benchmark's recipe (eval/benchmarks/held_out.py: its seed, the realistic prior,
  its extras) with one photo per person; the held-out recogniser's cosine between each photo (aligned on its
  ground-truth points) and the engine's 256 px render of the person's true parameters, and of the neutral face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SIZE = 256
EYE_TOLERANCE = 0.1  # of the picture side


def detector_hits(style: str, prior: str, count: int, seed: int = 7) -> dict:
    """Per person: 1 if BlazeFace finds the face (its eyes where they are), else 0; plus the top scores."""
    from game import parameters as P
    from game.engine import Game
    from models.face_detector import BlazeFaceDetector

    game = Game(SIZE, style)
    detector = BlazeFaceDetector()
    hits, scores = [], []
    for start in range(0, count, 32):
        photos, eyes = [], []
        for i in range(start, min(start + 32, count)):
            params = P.sample_prior(np.random.default_rng([seed, i]), 1, prior)[0]
            image, points = game.render_with_points(params, np.random.default_rng([seed, i, 1]))
            photos.append(image)
            eyes.append(points[:2])
        for found, true_eyes in zip(detector.detect(photos), eyes):
            # MediaPipe's keypoints are the subject's right eye then left eye, as the template's first two points
            ok = [np.linalg.norm(d.keypoints[:2] - true_eyes, axis=1).max() < EYE_TOLERANCE * SIZE for d in found]
            hits.append(int(any(ok)))
            scores.append(float(found[0].score) if found else 0.0)
    return {"hits": hits, "scores": scores}


def likeness_cosines(people: int, work: Path) -> dict:
    """Per person: the recogniser's cosine of the photo with the character of the true parameters and with the
    neutral face's, and which recogniser judged."""
    import cv2

    from eval.benchmarks.held_out import EXTRAS, PRIOR, SEED
    from eval.likeness_bench import load_recogniser
    from eval.lineup import unit
    from game import parameters as P
    from game.dataset import generate
    from game.engine import engine_renders
    from game.framing import align_to_template

    root = generate(
        work / "photos", people, size=SIZE, style="photo", seed=SEED, renders_per_identity=1, prior=PRIOR,
        extras=EXTRAS, workers=1, progress=False,
    )  # fmt: skip
    truth = np.load(root / "parameters.npy")
    points = np.load(root / "points.npy")
    recogniser, info = load_recogniser()
    photo_chunks, truth_chunks = [], []
    with torch.inference_mode():
        for start in range(0, people, 32):
            rows = range(start, min(start + 32, people))
            aligned = [
                align_to_template(cv2.cvtColor(cv2.imread(str(root / "images" / f"{i:07d}.jpg")), cv2.COLOR_BGR2RGB),
                                  points[i], SIZE)
                for i in rows
            ]  # fmt: skip
            batch = torch.from_numpy(np.stack(aligned)).permute(0, 3, 1, 2).float() / 255
            photo_chunks.append(recogniser(batch).float().numpy())
            truth_chunks.append(recogniser(engine_renders(truth[start : start + 32], SIZE)).float().numpy())
        neutral = recogniser(engine_renders(np.zeros((1, P.NUM_PARAMETERS), np.float32), SIZE)).float().numpy()
    photos = unit(np.concatenate(photo_chunks))
    return {
        "truth": (photos * unit(np.concatenate(truth_chunks))).sum(1).tolist(),
        "neutral": (photos @ unit(neutral)[0]).tolist(),
        "recogniser": info,
    }
