"""`vlmembed`: one command line for the whole tool.

Each subcommand lives in its own module in this package and exposes `COMMAND`; the
modules are discovered, so adding a subcommand is adding a file. Heavy imports happen
inside each command's `run`, which keeps `vlmembed --help` fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("vlmembed")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: ...)" only where the help text does not already name the default, and
    not for flags and options whose default is "not given"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action) or text


# Libraries whose chatter ("You are using a model of type ...", weight-loading reports) is
# noise at the command line; --verbose lets it through.
NOISY_LIBRARIES = ("transformers", "huggingface_hub", "peft", "accelerate")


def quiet_libraries(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.ERROR
    if not verbose:  # read by transformers when it is first imported
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(level)


def _commands() -> list[Command]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "COMMAND", None)
        if isinstance(command, Command):
            found.append(command)
    return sorted(found, key=lambda c: c.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vlmembed",
        description="Compare multimodal embedding models made from diffusion and autoregressive VLMs.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and the libraries' own messages (transformers, peft ...)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _commands():
        p = sub.add_parser(command.name, help=command.help, description=command.description or command.help,
                           formatter_class=HelpFormatter)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    quiet_libraries(args.verbose)
    try:
        return int(args._run(args) or 0)
    except Exception as exc:
        # Errors meant for the user (bad input, missing store ...) print as one message.
        if isinstance(exc, UserError) or getattr(exc, "user_facing", False):
            print(f"vlmembed {args.command}: {exc}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
