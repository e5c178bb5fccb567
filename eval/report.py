"""A verification report as Markdown: the Table-3-style table, the paper's rows, the benchmarks and recovery."""

from __future__ import annotations

from eval.recovery import verdict_line

PROTOCOL = (
    "3DMM-CNN: 10 folds; PCA on the training folds (no reduction), signed sqrt, cosine, best training-fold threshold"
)
COLUMNS = {"lfw": "LFW", "cfp_ff": "CFP_FF", "cfp_fp": "CFP_FP", "agedb": "AgeDB", "synthetic": "synthetic"}
# The paper's numbers for reference (Table 3; Table 6 for the masks).
PAPER = {
    None: {
        "Ours": [0.9480, 0.9434, 0.8317, 0.8702, 0.8983],
        "LightCNN-29v2 (upper bound)": [0.9958, 0.9940, 0.9494, 0.9597, 0.9747],
    },
    "upper": {"Ours, upper face masked": [0.9080, 0.9114, 0.7563, 0.8135, 0.8473]},
    "middle": {"Ours, middle face masked": [0.9050, 0.9139, 0.7441, 0.8178, 0.8452]},
    "lower": {"Ours, lower face masked": [0.9120, 0.9196, 0.7537, 0.8423, 0.8569]},
}


def markdown(report: dict) -> str:
    """The report as a Table-3-style Markdown table, the paper's rows, benchmarks and recovery."""
    benches = list(report["benchmarks"])
    head = [COLUMNS[b] for b in benches] + [
        "Mean",
        "images/s",
        "likeness (F_id cosine photo vs engine render)",
        "imitator vs engine PSNR (dB)",
    ]
    lines = [
        f"# Face verification ({report['protocol']})",
        "",
        f"Image size {report['image_size']} px, mask: {report['mask'] or 'none'}, device: {report['device']}, "
        f"{report['created']}.",
        "",
        "| descriptor | " + " | ".join(head) + " |",
        "|---" * (len(head) + 1) + "|",
    ]
    for name, row in report["results"].items():
        cells = [f"{row[b]['accuracy']:.4f} ± {row[b]['std']:.4f}" for b in benches]
        cells += [f"{row['mean']:.4f}", f"{row['images_per_second']:.0f}"]
        cells += [
            f"{row['likeness']:.3f}" if "likeness" in row else "-",
            f"{row['imitator_vs_engine_psnr_db']:.1f}" if "imitator_vs_engine_psnr_db" in row else "-",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, reason in report["skipped"].items():
        lines.append(f"| {name} | skipped: {reason} |")
    likeness = report.get("likeness", {})
    if likeness.get("images"):
        used = ", ".join(f"{n} of {COLUMNS[b]}" for b, n in likeness["images"].items())
        gap = (
            "through" if any("imitator_vs_engine_psnr_db" in r for r in report["results"].values()) else "not measured:"
        )
        lines += [
            "",
            f"Likeness (rows that regress game parameters; '-' for the others): the {report['face_id']} "
            f"F_id cosine between each photo (unmasked) and the game engine's render of the parameters "
            f"regressed from it, the character the player actually gets, on "
            f"{sum(likeness['images'].values())} images ({used}), evenly spread over each benchmark. "
            f"Imitator vs engine PSNR {gap} {likeness['imitator']}.",
        ]
    elif likeness.get("skipped"):
        lines += ["", f"Likeness of the engine's character not measured: {likeness['skipped']}."]
    lines += [
        "",
        "Paper (Table 3, Table 6 for masks; GTX 1080Ti, ~10^3 images/s):",
        "",
        "| paper row | LFW | CFP_FF | CFP_FP | AgeDB | Mean |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | " + " | ".join(f"{v:.4f}" for v in values) + " |" for n, values in PAPER[report["mask"]].items()
    ]
    lines += ["", "## Benchmarks", ""]
    lines += [
        f"- **{b}**: {s['pairs']} pairs ({s['same']} same), {s['images']} images, {s['folds']} folds; {s['alignment']}"
        for b, s in report["benchmarks"].items()
    ]
    for name, per_bench in report["recovery"].items():
        for bench, r in per_bench.items():
            lines += [
                "",
                f"## Parameter recovery: {name} on {bench}",
                "",
                f"RMSE {r['rmse']:.4f} (predicting 0 everywhere: {r['rmse_predicting_zero']:.4f}); {verdict_line(r)}",
                "",
                "| group | RMSE |",
                "|---|---|",
            ]
            lines += [f"| {g} | {v:.4f} |" for g, v in r["groups"].items()]
            if "visibility_quartiles" in r:
                zero = r["visibility_quartiles_predicting_zero"]
                lines += [
                    "",
                    "| visibility quartile (Q1 least, Q4 most visible) | RMSE | predicting 0 |",
                    "|---|---|---|",
                ]
                lines += [f"| {q} | {v:.4f} | {zero[q]:.4f} |" for q, v in r["visibility_quartiles"].items()]
                lines += [
                    "",
                    f"Spearman correlation of visibility and per-parameter RMSE: "
                    f"{r['spearman_visibility_vs_rmse']:.3f}",
                ]
                v = r["visible"]
                lines += [
                    "",
                    f"Visible parameters (one unit moves a 256 px screenshot by >= "
                    f"{v['threshold_grey_levels']:g} grey level on average): RMSE {v['rmse']:.4f}, "
                    f"predicting 0: {v['rmse_predicting_zero']:.4f}, mean correlation with the truth "
                    f"{v['correlation_mean']:.3f} (0 for any constant); {verdict_line(v)}",
                    "",
                    "| visible parameter | RMSE | predicting 0 | correlation |",
                    "|---|---|---|---|",
                ]
                lines += [
                    f"| {name} | {x['rmse']:.4f} | {x['rmse_predicting_zero']:.4f} | {x['correlation']:.3f} |"
                    for name, x in v["parameters"].items()
                ]
    return "\n".join(lines) + "\n"
