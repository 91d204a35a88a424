"""``tether``: parse the command line, run one command, map errors to exit codes.

Exit codes: 0 done; 2 a user mistake (bad argument, bad JSON, unknown run, bad store URL, an
operation the run's state forbids: any ``TetherError``; an optional extra not installed, named
with its ``pip install``); 1 an unexpected failure; 130 Ctrl-C;
141 stdout closed early (a pipe into ``head``).
Errors print one red ``error: ...`` line on stderr; ``TETHER_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Any, NoReturn

from tether.cli import (
    approvals_cmd,
    audit_cmd,
    demo_cmd,
    drift_cmd,
    keys_cmd,
    kpis_cmd,
    migrate_cmd,
    mindlog_cmd,
    purge_cmd,
    queues_cmd,
    requeue,
    schedules_cmd,
    serve_cmd,
    shadow_cmd,
    tools_cmd,
    trace_cmd,
    upgrade_cmd,
    worker_cmd,
)
from tether.cli import commands as cmd
from tether.cli.argtypes import match_name, positive_int
from tether.cli.backend import backend_for, check_server_command
from tether.cli.extras import missing_extra_message
from tether.cli.logs import TextLogHandler, debug_enabled
from tether.cli.render import Output, tolerate_encoding
from tether.core.errors import ConfigurationError, InvalidInputError, TetherError

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
_PATCH_EXAMPLE = '--patch \'{"field": "value"}\''


def tether_version() -> str:
    try:
        return dist_version("tether")
    except PackageNotFoundError:
        return "0+unknown"


def _version(args: argparse.Namespace, out: Output) -> int:
    """``tether version``: this tether's version, and with ``--server`` (or TETHER_SERVER)
    the server's too; a server that does not answer is an error (exit 2), after this one's."""
    settings = cmd.settings(args, app=False)
    if not settings.server:
        out.version(tether_version())
        return EXIT_OK
    from tether.cli.server_backend import server_version  # the client only when used
    from tether.client import ServerUnavailableError

    try:
        theirs = asyncio.run(server_version(settings))
    except ServerUnavailableError as exc:
        problem = f"the server at {settings.server} is unreachable: {exc}"
    except ConfigurationError:
        raise  # a URL that is no server URL, a redirect: said as it is
    except TetherError as exc:
        problem = f"the server at {settings.server} did not tell its version: {exc}"
    else:
        out.version(tether_version(), server=(settings.server, theirs))
        return EXIT_OK
    out.version(tether_version(), server=(settings.server, None), server_error=problem)
    out.error(problem)
    return EXIT_USAGE


# -- parser ---------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error style: usage, then one red ``error:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        color = "--no-color" not in sys.argv
        Output(color=color).error(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(EXIT_USAGE)


def _step(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a step number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"steps start at 0, got {n}")
    return n


def _global_options() -> _Parser:
    """Options accepted before or after any subcommand (``SUPPRESS``: a later parser never
    overwrites what an earlier one set)."""
    p = _Parser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="run store URL (env TETHER_STORE; default sqlite:///.tether/tether.db)",
    )
    g.add_argument(
        "--app",
        metavar="REF",
        default=argparse.SUPPRESS,
        help="module:attr or path/to/file.py:attr naming a compiled Workflow or a "
        "list of them (env TETHER_APP); needed to resume/fork runs whose "
        "workflow cannot be imported from the ref stored on the run",
    )
    g.add_argument(
        "--server",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="act through a `tether serve` server instead of the store (env TETHER_SERVER)",
    )
    g.add_argument(
        "--api-key",
        metavar="KEY",
        default=argparse.SUPPRESS,
        help="the server's API key (env TETHER_API_KEY)",
    )
    g.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable JSON on stdout",
    )
    g.add_argument(
        "--no-color",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no colour (also: env NO_COLOR)",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = _Parser(
        prog="tether", parents=[common], description="Inspect, resume, fork and cancel tether runs."
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    sub.add_parser("version", parents=[common], help="print the tether version")

    runs = sub.add_parser("runs", parents=[common], help="inspect and operate runs")
    rsub = runs.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)

    p = rsub.add_parser("list", parents=[common], help="list runs, newest first")
    p.add_argument(
        "--status",
        nargs="+",
        action="extend",
        default=[],
        metavar="S",
        help="only runs in these statuses (repeat, or comma-separate)",
    )
    p.add_argument("--workflow", type=match_name, metavar="W", help="only runs of this workflow")
    p.add_argument(
        "--thread", type=match_name, metavar="T", help="only runs of this thread (thread_id)"
    )
    p.add_argument(
        "--dead-letter",
        action="store_true",
        help="only dead-lettered runs (FAILED after their last retryable attempt)",
    )
    p.add_argument(
        "--limit", type=positive_int, default=50, metavar="N", help="at most N runs (default 50)"
    )

    p = rsub.add_parser("show", parents=[common], help="a run's record and its state")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument(
        "--step",
        type=_step,
        metavar="N",
        help="show the state after step N (default: the last committed step)",
    )

    p = rsub.add_parser(
        "history", parents=[common], help="a run's committed steps and lifecycle transitions"
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument(
        "--after", type=_step, metavar="STEP", help="the steps after STEP (the next page)"
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        default=cmd.HISTORY_PAGE,
        metavar="N",
        help=f"at most N steps (default {cmd.HISTORY_PAGE})",
    )

    p = rsub.add_parser(
        "resume", parents=[common], help="answer an ESCALATED run or retry a FAILED one"
    )
    p.add_argument("run_id", metavar="RUN_ID")
    answer = p.add_mutually_exclusive_group()
    answer.add_argument(
        "--value", metavar="JSON", help="the answer to the run's single pending interrupt (JSON)"
    )
    answer.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="ID=JSON",
        help="the answer to one interrupt by id (repeat for each)",
    )
    p.add_argument(
        "--max-steps",
        type=positive_int,
        metavar="N",
        help="grant N more steps (after a step-limit escalation)",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="record the resume and leave the run to workers instead of running "
        "it here until it settles",
    )
    p.add_argument(
        "--allow-version-change",
        action="store_true",
        help="continue the run even though its workflow's structure changed since it started",
    )

    p = rsub.add_parser(
        "fork", parents=[common], help="a new run, linked to this one, continuing from a past step"
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--step", type=_step, required=True, metavar="N", help="fork after step N")
    p.add_argument(
        "--patch", metavar="JSON", help="a JSON object of state fields to replace in the fork"
    )
    p.add_argument(
        "--max-steps",
        type=positive_int,
        metavar="N",
        help="step limit of the fork, counted from N",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="only create the fork (PLANNED) for workers to execute",
    )

    p = rsub.add_parser("cancel", parents=[common], help="cancel a run that has not finished")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--reason", default="", metavar="TEXT", help="why (kept in the lifecycle)")
    requeue.add_parsers(rsub, common, positive_int)
    purge_cmd.add_parsers(rsub, common)
    upgrade_cmd.add_parsers(rsub, common)

    worker_cmd.add_parsers(sub, common)
    schedules_cmd.add_parsers(sub, common)
    queues_cmd.add_parsers(sub, common)
    tools_cmd.add_parsers(sub, common)
    audit_cmd.add_parsers(sub, common)
    approvals_cmd.add_parsers(sub, common)
    trace_cmd.add_parsers(sub, common)
    mindlog_cmd.add_parsers(sub, common)
    kpis_cmd.add_parsers(sub, common)
    drift_cmd.add_parsers(sub, common)
    shadow_cmd.add_parsers(sub, common)
    keys_cmd.add_parsers(sub, common)
    serve_cmd.add_parsers(sub, common)
    demo_cmd.add_parsers(sub, common)
    migrate_cmd.add_parsers(sub, common)
    return parser


# -- dispatch ---------------------------------------------------------------------------------
async def _dispatch(args: argparse.Namespace, out: Output) -> int:
    """Run a ``tether runs ...`` command; returns the exit code."""
    s = cmd.settings(args)
    be = backend_for(s)
    action = args.action
    if action == "list" and args.dead_letter:
        dead = await requeue.dead_letter_runs(
            s, args.workflow, args.limit, args.status, args.thread
        )
        out.runs(dead)
    elif action == "list":
        statuses = cmd.parse_statuses(args.status)
        out.runs(await be.list_runs(statuses, args.workflow, args.limit, args.thread))
    elif action == "show":
        view = await be.show_run(args.run_id, args.step)
        if view.state_error and out.json_mode:
            out.warning(f"state unavailable: {view.state_error}")
        out.run(view)
    elif action == "history":
        out.history(await be.run_history(args.run_id, args.after, args.limit))
    elif action == "resume":
        kw: dict[str, Any] = {}
        if args.value is not None:
            kw = {
                "value": cmd.parse_json(args.value, "--value", "--value '\"yes\"'"),
                "has_value": True,
            }
        answers = cmd.parse_answers(args.answer) if args.answer else None
        out.resumed(
            await be.resume_run(
                args.run_id,
                answers=answers,
                max_steps=args.max_steps,
                wait=not args.no_wait,
                allow_version_change=args.allow_version_change,
                **kw,
            )
        )
    elif action == "fork":
        patch = None
        if args.patch is not None:
            patch = cmd.parse_json(args.patch, "--patch", _PATCH_EXAMPLE)
            if not isinstance(patch, dict):
                raise InvalidInputError(
                    f"--patch must be a JSON object of state fields, e.g. {_PATCH_EXAMPLE}; "
                    f"got a {type(patch).__name__}"
                )
        out.forked(
            await be.fork_run(
                args.run_id, args.step, patch, max_steps=args.max_steps, wait=not args.no_wait
            )
        )
    elif action == "cancel":
        out.cancelled(await be.cancel_run(args.run_id, args.reason))
    elif action in requeue.ACTIONS:
        await requeue.dispatch(args, s, out)
    elif action in purge_cmd.ACTIONS:
        await purge_cmd.dispatch(args, s, out)
    elif action in upgrade_cmd.ACTIONS:
        return await upgrade_cmd.dispatch(args, s, out)
    else:  # pragma: no cover - argparse rejects unknown actions
        raise InvalidInputError(f"unknown command 'runs {action}'")
    return EXIT_OK


def _setup_logging(out: Output, debug: bool) -> Callable[[], None]:
    logger = logging.getLogger("tether")
    handler = TextLogHandler(out, debug)
    old = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]

    return undo


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tether`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    tolerate_encoding(sys.stdout, sys.stderr)  # a terminal that is not UTF-8: '?', no crash
    debug = debug_enabled()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    out = Output(
        json_mode=bool(getattr(args, "json", False)), color=not getattr(args, "no_color", False)
    )
    undo = _setup_logging(out, debug)
    try:
        check_server_command(args)
        if args.command == "version":
            return _version(args, out)
        elif args.command in worker_cmd.COMMANDS:
            return worker_cmd.run(args, out)
        elif args.command in schedules_cmd.COMMANDS:
            return schedules_cmd.run(args, out)
        elif args.command in queues_cmd.COMMANDS:
            return queues_cmd.run(args, out)
        elif args.command in tools_cmd.COMMANDS:
            return tools_cmd.run(args, out)
        elif args.command in audit_cmd.COMMANDS:
            return audit_cmd.run(args, out)
        elif args.command in approvals_cmd.COMMANDS:
            return approvals_cmd.run(args, out)
        elif args.command in trace_cmd.COMMANDS:
            return trace_cmd.run(args, out)
        elif args.command in mindlog_cmd.COMMANDS:
            return mindlog_cmd.run(args, out)
        elif args.command in kpis_cmd.COMMANDS:
            return kpis_cmd.run(args, out)
        elif args.command in drift_cmd.COMMANDS:
            return drift_cmd.run(args, out)
        elif args.command in shadow_cmd.COMMANDS:
            return shadow_cmd.run(args, out)
        elif args.command in keys_cmd.COMMANDS:
            return keys_cmd.run(args, out)
        elif args.command in serve_cmd.COMMANDS:
            return serve_cmd.run(args, out)
        elif args.command in demo_cmd.COMMANDS:
            return demo_cmd.run(args, out)
        elif args.command in migrate_cmd.COMMANDS:
            return migrate_cmd.run(args, out)
        else:
            return asyncio.run(_dispatch(args, out))
        return EXIT_OK
    except BrokenPipeError:
        # the reader went away (``tether runs list | head``): stop quietly, like Unix tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except TetherError as exc:
        if debug:
            out.traceback(traceback.format_exc())
        out.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if isinstance(exc, UnicodeEncodeError) and "surrogate" in exc.reason:
            # Python decodes argv bytes that are not UTF-8 to lone surrogates (surrogateescape)
            if debug:
                out.traceback(traceback.format_exc())
            out.error(
                f"{exc.object!r} is not valid UTF-8 text (an argument in another encoding?); "
                "the store keeps text as UTF-8: pass it as UTF-8"
            )
            return EXIT_USAGE
        if (missing := missing_extra_message(exc)) is not None:
            if debug:
                out.traceback(traceback.format_exc())
            out.error(missing)
            return EXIT_USAGE
        if debug:
            out.traceback(traceback.format_exc())
            out.error(f"unexpected {type(exc).__name__}: {exc}")
        else:
            out.error(
                f"unexpected {type(exc).__name__}: {exc} (set TETHER_DEBUG=1 for the traceback)"
            )
        return EXIT_UNEXPECTED
    finally:
        undo()


if __name__ == "__main__":
    sys.exit(main())
