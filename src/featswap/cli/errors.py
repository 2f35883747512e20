"""Every failure a user can cause is one line starting `error:` and exit status 2, never a traceback."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from typer.core import TyperGroup

from featswap.errors import FeatswapError, os_error_advice

#: Exit status of every user-facing failure.
USER_ERROR = 2
#: Exit status after Ctrl-C (SIGINT) and after SIGTERM: 128 + the signal's number, as shells report them.
INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM
#: What an interrupted command leaves.
KEPT = "finished chunks of features are kept, so running the same command again resumes."


#: The signal (SIGINT or SIGTERM) this process has received, if any: then whatever error follows (a decoding
#: worker that the same signal ended, found before the signal reached the main thread) is reported as that signal.
_received: int | None = None


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the command ends as after Ctrl-C: its `finally` blocks stop
    decoding workers and close the store. A BaseException, as KeyboardInterrupt is: no `except Exception` takes it."""


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """In the block, SIGTERM raises `Terminated` and SIGINT `KeyboardInterrupt`, once each (the same signal again
    ends the process at once), and both are remembered; the handlers before are restored afterwards. Outside the
    main thread, where signals cannot be handled, nothing changes."""

    def handler(signum: int, frame: object) -> None:
        global _received
        _received = signum
        signal.signal(signum, signal.SIG_DFL)
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, previous in before.items():
            signal.signal(s, previous)


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of spaces collapsed: an error is one line on the terminal."""
    return " ".join(str(text).split())


def describe_os_error(err: OSError) -> str:
    """A filesystem error as a sentence naming the path and what to do."""
    return f"{err.filename or 'a file'}: {err.strerror or err}. {os_error_advice(err)}"


class OneLineErrors(TyperGroup):
    """featswap's command group: runs a command and turns every failure into one `error:` line (exit 2).

    The parser's usage errors (an unknown option, a missing value) and featswap's errors are the user's to fix;
    filesystem errors name the path; anything else is a bug in featswap, said as such (set
    FEATSWAP_TRACEBACK=1 to see the traceback)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            try:
                with signals_as_exceptions():
                    code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except Terminated:
                fail(f"terminated (SIGTERM); {KEPT}", TERMINATED)
            except Exception:
                if _received == signal.SIGTERM:  # an error the signal caused first elsewhere (a worker it ended)
                    fail(f"terminated (SIGTERM); {KEPT}", TERMINATED)
                if _received == signal.SIGINT:
                    fail(f"interrupted; {KEPT}", INTERRUPTED)
                raise
        except FeatswapError as err:
            fail(str(err))
        except OSError as err:
            fail(describe_os_error(err))
        except Exception as err:
            if is_usage_error(err):  # a bad or missing option, found by the command-line parser
                fail(usage_message(err, sys.argv[1:] if args is None else list(args)))
            if type(err).__name__ == "Abort":  # the parser's Ctrl-C
                fail("interrupted.", INTERRUPTED)
            if os.environ.get("FEATSWAP_TRACEBACK"):
                raise
            fail(
                f"featswap failed unexpectedly ({type(err).__name__}: {err}). This is a bug in featswap: run again "
                "with FEATSWAP_TRACEBACK=1 to see where, and report it."
            )
        if code == INTERRUPTED:
            fail(f"interrupted; {KEPT}", INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


def usage_message(err: Exception, args: Sequence[str] = ()) -> str:
    """The parser's message, with the help of the command it was parsing (`featswap --help` for the options before
    the command), and where `--threads` belongs when it was given after the command; or, when the command line
    `args` give `--threads` a value that is not a number (`featswap --threads compare ...`: the parser took the
    command for the value and failed later, on the command's options), what `--threads` needs."""
    value = threads_value(args)
    if value is not None and not value.strip().isdigit():
        got = f"; got {value!r}" if value else ""
        return (
            f"--threads needs a number of threads before the command{got}. Example: "
            "`featswap --threads 4 compare ...`. See `featswap --help`."
        )
    message = str(err.format_message()).rstrip(".")  # type: ignore[attr-defined]
    ctx = getattr(err, "ctx", None)
    path = str(getattr(ctx, "command_path", "")).split()
    where = " ".join(["featswap", *path[1:]]) if path else "featswap COMMAND"  # the program's own name, however run
    hint = ""
    if getattr(err, "option_name", None) == "--threads":
        hint = " --threads goes before the command: `featswap --threads N COMMAND ...`."
    return f"{message}.{hint} See `{where} --help`."


def threads_value(args: Sequence[str]) -> str | None:
    """The value the command line `args` give the top-level `--threads` ("" when it ends the line, None without
    one)."""
    for i, arg in enumerate(args):
        if arg == "--threads":
            return args[i + 1] if i + 1 < len(args) else ""
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
        if not arg.startswith("-"):
            return None  # the command: options after it are its own
    return None


def is_usage_error(err: Exception) -> bool:
    """Whether `err` is the command-line parser's own error (click's, or the copy of click that newer typer
    versions carry): it has a message to show and an exit status."""
    return callable(getattr(err, "format_message", None)) and isinstance(getattr(err, "exit_code", None), int)


def fail(message: str, code: int = USER_ERROR) -> NoReturn:
    """Print `error: message` on one line (standard error) and exit with `code`."""
    from rich.markup import escape

    from featswap.progress import console

    # escape: messages list keys and shapes in [brackets], which rich would read as markup
    console.print(f"[bold red]error:[/] {escape(one_line(message))}", highlight=False, soft_wrap=True)
    sys.exit(code)
