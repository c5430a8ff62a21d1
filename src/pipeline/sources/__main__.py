"""Real data sources: download, unpack, and turn CMU's motion capture into SMPL motions.

python -m pipeline.sources download --url URL --out FILE [--sha256 HEX] [--md5 HEX] [--size BYTES]
                                   [--credentials SURREAL]
python -m pipeline.sources extract --archive FILE --out FOLDER
python -m pipeline.sources cmu --folder FOLDER --split test --test-subjects 01 02 --out FILE
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli import command_parser, run_command
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.sources")


def download(args: argparse.Namespace) -> None:
    from pipeline.listing import sha256_of
    from pipeline.sources.download import download as fetch
    from pipeline.sources.download import find_credentials, redact_url

    url = redact_url(args.url)  # what is shown and tracked: never a password the URL carries
    credentials = find_credentials(args.url, args.credentials) if args.credentials else None
    if args.credentials and credentials is None:
        raise InputError(
            f"{url}: needs credentials: set {args.credentials}_USERNAME and "
            f"{args.credentials}_PASSWORD, or add the host to ~/.netrc"
        )
    params = {"url": url, "sha256": args.sha256, "md5": args.md5, "size": args.size}
    with stage_run("sources_download", params, args.rule, parse_wildcards(args.wildcard)) as run:
        path = fetch(
            args.url,
            args.out,
            sha256=args.sha256,
            md5=args.md5,
            size=args.size,
            credentials=credentials,
            retries=args.retries,
            timeout=args.timeout,
        )
        run.log_metrics({"bytes": path.stat().st_size})
        run.set_tags({"pipeline.sha256": sha256_of(path)})


def extract(args: argparse.Namespace) -> None:
    from pipeline.sources.download import extract as unpack

    with stage_run("sources_extract", {"archive": str(args.archive)}, args.rule, parse_wildcards(args.wildcard)) as run:
        target = unpack(args.archive, args.out)
        run.log_metrics({"files": sum(1 for p in target.rglob("*") if p.is_file())})


def cmu(args: argparse.Namespace) -> None:
    from pipeline.sources.cmu import convert_folder
    from pipeline.synthesis.motion import save_motions

    params = {"folder": str(args.folder), "split": args.split, "test_subjects": args.test_subjects}
    with stage_run("sources_cmu", params, args.rule, parse_wildcards(args.wildcard)) as run:
        motions = convert_folder(args.folder)
        held_out = set(args.test_subjects)
        chosen = [m for m in motions if (m.name.split("_")[0] in held_out) == (args.split != "train")]
        if not chosen:
            raise InputError(f"{args.folder}: no motion for split {args.split!r}")
        save_motions(args.out, chosen)
        run.log_metrics({"motions": len(chosen), "frames": sum(len(m) for m in chosen)})
        log.info("%d CMU motions for %s", len(chosen), args.split)


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.sources", __doc__)

    p = commands.add_parser("download", help="fetch a file: resumable, verified, retried")
    p.add_argument("--url", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--sha256", help="expected SHA-256 (hex)")
    p.add_argument("--md5", help="expected MD5 (hex), where the publisher gives no SHA-256")
    p.add_argument("--size", type=int, help="expected size in bytes")
    p.add_argument(
        "--credentials", metavar="PREFIX", help="HTTP basic auth from PREFIX_USERNAME/PREFIX_PASSWORD or ~/.netrc"
    )
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry")
    add_tracking_arguments(p)
    p.set_defaults(func=download)

    p = commands.add_parser("extract", help="unpack a zip or tar archive safely")
    p.add_argument("--archive", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    add_tracking_arguments(p)
    p.set_defaults(func=extract)

    p = commands.add_parser("cmu", help="CMU ASF/AMC motion capture as SMPL motions")
    p.add_argument("--folder", required=True, type=Path, help="unpacked CMU database (subject folders)")
    p.add_argument("--split", required=True)
    p.add_argument("--test-subjects", nargs="*", default=[], help="subjects held out for the test split")
    p.add_argument("--out", required=True, type=Path)
    add_tracking_arguments(p)
    p.set_defaults(func=cmu)

    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
