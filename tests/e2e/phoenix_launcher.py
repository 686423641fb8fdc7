"""Start Arize Phoenix with its gRPC server on loopback only (run with Phoenix's venv).

Phoenix binds its OTLP/gRPC server to ``[::]:<port>`` whatever ``PHOENIX_HOST`` says;
tests must only listen on 127.0.0.1, so the bind address is rewritten before Phoenix
starts. Usage: ``<phoenix venv>/bin/python phoenix_launcher.py`` with the usual
``PHOENIX_*`` environment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import grpc.aio  # type: ignore[import-untyped]


def _loopback(add_port: Callable[..., int]) -> Callable[..., int]:
    def wrapper(self: object, address: str, *args: Any, **kwargs: Any) -> int:
        return add_port(self, address.replace("[::]", "127.0.0.1"), *args, **kwargs)

    return wrapper


_server = type(grpc.aio.server())
_server.add_insecure_port = _loopback(_server.add_insecure_port)
_server.add_secure_port = _loopback(_server.add_secure_port)

if __name__ == "__main__":
    # Phoenix is installed in its own venv only (see the module docstring).
    from phoenix.server.main import main  # type: ignore[import-not-found]

    sys.argv = ["phoenix", "serve"]
    sys.exit(main())
