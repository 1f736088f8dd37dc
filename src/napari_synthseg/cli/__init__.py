"""The ``synthseg`` command line: batch and headless work over the same core as the widgets.

One module per group of commands (``bank_commands``: autoseg, synth; ``train_commands``: train,
retrain; ``predict_commands``: predict, evaluate; ``measure_commands``: measure; ``run_commands``:
run, demo), the options they share in ``options`` and ``batch``, the checks and exit statuses in
``checks``, progress bars and Ctrl-C in ``progress``. Each module adds its commands' parsers
(``add_*_parser``); ``main`` parses and runs one command.
"""

from __future__ import annotations

import argparse
import sys
import threading
import traceback
from collections.abc import Sequence

from .bank_commands import add_autoseg_parser, add_synth_parser
from .checks import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, CommandError, _one_line, _Parser
from .measure_commands import add_measure_parser
from .options import _autoseg_params
from .predict_commands import add_evaluate_parser, add_predict_parser
from .run_commands import add_demo_parser, add_run_parser
from .train_commands import add_retrain_parser, add_train_parser

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "CommandError", "_autoseg_params", "build_parser",
           "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``synthseg`` parser: one subcommand per ``add_*_parser``, in the order of the job."""
    parser = _Parser(
        prog="synthseg",
        description="Segment EM images without hand-drawn masks: auto-segment, object bank, synthetic "
                    "scenes, U-Net training, full-resolution segmentation.",
        epilog="Errors are one line; exit status 2: bad usage or input (nothing done), 1: some files failed, "
               "130: interrupted (finished outputs kept). Outputs are never replaced unless --overwrite.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in (add_autoseg_parser, add_synth_parser, add_train_parser, add_predict_parser,
                       add_evaluate_parser, add_measure_parser, add_run_parser, add_retrain_parser,
                       add_demo_parser):
        add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``synthseg``; returns the exit status.

    Every failure is one line on stderr naming the problem and the fix (``--debug`` adds the
    traceback); exit 2: bad usage or input, found before any work; 1: some files failed or
    the work itself failed; 130: interrupted (what was finished is kept, and said where).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    args.cancel = threading.Event()
    name = f"synthseg {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        note = getattr(args, "interrupted_note", None) or "outputs already written are complete and kept; " \
            "run the same command again to go on"
        print(f"{name}: interrupted; {note}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one line, whatever went wrong; --debug shows where
        if debug:
            traceback.print_exc()
        status = EXIT_BAD_INPUT if _is_bad_input(exc) else EXIT_FAILED
        hint = "" if debug or status == EXIT_BAD_INPUT else " (run with --debug for the traceback)"
        print(f"{name}: error: {_one_line(exc)}{hint}", file=sys.stderr)
        return status


def _is_bad_input(exc: BaseException) -> bool:
    """Errors found in what the user gave (options, paths, files) before the work: exit 2."""
    from ..image_io import ImageReadError

    return isinstance(exc, (CommandError, ImageReadError, ValueError, FileExistsError, FileNotFoundError,
                            NotADirectoryError, IsADirectoryError))
