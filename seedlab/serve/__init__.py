"""`seedlab model serve`: an OpenAI-compatible server for any model reference."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from seedlab.backends import Backend


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(backend: Backend, host: str, port: int, api_key: str | None, prompt_log: Path | None,
               echo: Callable[[str], None], log_max_bytes: int = 0, log_keep: int = 3) -> None:
    """Serve `backend` until interrupted."""
    import uvicorn

    from seedlab.serve.app import create_app

    if not is_loopback(host):
        echo(f"warning: listening on {host}, reachable from other machines"
             + ("" if api_key else "; set SEEDLAB_API_KEY to require a key"))
    echo(f"serving {backend.model_id} at http://{host}:{port}/v1"
         + (f"; logging prompts to {prompt_log}" if prompt_log else "; prompt log off"))
    app = create_app(backend, api_key=api_key, prompt_log=prompt_log, log_max_bytes=log_max_bytes, log_keep=log_keep)
    uvicorn.run(app, host=host, port=port, log_level="warning")
