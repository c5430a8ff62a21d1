"""A trained BodyNet on your own images: the body out, as numbers, meshes and pictures.

    python -m pipeline.predict photo.jpg more/*.png --model results/bodynet/end_to_end_fvsv/model.pt \\
        --body-model resources/body_models/anny/smpl_neutral.pkl --out predictions/ \\
        [--box x0,y0,x1,y1 | --boxes boxes.csv] [--focal 1200]

Per image, in --out: <name>.json (the person's box and what found it, 2D joints in pixels, 3D
joints in camera metres, the fitted body's pose, shape and translation, each network's
confidence), <name>_body.obj (the fitted body), <name>_voxels.obj (the predicted voxels'
surface), <name>_parts.png (the predicted parts), <name>_overlay.png (the body over the
image) and <name>_views.png (the body as seen, and turned 90° and 180°), and with a model
that holds the part voxel network (e.g. results/bodynet/part_voxels_fvsv/model.pt)
<name>_part_voxels.obj (a group per body part); and summary.csv, a row per image. The
person is the given box, else, among OpenCV's HOG people detections and square windows over
the image at four scales, the one whose crop the 2D-pose network is surest of; without a given
box the crop is cut again on the networks' own view of the person (their segmentation, then
their 2D joints), as training cropped. A body that reaches the image's edge is cut off by the
frame: it is fitted all the same, with a warning and whole_body false. The body fit's options left
out (--joint-steps, --fit-steps, ...) take the values of the project's config.yaml
(`evaluation.fit`).

An image is refused, named, when it is truncated or corrupt, or smaller than 32 pixels on its
shorter side (too small to hold a person at the networks' input size); a given box partly
outside its image is clipped to it, one wholly outside is refused. An image's files appear
together or not at all, and a --out folder that cannot be written is named.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
from pathlib import Path

from pipeline.cli import Parser, add_device_arguments, focal_length, pixel_box, positive_int, run_command
from pipeline.errors import InputError
from pipeline.fitting.options import add_fit_arguments
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.predict")

# the shorter side below which an image cannot hold a person: the networks would see it
# enlarged from a few pixels
MIN_IMAGE_SIDE = 32


def read_boxes(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """{image file name: its person's box} from a CSV with the columns image, x0, y0, x1, y1
    (pixels), or an InputError naming the file and line."""
    try:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: not a readable CSV of boxes ({error})") from error
    columns = ("image", "x0", "y0", "x1", "y1")
    if not rows or any(column not in rows[0] for column in columns):
        raise InputError(f"{path}: needs a header with the columns {', '.join(columns)} and a row per image")
    boxes = {}
    for line, row in enumerate(rows, start=2):
        try:
            boxes[Path(row["image"]).name] = pixel_box(",".join(row[c] or "" for c in columns[1:]))
        except argparse.ArgumentTypeError as error:
            raise InputError(f"{path}, line {line}: {error}") from None
    return boxes


def read_image(path: Path):
    """An image file as RGB uint8 (H, W, 3), or an InputError naming it when it is truncated,
    corrupt or too small to hold a person (under MIN_IMAGE_SIDE pixels on its shorter side)."""
    from pipeline.images import read_rgb

    image = read_rgb(path)
    height, width = image.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise InputError(
            f"{path}: {width}×{height} pixels, too small to hold a person "
            f"(at least {MIN_IMAGE_SIDE} pixels on the shorter side)"
        )
    return image


def box_in_image(path: Path, image, box: tuple | None, given_by: str) -> tuple | None:
    """`box` (x0, y0, x1, y1 pixels) clipped to the image (H, W, 3), or an InputError naming the
    image and the box (and `given_by`: --box or the CSV) when no part of it lies inside."""
    if box is None:
        return None
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))
    if x1 <= x0 or y1 <= y0:
        text = ",".join(f"{v:g}" for v in box)
        raise InputError(f"{path}: the box {text} ({given_by}) lies outside the {width}×{height} image")
    return x0, y0, x1, y1


def predict(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from tqdm import tqdm

    from pipeline.atomic import atomic_output
    from pipeline.body_model.model import BodyModel
    from pipeline.fitting.options import fit_params, fit_settings
    from pipeline.models.bodynet import BodyNetConfig
    from pipeline.models.checkpoint import build_model, load_checkpoint
    from pipeline.predict.body import predict_bodies
    from pipeline.predict.write import check_writable, write_prediction, writing_into
    from pipeline.training.loop import pick_device

    if args.box and len(args.images) != 1:
        raise InputError(f"--box gives one person's box: give one image, not {len(args.images)}")
    if args.box and args.boxes:
        raise InputError("give --box (one image) or --boxes (a CSV), not both")
    listed = read_boxes(args.boxes) if args.boxes else {}
    boxes = [args.box] * len(args.images) if args.box else [listed.get(path.name) for path in args.images]
    names = [path.stem for path in args.images]
    if len(set(names)) != len(names):
        raise InputError("two images share a name; their outputs would overwrite each other")
    images = [read_image(path) for path in args.images]
    given_by = "--box" if args.box else str(args.boxes)
    boxes = [box_in_image(path, image, box, given_by) for path, image, box in zip(args.images, images, boxes)]
    check_writable(args.out)
    checkpoint = load_checkpoint(args.model)
    missing = {"pose2d", "segm", "pose3d", "voxels"} - set(checkpoint["state"])
    if missing:
        raise InputError(
            f"{args.model}: holds no trained {', '.join(sorted(missing))}: give a voxel or end-to-end stage"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    network = build_model(BodyNetConfig(**checkpoint["config"]), [args.model]).to(pick_device(args.device)).eval()
    model = BodyModel.from_file(args.body_model).float()
    settings = fit_settings(args, required=False)
    params = {"images": len(images), "model": str(args.model), "body_model": str(args.body_model), "focal": args.focal}
    params["fit"] = fit_params(settings, args)
    rows = []
    with stage_run("predict", params, args.rule, parse_wildcards(args.wildcard)) as run:
        for start in tqdm(range(0, len(images), args.batch_size), desc="images", unit="batch"):
            chunk = slice(start, start + args.batch_size)
            count = len(images[chunk])
            predictions = predict_bodies(network, model, images[chunk], boxes[chunk], [args.focal] * count, settings)
            for path, name, image, prediction in zip(args.images[chunk], names[chunk], images[chunk], predictions):
                data = write_prediction(args.out, name, image, prediction, model, str(args.body_model))
                if not prediction.whole_body:
                    log.warning(
                        "%s: the person is cut off by the image's edge; BodyNet is trained on whole bodies, "
                        "so the body's hidden parts are guessed (whole_body: false in %s.json)",
                        path,
                        name,
                    )
                confidence = {f"confidence_{key}": round(value, 4) for key, value in data["confidence"].items()}
                rows.append(
                    {
                        "image": str(path),
                        "found_by": data["person_found_by"],
                        "whole_body": data["whole_body"],
                        "root_depth": round(data["root_depth"], 4),
                        "focal_length": data["focal_length"],
                        "height_m": round(float(np.ptp(prediction.vertices[:, 1])), 4),
                        **confidence,
                    }
                )
        run.log_metrics({"images": len(rows)})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    with writing_into(args.out), atomic_output(args.out / "summary.csv") as tmp:
        tmp.write_text(text.getvalue())
    log.info("%d images: %s", len(rows), args.out)


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser."""
    parser = Parser(
        prog="python -m pipeline.predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "images",
        nargs="+",
        type=Path,
        help=f"image files (JPEG, PNG, BMP, WebP or TIFF), each at least {MIN_IMAGE_SIDE} pixels on the shorter side",
    )
    parser.add_argument("--model", required=True, type=Path, help="a BodyNet checkpoint with a voxel network")
    parser.add_argument("--body-model", required=True, type=Path, help="the SMPL-format body model to fit")
    parser.add_argument("--out", required=True, type=Path, help="the folder the outputs go to")
    parser.add_argument(
        "--box",
        type=pixel_box,
        help="the person's box x0,y0,x1,y1 in pixels (one image; --box=-5,0,90,200 where it starts with a minus); "
        "a box partly outside the image is clipped to the image, one wholly outside it is refused",
    )
    parser.add_argument(
        "--boxes",
        type=Path,
        help="a CSV of the people's boxes (columns image, x0, y0, x1, y1; image: the file's name), clipped "
        "as --box is; an image it does not list has its person found",
    )
    parser.add_argument(
        "--focal",
        type=focal_length,
        help="the focal length in pixels, above 0 (default: the image's longer side, a 53° view)",
    )
    add_fit_arguments(parser)  # left out: the fitting library's own settings
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images fitted together (1 or more)")
    add_device_arguments(parser)
    add_tracking_arguments(parser)
    parser.set_defaults(func=predict)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
