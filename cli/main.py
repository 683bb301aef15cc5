"""The `watchkeeper` command. Subcommands import what they need only when they run,
so `watchkeeper drift --help` starts without loading Dagster or MLflow."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (argparse's own exits included, so tests can call it)."""
    from cli import arguments as arg

    parser = arg.Parser(prog="watchkeeper", description="Model monitoring: drift, performance, health.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="build the demo (models, traffic, every window through Dagster)")
    where = demo.add_mutually_exclusive_group()
    where.add_argument("--dir", type=arg.folder, default=Path(".demo"),
                       help="folder to build the demo in (default: .demo); only what the demo generated there is replaced")
    where.add_argument("--serve", type=arg.existing_folder, metavar="DIR",
                       help="open the Dagster UI on a demo built earlier in DIR, without rebuilding it")
    demo.add_argument("--headless", action="store_true", help="do not start the Dagster UI afterwards")
    demo.add_argument("--format", choices=["json", "text"], default="text")
    demo.add_argument("--port", type=arg.port, default=3000, help="port of the Dagster UI (default 3000)")

    drift = commands.add_parser("drift", help="compare a current window with a reference (data or saved profile)")
    drift.add_argument("--reference", type=arg.input_file, required=True,
                       help="Parquet/CSV reference data, or a profile .json")
    drift.add_argument("--current", type=arg.input_file, required=True, help="Parquet/CSV current window")
    drift.add_argument("--format", choices=["json", "text", "html"], default="json")
    drift.add_argument("--output", type=arg.output_file, help="write the report here instead of stdout")
    drift.add_argument("--multivariate", choices=["auto", "full", "off"], default="auto",
                       help="joint-drift detectors when --reference is data: auto = PCA reconstruction on up to "
                            "20,000 sampled rows, fewer for wide tables (rows x encoded columns^2 <= 1e8: about "
                            "a tenth of a second; the report says how many); full = PCA on up to 100,000 rows "
                            "and a domain classifier (seconds to minutes); off = none")

    profile = commands.add_parser("profile", help="build a reference profile from data and save it as JSON")
    profile.add_argument("--data", type=arg.input_file, required=True, help="Parquet/CSV reference data")
    profile.add_argument("--output", type=arg.output_file, required=True, help="where to save the profile (.json)")

    stream = commands.add_parser("stream", help="concept drift alarms over a file of per-prediction errors")
    stream.add_argument("--errors", type=arg.input_file, required=True,
                        help="Parquet/CSV file, one row per prediction in arrival order")
    stream.add_argument("--column", type=arg.name, default="error",
                        help="column of 0/1 or absolute errors (default: error)")
    stream.add_argument("--detector", default="auto", choices=["adwin", "ddm", "eddm", "hddm_a", "hddm_w",
                                                               "page_hinkley", "kswin", "auto"])
    stream.add_argument("--format", choices=["json"], default="json")

    drift.add_argument("--config", type=arg.input_file, help="drift config YAML/JSON (see docs/drift.md)")
    drift.add_argument("--fail-on-drift", action="store_true",
                       help="exit 1 when the dataset drifted (for CI/CD; without it the exit code is 0 either way)")

    from cli.approve import add_approve_parser
    from cli.audit import add_audit_parser
    from cli.config import add_config_parser
    from cli.db import add_db_parser
    from cli.exporter import add_exporter_parser
    from cli.fleet import add_fleet_parser
    from cli.gate import add_gate_parser
    from cli.ingest import add_ingest_parser
    from cli.privacy import add_privacy_parsers
    from cli.ui import add_ui_parser
    add_exporter_parser(commands)
    add_ingest_parser(commands)
    add_ui_parser(commands)
    add_privacy_parsers(commands)
    add_gate_parser(commands)
    add_config_parser(commands)
    add_db_parser(commands)
    add_approve_parser(commands)
    add_audit_parser(commands)
    add_fleet_parser(commands)

    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exit_:   # --help, or a bad argument already reported in one line
        return exit_.code if isinstance(exit_.code, int) else 2
    if extra:   # argparse would report these from the top parser, without the command's name
        return _fail(args, f"unrecognized arguments: {' '.join(extra)} (see {_prog(args)} --help)")
    try:
        if args.command == "demo":
            from cli.demo import demo_command
            return demo_command(args)
        if args.command == "config":
            from cli.config import config_command
            return config_command(args)
        if args.command == "audit":
            from cli.audit import audit_command
            return audit_command(args)
        if args.command == "db":
            from cli.db import db_command
            return db_command(args)
        if args.command == "fleet":
            from cli.fleet import fleet_command
            return fleet_command(args)
        if args.command == "approve":
            from cli.approve import approve_command
            return approve_command(args)
        if args.command == "gate":
            from cli.gate import gate_command
            return gate_command(args)
        if args.command == "ingest":
            from cli.ingest import ingest_command
            return ingest_command(args)
        if args.command == "exporter":
            from cli.exporter import exporter_command
            return exporter_command(args)
        if args.command == "ui":
            from cli.ui import ui_command
            return ui_command(args)
        if args.command in ("erase", "retention"):
            from cli.privacy import erase_command, retention_command
            return erase_command(args) if args.command == "erase" else retention_command(args)
        if args.command == "stream":
            from cli.stream import stream_command
            return stream_command(args)
        single_threaded_blas()
        import gc

        collecting = gc.isenabled()
        gc.disable()  # a short batch command: refcounting frees its data; the cyclic collector only
        try:          # ran over the objects of its imports (numpy, pyarrow): ~8% of a drift's CPU
            from cli.drift import drift_command, profile_command
            return drift_command(args) if args.command == "drift" else profile_command(args)
        finally:      # as it was, for callers in the same process (tests)
            if collecting:
                gc.enable()
            if argv is None:  # the command line itself: the process ends next, and its final collection
                gc.freeze()   # need not walk every object again (0.03 s of 0.32 against a profile)
    except CommandError as error:
        return _fail(args, str(error))


def _prog(args) -> str:
    """The command as typed: `watchkeeper drift`, `watchkeeper config validate`."""
    return " ".join(["watchkeeper", args.command, *filter(None, [getattr(args, f"{args.command}_command", None)])])


def _fail(args, message: str) -> int:
    print(f"{_prog(args)}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def single_threaded_blas() -> None:
    """One BLAS thread for `drift` and `profile`, unless the user chose otherwise: their linear algebra
    is small (a PCA of at most 20,000 sampled rows), and on busy cores OpenBLAS threads spin-wait
    (a 50,000-value dot product measured 40x slower with two threads than with one)."""
    import os

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


class CommandError(Exception):
    """Bad input to a command: reported as one line, exit code 2."""


if __name__ == "__main__":
    from cli.main import main as entry   # one CommandError class: the one the subcommands import
    sys.exit(entry())
