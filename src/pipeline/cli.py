"""What the stages' command lines share."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys

from pipeline.errors import InputError


class Parser(argparse.ArgumentParser):
    """An argparse parser that also keeps in public what the project's checks read of it and
    argparse keeps private: `commands` ({name: parser} of the commands added to it) and
    `single_value_options` ((option strings, default) of each option that takes one value: not
    the flags, which a command line sets or not, nor the repeatable ones, lists to fill)."""

    def __init__(self, *args, **kwargs) -> None:
        self.commands: dict[str, Parser] = {}
        self.single_value_options: list[tuple[list[str], object]] = []
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.option_strings and action.nargs != 0 and kwargs.get("action") not in ("append", "extend"):
            self.single_value_options.append((list(action.option_strings), action.default))
        return action

    def add_subparsers(self, **kwargs) -> argparse.Action:
        action = super().add_subparsers(**kwargs)
        self.commands = action.choices  # filled as each command's parser is added
        return action


def command_parser(prog: str, description: str | None) -> tuple[Parser, argparse.Action]:
    """An entry point's parser (its module docstring as the description, layout kept) and
    the subparsers its commands are added to."""
    parser = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser, parser.add_subparsers(dest="command", required=True)


def parse_pair(item: str, option: str, key: str = "KEY", keys: tuple[str, ...] | None = None) -> tuple[str, str]:
    """`KEY=PATH` of a repeatable option, split; an error naming the option when it is not one
    (or when its key is not one of `keys`)."""
    name, sep, path = item.partition("=")
    if not sep or not name or not path or (keys is not None and name not in keys):
        expected = " or ".join(f"{k}=PATH" for k in keys) if keys else f"{key}=PATH"
        raise InputError(f"{option} expects {expected}, got {item!r}")
    return name, path


def settings_from(cls: type, args: argparse.Namespace, **given: object) -> object:
    """An instance of the settings dataclass `cls`: each field from the parsed option of its
    name (a list as a tuple), or from `given` where the options hold it under another name or
    in another form; a field that neither names keeps its default."""
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = set(given) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    values = {}
    for name in names:
        if name in given:
            values[name] = given[name]
        elif hasattr(args, name):
            value = getattr(args, name)
            values[name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def pixel_box(text: str) -> tuple[float, float, float, float]:
    """An argument type: a box x0,y0,x1,y1 in image pixels."""
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x0,y0,x1,y1 in pixels, got {text!r}") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise argparse.ArgumentTypeError(f"x0,y0,x1,y1 must be numbers of pixels, got {text!r}")
    if x1 <= x0 or y1 <= y0:
        raise argparse.ArgumentTypeError(f"an empty box: {text!r}")
    return x0, y0, x1, y1


def focal_length(text: str) -> float:
    """An argument type: a focal length in pixels."""
    try:
        focal = float(text)
    except ValueError:
        focal = math.nan
    if not 0 < focal < math.inf:
        raise argparse.ArgumentTypeError(f"a focal length is a positive number of pixels, got {text!r}")
    return focal


def positive_int(text: str) -> int:
    """An argument type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """`--device` and `--threads`, for commands that run networks."""
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen command (`func`), logging to stderr; a bad
    input ends it with one clear line naming the file or key, not a traceback."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        args.func(args)
    except InputError as error:
        sys.exit(f"error: {error}")
