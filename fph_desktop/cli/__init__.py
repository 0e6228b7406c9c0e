"""The ``fph-desktop`` command: the app when run bare, headless subcommands otherwise.

Every subcommand drives the same Qt-free core as the GUI. ``main`` is the one place failures become
what a user sees: a :class:`~fph_desktop.errors.UserError` is one line and its exit code; anything
else is a bug, reported in one line with the path of a crash report (never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import __version__
from ..errors import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER,
    MissingDependencyError,
    StorageError,
    UserError,
    display_path,
    exit_code_for,
    message_for,
    storage_error,
)

SUBCOMMANDS = ("train", "eval", "encode", "export-graph", "index", "search", "groups")

EXIT_CODES_HELP = """exit codes:
  0    done
  1    done, but some query photos failed (each is named on stderr)
  2    a bad argument, file, folder, model or index; nothing was changed
  3    the folder is offline (drive not connected); its index is kept
  4    the disk is full or read-only; everything saved before is intact
  70   an internal error (a bug); a crash report was written
  130  interrupted; finished work is kept, run the same command to continue"""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (the command, what is wrong, where help is)."""

    def error(self, message: str):
        self.exit(EXIT_USER, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from .groups import add_groups_parser
    from .index import add_index_parser, add_search_parser
    from .train import add_encode_parser, add_eval_parser, add_export_parser, add_train_parser

    parser = _Parser(
        prog="fph-desktop",
        description="Find fine-grained look-alikes in your photo folders. Without a subcommand, opens the app.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fph-desktop {__version__}")
    subparsers = parser.add_subparsers(title="headless commands", metavar="COMMAND", dest="command")
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    add_encode_parser(subparsers)
    add_export_parser(subparsers)
    add_index_parser(subparsers)
    add_search_parser(subparsers)
    add_groups_parser(subparsers)
    return parser


def photos_for_the_app(argv: list[str]) -> list[str] | None:
    """``fph-desktop PHOTO…`` opens the app and searches with them; None when argv is a command."""
    if not argv or argv[0] in SUBCOMMANDS or argv[0].startswith("-"):
        return None
    return argv if all(Path(a).exists() for a in argv) else None


def _error(text: str) -> None:
    print(f"fph-desktop: error: {text}", file=sys.stderr, flush=True)


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    """Run a parsed subcommand and turn whatever it raises into one line and an exit code."""
    from ..progress import Cancelled

    try:
        return int(args.func(args) or EXIT_OK)
    except UserError as exc:
        _error(str(exc))
        return exc.exit_code
    except (KeyboardInterrupt, Cancelled):
        _error("interrupted; finished work is kept; run the same command again to continue")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes a report, not a traceback
        if isinstance(exc, ModuleNotFoundError) and exc.name in ("torch", "torchvision"):
            # The search-only edition leaves PyTorch out: what needs it says so, as any missing extra does.
            missing = MissingDependencyError(
                "PyTorch", f"`fph-desktop {args.command}`", "torch torchvision",
                "index and search with a model graph (`fph-desktop export-graph MODEL.fph` in a full install)",
            )  # fmt: skip
            _error(str(missing))
            return missing.exit_code
        if isinstance(exc, OSError) and exc.filename:
            # A write the core did not wrap: a full or read-only disk is still not a bug.
            found = storage_error(exc, exc.filename, "writing")
            if isinstance(found, StorageError):
                _error(str(found))
                return found.exit_code
        _error(message_for(exc, context="fph-desktop " + " ".join(display_path(a) for a in argv)))
        return exit_code_for(exc)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    photos = photos_for_the_app(argv)
    if not argv or photos:
        # The app first: building the parser imports the model registry (torch), which the window
        # must not wait for.
        try:
            from ..gui.app import run_app
        except ImportError as exc:
            print(f"fph-desktop: the desktop app cannot start ({exc}); the headless commands still work:", file=sys.stderr)
            build_parser().print_help()
            return EXIT_USER
        return run_app(queries=photos)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USER
    return run_command(args, argv)


__all__ = ["main", "build_parser", "photos_for_the_app", "run_command", "SUBCOMMANDS", "EXIT_BUG"]
