"""The character creator's web page (Gradio): photos in, the face found, the character, its 267 sliders, downloads.

`build_page(creator)` lays the page out and wires its events to eval/creator.py, which does the work; `serve` runs it
on 127.0.0.1. Nothing on the page comes from the internet: Gradio's telemetry is off, its fonts are its own, there is
no share link and no server-side rendering through Node.
"""

from __future__ import annotations

import os
from functools import partial

import numpy as np

from eval.creator import MAX_PHOTO_BYTES, Character, Creator, PhotoReading
from game import parameters as P

TITLE = "likeness: photo to game character"
SLIDER_STEP = 0.01
LEAST_SURE_SHOWN = 12  # rows of the "least sure" table
# Gradio's per-slider reset button sets the slider back without an input event, so the character would not follow:
# hidden; "Reset sliders to the model's values" does it for all.
CSS = """
#status p { margin: 0.2em 0; }
[id^="slider-"] .reset-button { display: none; }
"""
INTRODUCTION = (
    f"# {TITLE}\n"
    "Upload one photo of a face, or several photos of the same person. The model reads the game's "
    f"{P.NUM_PARAMETERS} character-creator sliders from it; move any slider to change the character, "
    "then download the preset or the mesh."
)
ONE_PHOTO_NOTE = (
    "Upload two or more photos of the same person to see how sure the model is of each slider: the sliders become "
    "the median over the photos, and the spread of the readings across photos gives each one a confidence."
)


def groups() -> dict[str, list[P.Parameter]]:
    """The sliders by group, groups in the order they first appear in game/parameters.csv."""
    grouped: dict[str, list[P.Parameter]] = {}
    for parameter in P.table():
        grouped.setdefault(parameter.group, []).append(parameter)
    return grouped


def upload_names(files) -> list[tuple[str, str]]:
    """(path, the file's name as uploaded) of Gradio's uploads (paths of its temporary copies)."""
    return [(str(path), os.path.basename(str(path))) for path in files or []]


def status_text(readings: list[PhotoReading], kept: bool) -> str:
    """The page's message: one line per photo (what was found or what was wrong), and what happened."""
    lines = []
    for reading in readings:
        if reading.usable:
            turned = f", found with the photo turned {reading.face.turned} degrees" if reading.face.turned else ""
            grey = ": grayscale, so the colour sliders stay neutral" if not reading.colour else ""
            lines.append(f"- **{reading.name}**: one face (detection score {reading.face.score:.2f}){turned}{grey}")
        else:
            lines.append(f"- **{reading.name}**: {reading.problem}")
    usable = sum(r.usable for r in readings)
    if not usable:
        ending = "No photo could be used" + (": the character is unchanged." if kept else ".")
    elif usable == 1:
        ending = "The character is the model's reading of this photo."
    else:
        ending = f"The character is the median of the model's readings of {usable} photos."
    return "\n".join([*lines, "", ending])


def gallery_items(readings: list[PhotoReading]) -> list[tuple[np.ndarray, str]]:
    """(picture, caption) pairs: each photo with its detected faces drawn, then its aligned crop when it has one."""
    items = []
    for reading in readings:
        if reading.preview is not None:
            caption = "the face found" if reading.usable else reading.problem
            items.append((reading.preview, f"{reading.name}: {caption}"))
        if reading.usable:
            items.append((reading.face.image, f"{reading.name}: aligned to the template (what the model reads)"))
    return items


def confidence_text(character: Character) -> str:
    """How sure the model is, from the spread across photos: overall, by group, and the least sure sliders."""
    sure = character.confidence
    if sure is None:
        return ONE_PHOTO_NOTE
    spread = character.spread
    rows = [f"**Confidence** (1 = the {len(character.readings)} photos agree, 0 = they disagree as much as random "
            f"characters would): {np.nanmean(sure):.2f} over all sliders.", "",
            "| least sure sliders | group | spread across photos | confidence |", "|---|---|---|---|"]  # fmt: skip
    order = np.argsort(np.nan_to_num(sure, nan=2.0))[:LEAST_SURE_SHOWN]
    for index in order:
        parameter = P.table()[index]
        rows.append(f"| {parameter.name} | {parameter.group} | ±{spread[index]:.2f} | {sure[index]:.2f} |")
    return "\n".join(rows)


def slider_info(parameter: P.Parameter, character: Character) -> str:
    """A slider's caption: what it does, and the model's confidence in it when several photos were read."""
    sure = character.confidence
    if sure is None:
        return parameter.meaning
    value = sure[parameter.index]
    said = "one colour photo" if np.isnan(value) else f"{value:.2f} (spread ±{character.spread[parameter.index]:.2f})"
    return f"{parameter.meaning} · confidence {said}"


def group_label(name: str, members: list[P.Parameter], character: Character) -> str:
    label = f"{name} ({len(members)} sliders)"
    sure = character.confidence
    if sure is not None:
        label += f" · confidence {np.nanmean(sure[[p.index for p in members]]):.2f}"
    return label


