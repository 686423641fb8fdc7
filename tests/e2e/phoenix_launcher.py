"""Start Arize Phoenix with its gRPC server on loopback only (run with Phoenix's venv).

Phoenix binds its OTLP/gRPC server to ``[::]:<port>`` whatever ``PHOENIX_HOST`` says;
tests must only listen on 127.0.0.1, so the bind address is rewritten before Phoenix
starts. Usage: ``<phoenix venv>/bin/python phoenix_launcher.py`` with the usual
``PHOENIX_*`` environment.
"""

from __future__ import annotations

import sys

import grpc.aio


def _loopback(add_port):  # type: ignore[no-untyped-def]
    def wrapper(self, address, *args, **kwargs):  # type: ignore[no-untyped-def]
        return add_port(self, address.replace("[::]", "127.0.0.1"), *args, **kwargs)

    return wrapper


_server = type(grpc.aio.server())
_server.add_insecure_port = _loopback(_server.add_insecure_port)  # type: ignore[method-assign]
_server.add_secure_port = _loopback(_server.add_secure_port)  # type: ignore[method-assign]

if __name__ == "__main__":
    from phoenix.server.main import main

    sys.argv = ["phoenix", "serve"]
    sys.exit(main())
