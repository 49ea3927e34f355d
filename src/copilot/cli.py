"""The `copilot` command: serve, migrate, projections status."""

from __future__ import annotations

import argparse
import logging
import sys

from copilot.settings import SettingsError, load_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from copilot.server import ROLES

    parser = argparse.ArgumentParser(prog="copilot", description="SRE Copilot incident backend")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (all roles in one process by default)")
    serve.add_argument("--role", choices=ROLES, default="all")

    commands.add_parser("migrate", help="apply pending SQL migrations from eventstore/")

    projections = commands.add_parser("projections", help="inspect read models")
    sub = projections.add_subparsers(dest="action", required=True)
    sub.add_parser("status", help="each projection's position, the log head and the lag")
    return parser


def _projections_status() -> int:
    from copilot.bootstrap import build_read_database
    from copilot.commands.store import build_event_store
    from copilot.migrations import migrate
    from copilot.projections import all_projections
    from copilot.projections.runner import read_positions

    settings = load_settings()
    migrate(settings)
    store = build_event_store(settings)
    db = build_read_database(settings)
    try:
        head = store.head()
        positions = read_positions(db)
        print(f"{'projection':<20} {'position':>10} {'head':>10} {'lag':>8}")
        for projection in all_projections():
            position = positions.get(projection.name, 0)
            print(f"{projection.name:<20} {position:>10} {head:>10} {head - position:>8}")
    finally:
        db.close()
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"copilot: configuration error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        from copilot.server import serve

        serve(settings, args.role)
        return 0
    if args.command == "migrate":
        from copilot.migrations import migrate

        applied = migrate(settings)
        print(f"applied {len(applied)} migration(s)" if applied else "database is up to date")
        return 0
    if args.command == "projections" and args.action == "status":
        return _projections_status()
    return 1


if __name__ == "__main__":
    sys.exit(main())
