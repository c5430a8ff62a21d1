"""Errors about bad inputs (config, data or model files): each names the file or key."""


class InputError(ValueError):
    """An input that is missing, unreadable or malformed; the message names it."""


def run_command(parser, argv=None) -> None:
    """Parse the command line and run the chosen command (`func`), logging to stderr; a bad
    input ends it with one clear line naming the file or key, not a traceback."""
    import logging
    import sys

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        args.func(args)
    except InputError as error:
        sys.exit(f"error: {error}")
