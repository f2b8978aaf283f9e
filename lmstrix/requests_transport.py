"""``RequestsTransport`` (extra ``[requests]``): send lmstrix's requests with ``requests``.

Usage::

    from lmstrix import Client
    from lmstrix.requests_transport import RequestsTransport

    client = Client(transport=RequestsTransport())

It lives in :mod:`lmstrix.transport._requests`; importing this module imports requests.
"""

from __future__ import annotations

from .transport._requests import RequestsTransport

__all__ = ["RequestsTransport"]
