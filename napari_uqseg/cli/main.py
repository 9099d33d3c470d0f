"""``uqseg`` entry point: builds the parser from one module per subcommand and maps errors to exit
codes.

Each subcommand module defines ``add_parser(subparsers)`` that registers itself and sets ``func``
to a callable taking the parsed namespace and returning an exit code. Modules are imported only
when their subcommand runs (``uqseg --help`` stays fast), so they keep heavy imports inside
``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from napari_uqseg import __version__
from napari_uqseg.errors import InputError

#: Subcommand name -> module under ``napari_uqseg.cli`` implementing it.
COMMANDS: dict[str, str] = {
    "evaluate": "evaluate",
    "predict": "predict",
    "referral": "referral",
    "calibrate": "calibrate",
    "demo": "demo",
    "models": "models",
    "cohort": "cohort",
}

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _one_line(err: BaseException) -> str:
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text or type(err).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uqseg",
        description=(
            "Monte-Carlo-dropout cardiac MRI segmentation, uncertainty maps and referral curves."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(f"napari_uqseg.cli.{module_name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``uqseg``; bad input exits with code 2 and a one-line message on stderr, never a
    traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except (
        InputError,
        FileNotFoundError,
        IsADirectoryError,
        NotADirectoryError,
        FileExistsError,
        PermissionError,
    ) as err:
        print(f"uqseg {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, MemoryError) as err:
        # Not the input's fault (a full disk, a vanished mount): exit 1, still one line.
        print(f"uqseg {args.command}: failed: {_one_line(err)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"uqseg {args.command}: interrupted", file=sys.stderr)
        return 130
