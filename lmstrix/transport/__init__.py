"""How bytes reach the server: the ``Transport`` protocol and the stdlib transport.

The requests transport (extra ``[requests]``) lives in :mod:`lmstrix.requests_transport`
and is never imported from here.
"""

from __future__ import annotations

from ._stdlib import BufferedResponse, Response, StdlibTransport, Transport, connection_error

__all__ = ["BufferedResponse", "Response", "StdlibTransport", "Transport", "connection_error"]
