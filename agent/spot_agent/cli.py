"""``spot-agent``: ``run`` (the daemon; ``--once``, ``--dry-run``) and ``check`` (one IMDS round, printed).

Exit codes: 0 fine; 1 a run --once left reports in the spool; 2 bad configuration; 3 IMDS unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from spot_agent import __version__
from spot_agent.config import ConfigError, load_config
from spot_agent.daemon import assemble, read_identity, wait_for_identity
from spot_agent.imds import ImdsClient, ImdsError
from spot_agent.logs import setup_logging
from spot_agent.notices import read_notices
from spot_agent.spool import SpoolError

log = logging.getLogger("spot_agent")

EXIT_OK, EXIT_PENDING, EXIT_CONFIG, EXIT_IMDS = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="TOML config file (default: $SPOT_AGENT_CONFIG or /etc/spot-agent/config.toml if present). "
        "SPOT_AGENT_* environment variables override it.",
    )
    parser = argparse.ArgumentParser(
        prog="spot-agent",
        description="Reports EC2 spot interruption, rebalance and maintenance notices from IMDSv2 to the "
        "spot-optimizer operator, sends heartbeats, and runs the pre-stop hook.",
    )
    parser.add_argument("--version", action="version", version=f"spot-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", parents=[common], help="Run the agent (what the systemd unit starts).")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="Poll and assess as usual but print the reports instead of sending them; run no hooks.",
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="One poll, one heartbeat, one delivery attempt, then exit (1 if reports stay spooled).",
    )
    commands.add_parser("check", parents=[common], help="Read IMDS once and print what the agent sees.")
    return parser


def _imds(config_endpoint: str, ttl: int, timeout: float) -> ImdsClient:
    return ImdsClient(config_endpoint, token_ttl_seconds=ttl, timeout_seconds=timeout)


def check(config_path: Path | None) -> int:
    config = load_config(config_path)
    setup_logging(config.log_level)
    imds = _imds(config.imds_endpoint, config.imds_token_ttl_seconds, config.imds_timeout_seconds)
    try:
        identity = imds.identity()
        observation = imds.observe()
    except ImdsError as exc:
        print(json.dumps({"imds": imds.endpoint, "ok": False, "error": str(exc)}, indent=2))
        return EXIT_IMDS
    reading = read_notices(observation, identity.instance_id, datetime.now(UTC))
    print(
        json.dumps(
            {
                "imds": imds.endpoint,
                "ok": True,
                "instanceId": identity.instance_id,
                "availabilityZone": identity.availability_zone,
                "instanceType": identity.instance_type,
                "pool": identity.pool,
                "notices": [
                    n.model_dump(mode="json", by_alias=True, exclude_none=True) for n in reading.notices
                ],
                "problems": reading.problems,
            },
            indent=2,
        )
    )
    return EXIT_OK


async def run(config_path: Path | None, dry_run: bool, once: bool) -> int:
    config = load_config(config_path)
    setup_logging(config.log_level)
    if not dry_run:
        config.require_operator()
        config.read_token()  # fail at start, not at the first notice, when there is no token
    imds = _imds(config.imds_endpoint, config.imds_token_ttl_seconds, config.imds_timeout_seconds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if once:
        try:
            identity = await asyncio.to_thread(read_identity, imds)
        except ImdsError as exc:
            log.error("IMDS unusable", extra={"error": str(exc)})
            return EXIT_IMDS
    else:
        found = await wait_for_identity(imds, stop)
        if found is None:
            return EXIT_OK
        identity = found

    agent, spool = assemble(config, imds, identity, dry_run)
    log.info(
        "spot-agent started",
        extra={
            "version": __version__,
            "dry_run": dry_run,
            "once": once,
            "operator": config.operator_url,
            "agent": f"{config.namespace}/{config.name}",
            "poll_interval_seconds": config.poll_interval_seconds,
        },
    )
    try:
        if once:
            return EXIT_OK if await agent.once() else EXIT_PENDING
        await agent.run(stop)
        return EXIT_OK
    finally:
        if spool is not None:
            spool.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check":
            return check(args.config)
        return asyncio.run(run(args.config, args.dry_run, args.once))
    except (ConfigError, SpoolError) as exc:
        print(f"spot-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
