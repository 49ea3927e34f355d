"""The `copilot` command: serve, migrate, projections status|rebuild, audit replay."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from copilot.ops.logs import configure_logging
from copilot.settings import Settings, SettingsError, load_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from copilot.server import ROLES

    parser = argparse.ArgumentParser(prog="copilot", description="SRE Copilot incident backend")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (all roles in one process by default)")
    serve.add_argument("--role", choices=ROLES, default="all")

    commands.add_parser("migrate", help="apply pending SQL migrations from eventstore/")

    projections = commands.add_parser("projections", help="inspect or rebuild read models")
    actions = projections.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="each projection's position, the log head and the lag")
    rebuild = actions.add_parser("rebuild", help="rebuild read models from the log and swap them in")
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="projections to rebuild (default: all)")

    audit = commands.add_parser("audit", help="audit tools")
    audit_actions = audit.add_subparsers(dest="action", required=True)
    replay = audit_actions.add_parser("replay", help="an incident's events and its state at a moment")
    replay.add_argument("incident_id", type=UUID)
    replay.add_argument("--at", type=_iso_time, default=None, help="ISO time (default: now)")
    replay.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _iso_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def _log_and_read_models(settings: Settings) -> Iterator[tuple[Any, Any]]:
    from copilot.bootstrap import build_read_database
    from copilot.commands.store import build_event_store
    from copilot.migrations import migrate

    migrate(settings)
    store = build_event_store(settings)
    db = build_read_database(settings)
    try:
        yield store, db
    finally:
        db.close()
        store.close()


def _projections_status(settings: Settings) -> int:
    from copilot.projections import all_projections
    from copilot.projections.runner import read_positions

    with _log_and_read_models(settings) as (store, db):
        head = store.head()
        positions = read_positions(db)
        print(f"{'projection':<20} {'position':>10} {'head':>10} {'lag':>8}")
        for projection in all_projections():
            position = positions.get(projection.name, 0)
            print(f"{projection.name:<20} {position:>10} {head:>10} {head - position:>8}")
    return 0


def _progress_bar(position: int, head: int) -> None:
    width = 30
    done = int(width * position / head) if head else width
    sys.stderr.write(f"\r[{'#' * done}{' ' * (width - done)}] {position:>10,}/{head:,} events")
    sys.stderr.flush()


def _projections_rebuild(settings: Settings, names: list[str]) -> int:
    from copilot.projections import all_projections
    from copilot.projections.rebuild import rebuild

    known = {p.name: p for p in all_projections()}
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"copilot: unknown projection(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    chosen = [known[name] for name in names] if names else list(known.values())
    with _log_and_read_models(settings) as (store, db):
        report = rebuild(store, db, chosen, progress=_progress_bar)
    sys.stderr.write("\n")
    print(
        f"rebuilt {', '.join(report.projections)} to position {report.position}: "
        f"{report.events:,} events in {report.seconds:.2f} s ({report.events_per_second:,.0f} events/s)"
    )
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(type(value))


def _audit_replay(settings: Settings, incident_id: UUID, at: datetime | None, as_json: bool) -> int:
    from copilot.audit import replay_incident
    from copilot.domain import NotFoundError

    with _log_and_read_models(settings) as (store, _):
        try:
            result = replay_incident(store, incident_id, at)
        except NotFoundError:
            print(f"copilot: no incident {incident_id} in the log", file=sys.stderr)
            return 1
    as_of = (at or datetime.now(UTC)).isoformat()
    if as_json:
        print(json.dumps({
            "incident_id": result.incident_id, "as_of": as_of, "state": result.state,
            "events": [vars(entry) for entry in result.entries],
        }, default=_json_default, indent=2))
        return 0
    print(f"{'position':>9}  {'time':<32} {'actor':<28} {'event':<24} change")
    for entry in result.entries:
        change = ", ".join(f"{k}={_json_default(v) if isinstance(v, datetime | UUID) else v}"
                           for k, v in entry.change.items())
        actor = entry.actor_email or (str(entry.actor_id) if entry.actor_id else "-")
        print(f"{entry.position:>9}  {entry.occurred_at.isoformat():<32} {actor:<28} {entry.type:<24} {change}")
    if result.state is None:
        print(f"\nas of {as_of}: the incident did not exist yet")
    else:
        state = ", ".join(f"{k}={_json_default(v) if isinstance(v, datetime) else v}"
                          for k, v in result.state.items() if v is not None)
        print(f"\nas of {as_of}: {state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"copilot: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if args.command == "serve":
        from copilot.server import serve

        serve(settings, args.role)
        return 0
    if args.command == "migrate":
        from copilot.migrations import migrate

        applied = migrate(settings)
        print(f"applied {len(applied)} migration(s)" if applied else "database is up to date")
        return 0
    if args.command == "projections":
        if args.action == "status":
            return _projections_status(settings)
        return _projections_rebuild(settings, args.names)
    if args.command == "audit":
        return _audit_replay(settings, args.incident_id, args.at, args.json)
    return 1


if __name__ == "__main__":
    sys.exit(main())
