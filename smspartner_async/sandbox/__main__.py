"""`python -m smspartner_async.sandbox`: the sandbox on a TCP port, for demos and curl."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ._app import Sandbox
from ._faults import DEFAULT_KINDS, FAULT_KINDS, Faults
from ._push import CallbackPusher
from ._server import base_url, uvicorn_config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m smspartner_async.sandbox",
        description="Emulate the SMS Partner status API (message-status, multi-status, "
        "bulk-status, bulk-status-by-tag) with deterministic data.",
        epilog="Keys: only 'sandbox-key' by default (--api-key to change it), or any key but "
        "'bad-key' with --any-key. Tags: 'demo' (250 recipients), 'newsletter' (120), "
        "'montag' (2), 'tag-<n>' (n recipients); any other tag has none. Point a client at "
        "it with SMSPARTNER_BASE_URL=http://127.0.0.1:8000/v1.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    p.add_argument("--page-size", type=int, default=100, help="bulk-status-by-tag page size")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key", default="sandbox-key", help="the accepted key")
    key.add_argument("--any-key", action="store_true", help="accept any API key except 'bad-key'")
    p.add_argument("--language", choices=("fr", "en"), default="fr", help="error texts")
    p.add_argument("--shuffle-multi", action="store_true", help="shuffle multi-status items")
    p.add_argument("--ignore-page", action="store_true", help="always answer page 1")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of failing requests")
    p.add_argument(
        "--fault-kinds",
        default=",".join(DEFAULT_KINDS),
        help=f"comma-separated, among {','.join(FAULT_KINDS)}",
    )
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--retry-after", default="1", help="Retry-After sent with 429 and 503")
    p.add_argument("--slow-seconds", type=float, default=30.0, help="delay of 'slow' faults")
    push = p.add_argument_group(
        "delivery-report callbacks",
        "With --push-url, each pair's report is pushed to that URL when it becomes available, "
        "as urlDlr makes the platform do; a pair counts as sent the first time it is asked "
        "about (there is no send endpoint).",
    )
    push.add_argument("--push-url", help="the callback URL (your receiver's, token included)")
    push.add_argument("--push-method", choices=("POST", "GET"), default="POST")
    push.add_argument("--push-body", choices=("json", "form"), default="json")
    push.add_argument("--push-delay", type=float, default=1.0, help="seconds after the report")
    for share in ("lost", "duplicated", "reordered", "late"):
        push.add_argument(f"--push-{share}", type=float, default=0.0, help=f"share {share}")
    push.add_argument("--push-seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        faults = Faults(
            rate=args.fault_rate,
            kinds=[k for k in args.fault_kinds.split(",") if k],
            retry_after=int(args.retry_after) if args.retry_after.isdigit() else args.retry_after,
            slow_seconds=args.slow_seconds,
            seed=args.fault_seed,
        )
        sandbox = Sandbox(
            seed=args.seed,
            api_key=None if args.any_key else args.api_key,
            latency=args.latency,
            page_size=args.page_size,
            shuffle_multi=args.shuffle_multi,
            ignore_page=args.ignore_page,
            language=args.language,
            faults=faults,
        )
        config = uvicorn_config(sandbox, host=args.host, port=args.port)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn  # present: uvicorn_config imported it

    keys = "any key but 'bad-key'" if args.any_key else "the --api-key value"
    print(f"SMS Partner sandbox on {base_url(args.host, args.port)} (accepts {keys})", flush=True)
    server = uvicorn.Server(config)
    if not args.push_url:
        server.run()
        return 0
    try:
        pusher = CallbackPusher(
            sandbox,
            args.push_url,
            method=args.push_method,
            body=args.push_body,
            delay=args.push_delay,
            lost=args.push_lost,
            duplicated=args.push_duplicated,
            reordered=args.push_reordered,
            late=args.push_late,
            seed=args.push_seed,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sandbox.on_asked = pusher.track_first_asked
    print("pushing delivery reports to the --push-url", flush=True)  # not the URL: its token
    asyncio.run(_serve_pushing(server, pusher))
    return 0


async def _serve_pushing(server: Any, pusher: CallbackPusher) -> None:
    async with pusher:
        await server.serve()


if __name__ == "__main__":
    sys.exit(main())
