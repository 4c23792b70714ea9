"""AWS API calls per observe cycle and per price refresh, for 10, 100 and 1,000 SpotAgents in 3 regions.

Runs a moto server on 127.0.0.1, gives every agent one tagged instance (and every fourth agent an Elastic
IP pointing at it), then runs one observe cycle (``runtime.observer.observe_once``) and one price refresh
(``runtime.prices.collect_prices_once``) through the real boto3 adapters, counting calls with the
clients' botocore hook. The figure that matters is the call count: it must not grow with the agents.
moto's DescribeInstances is slow (about a second per tag-filtered call at 1,000 instances), so the wall
time printed is moto's, not AWS's.

    PYTHONPATH=operator:agent:. python bench/aws_calls.py [--agents 10,100,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from tests.fakes.moto_server import ACCESS_KEY, SECRET_KEY, _moto_command, _wait_until_up, free_port, reset

from spot_operator import tags
from spot_operator.adapters.aws import AwsClients, AwsConfig, AwsEc2, AwsSpotPrices, AwsTraffic, CallRecorder
from spot_operator.api import SpotAgentSpec
from spot_operator.ports import AgentRef
from spot_operator.runtime.observer import observe_once
from spot_operator.runtime.prices import PriceBook, collect_prices_once
from spot_operator.state import AgentState

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
TYPES = ("m5.large", "m5a.large", "c5.large", "r5.large")
AMI = "ami-0123456789abcdef0"


def plain(url: str, service: str, region: str) -> Any:
    session: Any = boto3.session.Session()
    return session.client(
        service,
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(read_timeout=600, retries={"mode": "standard", "total_max_attempts": 3}),
    )


def make_agents(url: str, count: int) -> dict[str, AgentState]:
    """One instance per agent (tagged as the operator tags), an Elastic IP for every fourth agent."""
    ec2s = {r: plain(url, "ec2", r) for r in REGIONS}

    def one(n: int) -> AgentState:
        region = REGIONS[n % len(REGIONS)]
        uid = f"uid-{n:05d}"
        ec2 = ec2s[region]
        reservation = ec2.run_instances(
            ImageId=AMI,
            MinCount=1,
            MaxCount=1,
            InstanceType=TYPES[n % len(TYPES)],
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": tags.OWNER, "Value": uid},
                        {"Key": tags.AGENT, "Value": f"bench/a{n}"},
                        {"Key": tags.ROLE, "Value": "primary"},
                        {"Key": tags.EPOCH, "Value": "1"},
                    ],
                }
            ],
        )
        instance_id = reservation["Instances"][0]["InstanceId"]
        traffic: dict[str, Any] = {}
        if n % 4 == 0:
            allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
            ec2.associate_address(AllocationId=allocation, InstanceId=instance_id)
            traffic = {"elasticIpAllocationId": allocation}
        spec = SpotAgentSpec.model_validate(
            {
                "region": region,
                "image": AMI,
                "instanceTypes": [TYPES[n % len(TYPES)], TYPES[(n + 1) % len(TYPES)]],
                "traffic": traffic,
            }
        )
        return AgentState(AgentRef("bench", f"a{n}", uid), spec)

    with ThreadPoolExecutor(max_workers=4) as pool:
        states = list(pool.map(one, range(count)))
    return {s.key: s for s in states}


async def measure(url: str, count: int) -> dict[str, Any]:
    reset(url)
    started = time.perf_counter()
    agents = make_agents(url, count)
    setup = time.perf_counter() - started
    recorder = CallRecorder()
    config = AwsConfig(
        endpoint_url=url, read_timeout=600.0, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )
    clients = AwsClients(config, recorder=recorder)
    ec2, traffic = AwsEc2(clients), AwsTraffic(clients)

    stats = await observe_once(ec2, traffic, agents, datetime.now(UTC))
    observe_calls = dict(recorder.calls)
    observed = sum(len(s.instances) for s in agents.values())
    serving = sum(1 for s in agents.values() if s.serving)
    recorder.reset()

    source = AwsSpotPrices(clients)
    book, since = PriceBook(), dict[str, datetime]()
    prices = await collect_prices_once(source, agents, book, since)
    price_calls = dict(recorder.calls)
    recorder.reset()
    await collect_prices_once(source, agents, book, since)
    second_refresh = dict(recorder.calls)
    return {
        "agents": count,
        "setup_s": setup,
        "observe_calls": observe_calls,
        "observe_s": stats.seconds,
        "observed": observed,
        "serving": serving,
        "errors": stats.errors + prices.errors,
        "price_calls": price_calls,
        "price_calls_again": second_refresh,
        "pools": len(book.spot),
    }


def total(calls: dict[str, int], prefix: str = "") -> int:
    return sum(n for action, n in calls.items() if action.startswith(prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="10,100,1000", help="comma-separated agent counts")
    counts = [int(c) for c in parser.parse_args().agents.split(",")]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(_moto_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(url, process)
        rows = [asyncio.run(measure(url, n)) for n in counts]
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=60)

    print(
        f"AWS API calls against moto {url}, {len(REGIONS)} regions, one instance per agent, EIP on every 4th"
    )
    header = (
        f"{'agents':>6} {'observed':>8} {'serving':>7} | {'DescribeInstances':>17} {'DescribeAddresses':>17} "
        f"{'observe wall s':>14} | {'SpotPriceHistory':>16} {'GetProducts':>11} {'2nd refresh':>11} "
        f"{'pools':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['agents']:>6} {r['observed']:>8} {r['serving']:>7} | "
            f"{r['observe_calls'].get('ec2:DescribeInstances', 0):>17} "
            f"{r['observe_calls'].get('ec2:DescribeAddresses', 0):>17} {r['observe_s']:>14.2f} | "
            f"{r['price_calls'].get('ec2:DescribeSpotPriceHistory', 0):>16} "
            f"{r['price_calls'].get('pricing:GetProducts', 0):>11} {total(r['price_calls_again']):>11} "
            f"{r['pools']:>5}"
        )
    for r in rows:
        if r["errors"]:
            print(f"{r['agents']} agents: errors: {'; '.join(r['errors'])}")
    print(
        "calls per observe cycle and per price refresh are per region, independent of the agent count; "
        "GetProducts is moto's missing Price List API (the bundled table answers), retried on each refresh; "
        "moto's spot prices are placeholders (one row per type and zone)."
    )
    setups = ", ".join(f"{r['agents']}: {r['setup_s']:.0f}s" for r in rows)
    print(f"set-up (not measured): {setups}")


if __name__ == "__main__":
    main()
