"""An HTTP proxy in front of the moto server that answers chosen calls itself, with AWS's wire format.

moto cannot refuse capacity, does not paginate DescribeSpotPriceHistory, serves placeholder prices and has
no Price List API. Those are AWS behaviours the adapters depend on, so the proxy answers such calls the
way AWS does (EC2 query-protocol XML errors with AWS's status codes, paged XML price history, JSON
GetProducts pages) and forwards everything else to moto unchanged. boto3 still talks HTTP end to end.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

Responder = Callable[[Mapping[str, str]], tuple[int, str, str]]  # params -> (status, content type, body)

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def ec2_error(code: str, message: str) -> str:
    """The body EC2 sends with an error (as in real InsufficientInstanceCapacity answers)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error></Errors>"
        "<RequestID>80586c44-65e6-4676-80f1-e96a47206379</RequestID></Response>"
    )


@dataclass
class Rule:
    action: str
    respond: Responder
    when: Callable[[Mapping[str, str]], bool] = lambda _params: True
    times: int | None = 1  # None: every matching call
    hits: int = 0


@dataclass
class Seen:
    action: str
    params: dict[str, str]
    answered_by_proxy: bool


@dataclass
class InjectingProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def fail(
        self,
        action: str,
        code: str,
        message: str,
        status: int = 500,
        when: Callable[[Mapping[str, str]], bool] = lambda _p: True,
        times: int | None = 1,
    ) -> Rule:
        body = ec2_error(code, message)
        return self.add(Rule(action, lambda _p: (status, "text/xml;charset=UTF-8", body), when, times))

    def calls(self, action: str) -> list[Seen]:
        return [s for s in self.seen if s.action == action]

    def _match(self, action: str, params: Mapping[str, str]) -> Rule | None:
        for rule in self.rules:
            if rule.action == action and (rule.times is None or rule.hits < rule.times) and rule.when(params):
                rule.hits += 1
                return rule
        return None


def _action(headers: Mapping[str, str], body: bytes) -> tuple[str, dict[str, str]]:
    target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
    if target:  # JSON protocol: "AWSPriceListService.GetProducts"
        params = json.loads(body or b"{}")
        return target.rpartition(".")[2], {k: json.dumps(v) for k, v in params.items()}
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    return form.get("Action", ""), form


def _handler(proxy: InjectingProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlparse(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _forward(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            action, params = _action(dict(self.headers), body)
            rule = proxy._match(action, params)
            proxy.seen.append(Seen(action, params, rule is not None))
            if rule is not None:
                status, content_type, text = rule.respond(params)
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", "80586c44-65e6-4676-80f1-e96a47206379")
                self.end_headers()
                self.wfile.write(payload)
                return
            conn = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = upstream.netloc
                conn.request(method, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            finally:
                conn.close()

        def do_POST(self) -> None:
            self._forward("POST")

        def do_GET(self) -> None:
            self._forward("GET")

    return Handler


@contextmanager
def running_proxy(upstream: str) -> Iterator[InjectingProxy]:
    proxy = InjectingProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="aws-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ---------------------------------------------------------------------------- AWS answers moto lacks


def spot_price_history_pages(rows: list[dict[str, Any]], page_size: int) -> Responder:
    """DescribeSpotPriceHistory as AWS answers it: the asked types, Linux/UNIX, every change since
    StartTime plus the price in force at StartTime, newest first, ``page_size`` per page with NextToken."""

    def respond(params: Mapping[str, str]) -> tuple[int, str, str]:
        types = {v for k, v in params.items() if k.startswith("InstanceType.")}
        products = {v for k, v in params.items() if k.startswith("ProductDescription.")}
        start = params.get("StartTime")
        matching = [
            r
            for r in rows
            if (not types or r["InstanceType"] in types)
            and (not products or r["ProductDescription"] in products)
        ]
        if start:
            since = datetime.fromisoformat(start.replace("Z", "+00:00"))
            newer = [r for r in matching if r["Timestamp"] >= since]
            in_force: dict[tuple[str, str], dict[str, Any]] = {}
            for r in matching:
                key = (r["AvailabilityZone"], r["InstanceType"])
                if r["Timestamp"] < since and (
                    key not in in_force or r["Timestamp"] > in_force[key]["Timestamp"]
                ):
                    in_force[key] = r
            matching = newer + list(in_force.values())
        matching.sort(key=lambda r: (r["Timestamp"], str(r["AvailabilityZone"])), reverse=True)
        offset = int(params.get("NextToken") or 0)
        size = min(page_size, int(params.get("MaxResults") or page_size))
        page = matching[offset : offset + size]
        items = "".join(
            "<item>"
            f"<instanceType>{r['InstanceType']}</instanceType>"
            f"<productDescription>{escape(str(r['ProductDescription']))}</productDescription>"
            f"<spotPrice>{r['SpotPrice']}</spotPrice>"
            f"<timestamp>{r['Timestamp'].strftime('%Y-%m-%dT%H:%M:%S.000Z')}</timestamp>"
            f"<availabilityZone>{r['AvailabilityZone']}</availabilityZone>"
            "</item>"
            for r in page
        )
        more = offset + size < len(matching)
        token = f"<nextToken>{offset + size}</nextToken>" if more else "<nextToken/>"
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeSpotPriceHistoryResponse xmlns="{EC2_NS}">'
            f"<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>"
            f"<spotPriceHistorySet>{items}</spotPriceHistorySet>{token}</DescribeSpotPriceHistoryResponse>"
        )
        return 200, "text/xml;charset=UTF-8", body

    return respond


def get_products_pages(price_list: list[str], page_size: int) -> Responder:
    """Pricing GetProducts (JSON protocol): PriceList entries are JSON strings, paged with NextToken."""

    def respond(params: Mapping[str, str]) -> tuple[int, str, str]:
        offset = int(json.loads(params.get("NextToken", '"0"')) or 0)
        page = price_list[offset : offset + page_size]
        answer: dict[str, object] = {"FormatVersion": "aws_v1", "PriceList": page}
        if offset + page_size < len(price_list):
            answer["NextToken"] = str(offset + page_size)
        return 200, "application/x-amz-json-1.1", json.dumps(answer)

    return respond
