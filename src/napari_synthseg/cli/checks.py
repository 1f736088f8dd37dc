"""What every command checks before any work, and how a problem is reported: one line, an exit status."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

#: Exit statuses: some files failed (the others are done), bad usage or input (nothing was
#: done), interrupted (Ctrl-C; what was finished is kept).
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A problem with the user's input, reported as one line and a non-zero exit."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (the usage itself is in --help)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CommandError(message)


def _check_seed(args: argparse.Namespace) -> None:
    seed = getattr(args, "seed", None)
    _check(seed is None or 0 <= seed < 2**32, f"--seed must be an integer from 0 to {2**32 - 1}, got {seed}")


def _check_box(box) -> None:
    if isinstance(box, tuple):
        y0, y1, x0, x1 = box
        _check(0 <= y0 < y1 and 0 <= x0 < x1,
               f"--ignore-box Y0,Y1,X0,X1 needs 0 <= Y0 < Y1 and 0 <= X0 < X1, got {','.join(map(str, box))}")


def _check_backend() -> None:
    from ..backend import missing_backend_message

    message = missing_backend_message()
    if message:
        raise CommandError(message)


def _check_out_dir(path: str | os.PathLike, option: str) -> Path:
    """An output folder that exists or can be made, and can be written; nothing is created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CommandError(f"{option} {path} is a file; give a folder (existing or new)")
    _check_writable(path, option)
    return path


def _check_writable(path: Path, option: str) -> None:
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise CommandError(f"{option} {path}: {existing} is a file, not a folder; choose another path")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise CommandError(f"{option} {path}: cannot write in {existing} (permission denied); choose a folder of yours")


def _check_model_out(path: str | os.PathLike, option: str, *, overwrite: bool, resume: bool | None = None) -> Path:
    """A model file that may be written: a .keras name, no folder in the way, nothing replaced unasked.

    ``resume`` None: the command cannot resume; True: the model must exist.
    """
    path = Path(path)
    _check(path.suffix == ".keras", f"{option} must end in .keras (Keras 3 format), got {path.name}")
    if path.is_dir():
        raise CommandError(f"{option} {path} is a folder; give a model file name ending in .keras")
    if path.with_suffix(".json").is_dir():
        raise CommandError(f"{option} {path}: the folder {path.with_suffix('.json')} is where its sidecar goes; "
                           "choose another name")
    if resume:
        _check(path.is_file(), f"--resume: there is no model at {path} to continue; train without --resume first")
    elif path.exists() and not overwrite:
        also = ", --resume to continue training it," if resume is not None else ""
        raise CommandError(f"{option} {path} exists; pass --overwrite to replace it{also} or choose another name")
    _check_writable(path.parent, option)
    if path.exists() and not os.access(path, os.W_OK):
        raise CommandError(f"{option} {path} is read-only; choose another name")
    return path


def _check_labels_free(out: Path, stems: Sequence[str], overwrite: bool, option: str) -> None:
    """Refuse to replace existing label files unless --overwrite."""
    if overwrite:
        return
    taken = [f"{stem}_labels.tif" for stem in stems if (out / f"{stem}_labels.tif").exists()]
    if taken:
        shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise CommandError(f"{shown} already exist{'s' if len(taken) == 1 else ''} in {option} {out}; pass "
                           "--overwrite to replace them or choose another folder")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) if str(exc).strip() else ""
    return text or type(exc).__name__
