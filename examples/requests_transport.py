"""The client over ``requests`` (proxies, CA bundles, client certificates).

python examples/requests_transport.py                                 # the simulator
python examples/requests_transport.py --server https://host:1234 [--model KEY]
    [--proxy http://proxy:3128] [--ca-bundle corp-ca.pem | --insecure]

Needs ``requests`` (``pip install 'lmstrix[requests]'``). It lists the models, asks one
question, streams an answer, and shows that ``requests``' errors arrive as lmstrix's.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator, List, Optional

import _common

import lmstrix
from lmstrix.testing import FakeLMStudio, SimModel

SIM_MODEL = "example/chat-3b"


def transport_from(args: argparse.Namespace) -> lmstrix.Transport:
    """A RequestsTransport with the proxy and TLS options given on the command line."""
    from lmstrix.requests_transport import RequestsTransport

    return RequestsTransport(
        verify=False if args.insecure else (args.ca_bundle or True),
        proxies={"http": args.proxy, "https": args.proxy} if args.proxy else None,
    )


@contextlib.contextmanager
def server_url(server: Optional[str]) -> Iterator[str]:
    """``--server``, or the URL of a simulator started for the example."""
    if server:
        yield server
        return
    with FakeLMStudio([SimModel(key=SIM_MODEL, declared_context=8192)]) as fake:
        fake.preload(SIM_MODEL)
        print(f"(no --server given: using the simulator at {fake.base_url})", file=sys.stderr)
        yield fake.base_url


def main(argv: Optional[List[str]] = None) -> int:
    """Chat and stream over RequestsTransport."""
    parser = _common.parser("Use the client over requests (proxies, TLS settings).")
    parser.add_argument("--proxy", metavar="URL", help="proxy for http and https")
    parser.add_argument("--ca-bundle", metavar="PATH", help="CA bundle for the server's TLS")
    parser.add_argument("--insecure", action="store_true", help="do not check certificates")
    args = parser.parse_args(argv)
    try:
        transport = transport_from(args)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"transport: {transport!r}")
    try:
        with server_url(args.server) as url, lmstrix.Client(
            url, api_token=args.token, transport=transport
        ) as client:
            model = _common.pick_model(client, args.model)
            print(f"model: {model} ({client.server_api} API)")
            answer = client.chat(model, "What is 6*7? Reply with the number only.", temperature=0)
            print(f"chat: {answer.text.strip()!r}")
            print("stream: ", end="")
            with client.stream_chat(model, "Tell me about rivers.", max_tokens=32) as stream:
                for chunk in stream:
                    print(chunk.text, end="", flush=True)
            print()
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    # Nothing listens on port 9: requests' ConnectionError arrives as lmstrix's error.
    with lmstrix.Client("http://127.0.0.1:9", transport=transport_from(args), max_retries=0) as c:
        try:
            c.list_models()
        except lmstrix.APIConnectionError as exc:
            print(f"unreachable server: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
