"""The contributor page's HTTP side: one static page and a small JSON API, every call carrying the session token."""

from __future__ import annotations

import hmac
import json
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

from seedlab.backends import Backend
from seedlab.config import Settings
from seedlab.errors import SeedlabError
from seedlab.ui import _repo
from seedlab.ui._form import check_form, data_to_form, form_to_data, to_yaml, write_scratch

TOKEN_HEADER = "X-Seedlab-Token"
MAX_JSON = 1 << 20  # a form is a few KiB; bigger bodies are refused before they are parsed
PREVIEW_UNITS = 3
Models = Callable[[], tuple[Backend, Any]]  # the teacher and the SDG judge (None: the teacher judges)


def create_app(settings: Settings, token: str, models: Models, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The page and its API over the configured taxonomy and document repositories; `models` opens the teacher and
    judge on the first preview. `allowed_hosts` guards against DNS rebinding (None: any Host header)."""
    app = FastAPI(title="seedlab ui", docs_url=None, redoc_url=None, openapi_url=None)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    api = _Api(settings, models)
    app.state.opened = api.opened  # the models a preview opened, for the caller to close when the server stops

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        refused = _refusal(request, token)
        return refused if refused is not None else await call_next(request)

    @app.exception_handler(SeedlabError)
    async def user_error(_request: Request, exc: SeedlabError) -> JSONResponse:
        # the one user-facing error type: its message (and the form field it concerns); nothing was written
        return JSONResponse({"error": str(exc), "field": getattr(exc, "field", "")}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}", "field": ""}, status_code=400)

    app.get("/", response_class=HTMLResponse)(lambda: _static("index.html"))
    app.get("/static/{name}")(_static_file)
    app.get("/api/state")(api.state)
    app.get("/api/leaf")(api.leaf)
    app.post("/api/check")(api.check)
    app.post("/api/upload")(api.upload)
    app.post("/api/preview")(api.preview)
    app.post("/api/commit")(api.commit)
    return app


def _refusal(request: Request, token: str) -> Response | None:
    """The answer to a request without the token, or with a body over its limit; None lets it through."""
    if request.url.path.startswith("/static/"):
        return None  # the page's own code and styles; no data
    given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        message = "missing or wrong token: open the address `seedlab ui` printed, with its ?token=..."
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=403)
        return HTMLResponse(f"<!doctype html><title>seedlab ui</title><p>{message}</p>", status_code=403)
    size = request.headers.get("content-length")
    limit = _repo.MAX_UPLOAD if request.url.path == "/api/upload" else MAX_JSON
    if size is not None and (not size.isdigit() or int(size) > limit):
        return JSONResponse({"error": f"request body over {limit >> 20} MiB; nothing was written"}, status_code=413)
    return None


def _static_file(name: str) -> Response:
    types = {"app.js": "text/javascript", "style.css": "text/css"}
    if name not in types:
        return JSONResponse({"error": "not found"}, status_code=404)
    return Response(_static(name), media_type=types[name])


class _Api:
    """The page's API: one method per route, over the configured repositories."""

    def __init__(self, settings: Settings, models: Models) -> None:
        self.settings, self.models = settings, models
        self.taxonomy, self.docs = settings.taxonomy_path, settings.docs_path
        self.cache = settings.home.cache / "docs"
        self.opened: list[tuple[Backend, Any]] = []
        self._models_lock = threading.Lock()

    def state(self) -> dict[str, Any]:
        return {**_repo.tree(self.taxonomy), "documents": _repo.documents(self.docs)}

    def leaf(self, path: str) -> dict[str, Any]:
        from seedlab.taxonomy import read_yaml

        file = _repo.leaf_file(self.taxonomy, path)
        parsed, problems = read_yaml(file, path)
        if parsed is None:
            raise _repo.RepoError(f"{path}: {problems[0].message}; fix it with `seedlab taxonomy validate`")
        return {"form": data_to_form(parsed.data, file.relative_to(self.taxonomy.resolve()).as_posix())}

    async def check(self, request: Request) -> dict[str, Any]:
        folder, text, problems = check_form(await _json(request), self.cache, self.taxonomy)
        return {"folder": folder, "yaml": text, "problems": [asdict(p) for p in problems],
                "errors": sum(p.level == "error" for p in problems)}

    async def upload(self, request: Request, name: str) -> dict[str, Any]:
        data = bytearray()
        async for part in request.stream():  # counted as it arrives: a body without Content-Length is capped too
            data += part
            if len(data) > _repo.MAX_UPLOAD:
                raise _repo.RepoError(f"{name} is over {_repo.MAX_UPLOAD >> 20} MiB; nothing was written")
        return _repo.upload(self.docs, name, bytes(data))

    async def preview(self, request: Request) -> StreamingResponse:
        form = await _json(request)
        folder, _ = self._valid(form, "fix the form first")
        lines = _preview_lines(self, form_to_data(form), folder)
        return StreamingResponse(lines, media_type="application/x-ndjson")

    def open_models(self) -> tuple[Backend, Any]:
        """The teacher and judge, opened once however many previews ask at the same moment."""
        with self._models_lock:
            if not self.opened:
                self.opened.append(self.models())
            return self.opened[0]

    async def commit(self, request: Request) -> dict[str, Any]:
        body = await _json(request)
        form = body.get("form")
        if not isinstance(form, dict):
            raise SeedlabError("the request needs the form")
        folder, text = self._valid(form, "the seed file has errors")
        done = _repo.commit_leaf(self.taxonomy, folder, text, str(body.get("branch") or ""),
                                 str(body.get("message") or ""), str(form.get("created_by") or ""), self.cache)
        return asdict(done)

    def _valid(self, form: dict[str, Any], what: str) -> tuple[str, str]:
        folder, text, problems = check_form(form, self.cache, self.taxonomy)
        errors = [p.message for p in problems if p.level == "error"]
        if errors:
            raise SeedlabError(f"{what}: {len(errors)} error(s), the first: {errors[0]}")
        return folder, text


async def _json(request: Request) -> dict[str, Any]:
    body = bytearray()
    async for part in request.stream():  # counted as it arrives: a chunked body has no Content-Length to check
        body += part
        if len(body) > MAX_JSON:
            raise SeedlabError(f"request body over {MAX_JSON >> 20} MiB; nothing was written")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SeedlabError(f"the request is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SeedlabError("the request must be a JSON object")
    return data


def _preview_lines(api: _Api, data: dict[str, Any], folder: str) -> Iterator[str]:
    """NDJSON: one line per candidate (kept with its checks and rating, or dropped with the reason), then a total."""
    from seedlab.sdg import preview
    from seedlab.taxonomy import load_leaf

    kept = dropped = 0
    try:
        if not api.opened:
            yield json.dumps({"status": "loading the teacher and judge (the first preview only)"}) + "\n"
        teacher, judge = api.open_models()
        yield json.dumps({"status": f"asking the teacher: {PREVIEW_UNITS} units of this leaf's pipeline"}) + "\n"
        with tempfile.TemporaryDirectory(prefix="seedlab-preview-") as scratch:
            write_scratch(Path(scratch), folder, data, to_yaml(data), api.taxonomy)
            leaf = load_leaf(Path(scratch), f"{folder}/qna.yaml", api.cache)
        for record in preview(api.settings, leaf, teacher, judge, PREVIEW_UNITS):
            line = _candidate(record)
            kept += line["kept"]
            dropped += not line["kept"]
            yield json.dumps(line, ensure_ascii=False) + "\n"
    except SeedlabError as exc:
        yield json.dumps({"error": str(exc)}) + "\n"
        return
    except Exception as exc:  # a bug: the page learns that the preview failed, the terminal gets the traceback
        traceback.print_exc()
        yield json.dumps({"error": f"the preview failed ({type(exc).__name__}: {exc}); see the terminal"}) + "\n"
        return
    yield json.dumps({"done": True, "kept": kept, "dropped": dropped}) + "\n"


def _candidate(record: dict[str, Any]) -> dict[str, Any]:
    sample = record.get("sample")
    line: dict[str, Any] = {"id": record["id"], "kept": sample is not None, "passed": record.get("passed", [])}
    if record.get("drop"):
        line["drop"] = {"check": record["drop"][0], "reason": record["drop"][1]}
    if sample is not None:
        messages = sample["messages"]
        meta = sample["metadata"]
        line |= {"question": messages[0]["content"], "answer": messages[1]["content"]}
        judge = meta.get("judge") or {}
        if judge.get("rating") is not None:
            line["rating"] = judge["rating"]
        if meta.get("fact"):
            line["fact"] = meta["fact"]
    return line


def _static(name: str) -> str:
    return resources.files("seedlab.ui").joinpath("static", name).read_text(encoding="utf-8")
