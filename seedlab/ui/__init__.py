"""`seedlab ui`: a local page where a contributor writes, checks, previews and commits a seed file."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from seedlab.config import Settings
from seedlab.ui._app import create_app
from seedlab.ui._form import FormError, check_form, data_to_form, form_to_data, to_yaml

__all__ = ["LOOPBACK_HOSTS", "FormError", "check_form", "create_app", "data_to_form", "form_to_data", "open_models",
           "run_ui", "to_yaml"]

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def open_models(settings: Settings) -> tuple[Any, Any]:
    """The teacher and SDG judge `data generate` would use (judge None: the teacher judges)."""
    from seedlab.backends import endpoint_urls, make_backend
    from seedlab.judge.judging import open_judge

    urls = endpoint_urls(settings, ())
    teacher = make_backend(settings, None if urls else settings.config.sdg.teacher, urls)
    full = settings.config.sdg.pipeline == "full"
    judge = open_judge(settings) if full and settings.config.eval.judge and not urls else None
    return teacher, judge


def run_ui(settings: Settings, host: str, port: int, echo: Callable[[str], None]) -> None:
    """Serve the page until interrupted; the address printed carries a fresh token every API call must present."""
    import uvicorn

    from seedlab.serve import is_loopback

    token = secrets.token_urlsafe(24)
    local = is_loopback(host)
    if not local:
        echo(f"warning: listening on {host}: anyone who can reach this machine and knows the token can commit")
    hosts = [*LOOPBACK_HOSTS, host, f"[{host}]"] if local else None  # 127.0.0.2 and the like are loopback too
    app = create_app(settings, token, lambda: open_models(settings), hosts)
    shown = f"[{host}]" if ":" in host else host
    echo(f"seedlab ui for {settings.taxonomy_path}: open http://{shown}:{port}/?token={token}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        for teacher, judge in app.state.opened:
            teacher.close()
            if judge is not None:
                judge.close()
