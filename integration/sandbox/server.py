"""Running the sandbox: in a background thread (tests, benchmarks) or as a process."""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import BaseWSGIServer, make_server

from integration.sandbox.app import create_sandbox_app
from integration.sandbox.state import Sandbox, SandboxConfig


class SandboxServer:
    """A sandbox on ``host:port`` (port 0 picks a free one) served from a background thread."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.sandbox = Sandbox(config)
        self.app = create_sandbox_app(self.sandbox)
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="sandbox", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> SandboxServer:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
