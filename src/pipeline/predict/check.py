"""The predict command checked where the truth is known: on the rendered test frames the
evaluation measures, the whole frame in, the body out, its error beside the evaluation's.

    python -m pipeline.predict.check --model results/bodynet/end_to_end_fvsv/model.pt \\
        --samples results/bodynet/samples/test --root results/surreal --split test \\
        --body-model female=F.pkl --body-model male=M.pkl \\
        --evaluation results/evaluation/end_to_end_fvsv/images.csv --batch-size 8 --examples 4 \\
        --out results/predict_check

Each test image's full frame is read from its clip and given to predict twice: with the
evaluation's crop as the person's box (the same network input: what differs is only predict's
own depth estimate and fit), and with no box (the person found by predict itself: `found`). Both bodies are
measured as the evaluation measures its own: the surface error (mm) after the fitted body is
moved and scaled into the true body's box, and the root-centred 3D joint error (mm); with how
far predict's crop lies from the evaluation's (centre offset over the side, side ratio).

images.csv has a row per image and person-finding; summary.json each one's mean with a 95 %
bootstrap interval, the evaluation's on the same images, and the paired interval of the
difference (predict − evaluation): `no worse` when it reaches zero or below, else `worse`;
gallery.png (with --examples) the first images' frames with the body found without a box drawn
over them and that body from three sides (as seen, turned 90° and 180°).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.atomic import atomic_output
from pipeline.cli import Parser, add_device_arguments, run_command
from pipeline.clips import Clip, find_clips
from pipeline.errors import InputError
from pipeline.evaluation.frames import PELVIS, place_in_true_box, true_body_camera
from pipeline.evaluation.measures import surface_error_mm
from pipeline.evaluation.network import GENDERS, body_models, check_genders
from pipeline.evaluation.statistics import Figure, evaluate, interval, resample_counts
from pipeline.fitting.options import add_fit_arguments, fit_params, fit_settings
from pipeline.predict.body import box_of_crop, predict_bodies
from pipeline.predict.write import overlay, turntable
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.predict.check")

FINDERS = ("evaluation_crop", "found")
MEASURES = ("surface_error_mm", "joint_error_mm")


def whole_frames(samples, root: Path, split: str, count: int) -> list[np.ndarray]:
    """The full rendered frame (H, W, 3) uint8 of the first `count` samples, read from their clips."""
    a = samples.arrays
    clips = {path.name.removesuffix("_info.mat"): path for path in find_clips(root, split)}
    frames, clip = [], None
    for i in range(count):
        stem = str(a["clip_names"][a["clip"][i]])
        if stem not in clips:
            raise InputError(f"{root}/cmu/{split}: no clip {stem}, which the samples were made from")
        if clip is None or clip.stem != stem:
            if clip is not None:
                clip.forget()  # one decoded video in memory at a time
            clip = Clip(clips[stem])
        frames.append(clip.rgb(int(a["frame"][i])))
    return frames


def check_images(
    network, models: dict, samples, frames: list[np.ndarray], settings, batch_size: int, examples: int = 0
) -> tuple[pd.DataFrame, list[tuple]]:
    """A row per test image and person-finding: its surface and 3D joint errors (mm); and
    (frame, prediction, body model) of the first `examples` images, found without a box."""
    a = samples.arrays
    focal = float(a["focal"])
    rows, kept = [], {}
    for finder in FINDERS:
        for code, gender in GENDERS.items():
            chosen = np.flatnonzero(a["gender"][: len(frames)] == code)
            for start in tqdm(range(0, len(chosen), batch_size), desc=f"{finder}, {gender}", unit="batch"):
                indices = chosen[start : start + batch_size]
                boxes = [
                    box_of_crop(a["crop_centre"][i], float(a["crop_side"][i])) if finder == FINDERS[0] else None
                    for i in indices
                ]
                images = [frames[i] for i in indices]
                predictions = predict_bodies(network, models[gender], images, boxes, [focal] * len(indices), settings)
                for i, prediction in zip(indices, predictions):
                    if finder == FINDERS[1] and i < examples:
                        kept[int(i)] = (frames[i], prediction, models[gender])
                    truth, true_joints = true_body_camera(
                        models[gender],
                        a["pose"][i],
                        a["shape"][i],
                        float(a["zrot"][i]),
                        a["joints_camera"][i],
                        a["camera_rotation"][i] if "camera_rotation" in a else None,
                    )
                    placed = place_in_true_box(prediction.vertices.astype(np.float64), truth)
                    surface = surface_error_mm(torch.as_tensor(placed[None]), torch.as_tensor(truth[None]))
                    centred = prediction.joints3d - prediction.joints3d[PELVIS]
                    true_centred = true_joints - true_joints[PELVIS]
                    rows.append(
                        {
                            "image": int(i),
                            "finder": finder,
                            "found_by": prediction.found_by,
                            "gender": gender,
                            # how far the crop predict took is from the evaluation's
                            "crop_offset": float(
                                np.linalg.norm(prediction.crop_centre - a["crop_centre"][i]) / a["crop_side"][i]
                            ),
                            "crop_scale": float(prediction.crop_side / a["crop_side"][i]),
                            "surface_error_mm": float(surface[0]),
                            "joint_error_mm": 1000 * float(np.linalg.norm(centred - true_centred, axis=1).mean()),
                        }
                    )
    return pd.DataFrame(rows).sort_values(["finder", "image"], ignore_index=True), [kept[i] for i in sorted(kept)]


def gallery(examples: list[tuple], height: int = 256) -> np.ndarray:
    """A row per example (RGB uint8): the frame with the predicted body drawn over it, then
    the body as seen, and turned 90° and 180°."""
    rows = []
    for frame, prediction, model in examples:
        drawn = overlay(frame, prediction, model)
        width = round(drawn.shape[1] * height / drawn.shape[0])
        rows.append(np.concatenate([cv2.resize(drawn, (width, height)), turntable(prediction, model, height)], axis=1))
    widest = max(row.shape[1] for row in rows)
    return np.concatenate(
        [np.pad(row, ((0, 4), (0, widest - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    )


def summarise(images: pd.DataFrame, evaluation: pd.DataFrame) -> dict:
    """Each finder's means with intervals, the evaluation's on the same images, and the paired
    difference's interval and verdict."""
    own = evaluation.set_index("image")
    counts = None
    summary = {}
    for finder, rows in images.groupby("finder", sort=False):
        rows = rows.set_index("image")
        if not set(rows.index) <= set(own.index):
            raise InputError(f"the evaluation lacks test images {sorted(set(rows.index) - set(own.index))[:5]}")
        if counts is None:
            counts = resample_counts(len(rows))
        paired = pd.DataFrame(
            {
                "predict": rows["surface_error_mm"],
                "evaluation": own.loc[rows.index, "surface_error_mm"],
                "joint": rows["joint_error_mm"],
                "evaluation_joint": own.loc[rows.index, "joint_error_mm"],
            }
        )
        paired["difference"] = paired["predict"] - paired["evaluation"]
        entry = {"images": len(rows), "found_by": rows["found_by"].value_counts().to_dict()}
        if "crop_offset" in rows:
            entry["median_crop_offset"] = round(float(rows["crop_offset"].median()), 3)
            entry["median_crop_scale"] = round(float(rows["crop_scale"].median()), 3)
        for name, column in (
            ("surface_error_mm", "predict"),
            ("evaluation_surface_error_mm", "evaluation"),
            ("difference_mm", "difference"),
            ("joint_error_mm", "joint"),
            ("evaluation_joint_error_mm", "evaluation_joint"),
        ):
            figure = Figure("mean", (column,))
            entry[name] = round(float(evaluate(figure, paired)), 2)
            entry[f"{name}_interval"] = [round(v, 2) for v in interval(evaluate(figure, paired, counts))]
        entry["verdict"] = "no worse" if entry["difference_mm_interval"][0] <= 0 else "worse"
        summary[finder] = entry
    return summary