def build_page(creator: Creator):
    """The Gradio page over `creator` (not launched)."""
    import gradio as gr

    grouped = groups()
    neutral = Character(key="neutral")

    def character_files(character: Character) -> list:
        """The character's two views and its download files (preset, mesh), rewritten for this change."""
        return [*creator.views(character.parameters), creator.write_preset(character), creator.write_mesh(character)]

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        state = gr.State(None)  # this visitor's Character, made on the first event
        gr.Markdown(INTRODUCTION)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                photos = gr.File(
                    label="Photos of one person (JPEG, PNG, ...)",
                    file_count="multiple",
                    file_types=["image"],
                    elem_id="photos",
                )
                status = gr.Markdown("No photo yet: the character is the neutral face.", elem_id="status")
                faces = gr.Gallery(
                    label="Faces found, and the aligned crops the model reads",
                    columns=2,
                    height=300,
                    object_fit="contain",
                    elem_id="faces",
                )
            with gr.Column(scale=1):
                first_front, first_turned, first_preset, first_mesh = character_files(neutral)
                with gr.Row():
                    front, turned = (
                        gr.Image(
                            picture,
                            label=view,
                            type="numpy",
                            format="png",
                            interactive=False,
                            height=280,
                            buttons=["download", "fullscreen"],
                            elem_id=elem_id,
                        )
                        for picture, view, elem_id in (
                            (first_front, "The character, front view", "front-view"),
                            (first_turned, "Three-quarter view", "three-quarter-view"),
                        )
                    )
                with gr.Row():
                    snap = gr.Checkbox(
                        True,
                        label="Skin palette snap",
                        info="skin tone: the game palette's entry nearest the photo's skin, not the model's reading",
                        elem_id="snap",
                    )
                    reset = gr.Button("Reset sliders to the model's values", size="md", elem_id="reset")
                with gr.Row():
                    preset_file = gr.DownloadButton(
                        "Download the preset (.json)", first_preset, variant="primary", elem_id="preset-download"
                    )
                    mesh_file = gr.DownloadButton(
                        "Download the mesh (.glb)", first_mesh, variant="primary", elem_id="mesh-download"
                    )
                confidence = gr.Markdown(ONE_PHOTO_NOTE, elem_id="confidence")
        gr.Markdown("## Sliders\nEach slider runs from -2.5 to 2.5; 0 is the neutral face.")
        sliders, accordions = [], []
        laid_out = [parameter for members in grouped.values() for parameter in members]  # the sliders' order
        for name, members in grouped.items():
            with gr.Accordion(group_label(name, members, neutral), open=False, elem_id=f"group-{name}") as accordion:
                accordions.append(accordion)
                with gr.Row():
                    for parameter in members:
                        sliders.append(
                            gr.Slider(
                                P.LOW,
                                P.HIGH,
                                value=0.0,
                                step=SLIDER_STEP,
                                label=parameter.name,
                                info=parameter.meaning,
                                min_width=260,
                                elem_id=f"slider-{parameter.name}",
                            )
                        )

        def everything(character: Character) -> list:
            """Updates of every output that depends on the character: views, files, sliders, group labels."""
            values = character.parameters
            return [
                *character_files(character),
                confidence_text(character),
                character,
                *[gr.update(label=group_label(n, m, character)) for n, m in grouped.items()],
                *[gr.update(value=round(float(values[p.index]), 2), info=slider_info(p, character)) for p in laid_out],
            ]

        character_outputs = [front, turned, preset_file, mesh_file]
        every_output = [*character_outputs, confidence, state, *accordions, *sliders]

        def read(files, snap_skin, character):
            if not files:  # the upload was cleared: the character stays
                return [gr.skip(), gr.skip(), *[gr.skip()] * len(every_output)]
            readings = creator.read_photos(upload_names(files))
            usable = [r for r in readings if r.usable]
            items = gallery_items(readings)
            if not usable:
                text = status_text(readings, kept=character is not None and bool(character.readings))
                return [text, items, *[gr.skip()] * len(every_output)]
            return [status_text(readings, kept=False), items, *everything(Character(usable, snap_skin))]

        photos.upload(read, [photos, snap, state], [status, faces, *every_output], concurrency_id="creator")

        def set_snap(snap_skin, character):
            character = character or Character()
            character.snap_skin = snap_skin
            return everything(character)

        snap.input(set_snap, [snap, state], every_output, concurrency_id="creator")

        def reset_edits(character):
            character = character or Character()
            character.edits.clear()
            return everything(character)

        reset.click(reset_edits, [state], every_output, concurrency_id="creator")

        def move(name, value, character):
            character = character or Character()
            character.edit(name, value)
            return [*character_files(character), character]

        for parameter, slider in zip(laid_out, sliders):
            slider.input(
                partial(move, parameter.name),
                [slider, state],
                [*character_outputs, state],
                trigger_mode="always_last",
                show_progress="hidden",
                concurrency_id="creator",
            )
    return page


def serve(page, port: int, block: bool = True) -> str:
    """Run the page on 127.0.0.1:`port` (nothing fetched from the internet); its URL. Blocks until stopped unless
    `block` is False."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no version check or telemetry call at launch
    page.queue(default_concurrency_limit=1)
    page.launch(
        server_name="127.0.0.1",
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        max_file_size=MAX_PHOTO_BYTES,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        footer_links=[],
        quiet=True,
        css=CSS,
    )
    return page.local_url