def check(args: argparse.Namespace) -> None:
    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.models.checkpoint import build_model, load_checkpoint
    from pipeline.training.loop import pick_device
    from pipeline.training.samples import SampleSet

    models = body_models(args.body_model)
    samples = SampleSet.load(args.samples)
    count = min(len(samples), args.images) if args.images else len(samples)
    check_genders(samples, models, args.samples, count)
    try:
        evaluation = pd.read_csv(args.evaluation)
    except (OSError, pd.errors.ParserError) as error:
        raise InputError(f"{args.evaluation}: not a readable evaluation images.csv ({error})") from error
    if not {"image", *MEASURES} <= set(evaluation.columns):
        raise InputError(f"{args.evaluation}: lacks the columns image, {', '.join(MEASURES)}")
    checkpoint = load_checkpoint(args.model)
    if args.threads:
        torch.set_num_threads(args.threads)
    network = build_model(BodyNetConfig(**checkpoint["config"]), [args.model]).to(pick_device(args.device)).eval()
    settings = fit_settings(args, required=False)
    frames = whole_frames(samples, args.root, args.split, count)
    params = {
        "model": str(args.model),
        "samples": str(args.samples),
        "images": count,
        "fit": fit_params(settings, args),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with stage_run("predict_check", params, args.rule, parse_wildcards(args.wildcard)) as run:
        images, examples = check_images(network, models, samples, frames, settings, args.batch_size, args.examples)
        summary = summarise(images, evaluation)
        if examples:
            with atomic_output(args.out / "gallery.png") as tmp:
                if not cv2.imwrite(str(tmp), np.ascontiguousarray(gallery(examples)[..., ::-1])):
                    raise OSError(f"{args.out / 'gallery.png'}: could not write the image")
            run.log_artifact(args.out / "gallery.png")
        with atomic_output(args.out / "images.csv") as tmp:
            images.to_csv(tmp, index=False, float_format="%.6g")
        with atomic_output(args.out / "summary.json") as tmp:
            tmp.write_text(json.dumps({"model": str(args.model), "finders": summary}, indent=2) + "\n")
        run.log_metrics(
            {
                f"{finder}_{key}": value
                for finder, entry in summary.items()
                for key, value in entry.items()
                if isinstance(value, float)
            }
        )
    for finder, entry in summary.items():
        log.info(
            "%s: surface %.1f mm (evaluation %.1f), difference %s: %s",
            finder,
            entry["surface_error_mm"],
            entry["evaluation_surface_error_mm"],
            entry["difference_mm_interval"],
            entry["verdict"],
        )


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser."""
    parser = Parser(
        prog="python -m pipeline.predict.check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, type=Path, help="the BodyNet checkpoint the evaluation measured")
    parser.add_argument("--samples", required=True, type=Path, help="the test samples the evaluation measured")
    parser.add_argument("--root", required=True, type=Path, help="root of the SURREAL layout the clips are in")
    parser.add_argument("--split", required=True, help="the split the samples were made of")
    parser.add_argument("--body-model", action="append", default=[], help="GENDER=PATH, for each gender")
    parser.add_argument("--evaluation", required=True, type=Path, help="the evaluation's images.csv of the model")
    parser.add_argument("--out", required=True, type=Path, help="folder for images.csv and summary.json")
    parser.add_argument("--images", type=int, default=0, help="the first N test images only (0: all)")
    parser.add_argument("--batch-size", type=int, required=True, help="images fitted together")
    parser.add_argument("--examples", type=int, required=True, help="the first N images in gallery.png (0: none)")
    add_fit_arguments(parser)
    add_device_arguments(parser)
    add_tracking_arguments(parser)
    parser.set_defaults(func=check)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
