"""The ASGI app: the page, its assets and the JSON API (documented in the README, section gated serve).

Every answer is JSON with an ``error`` line when something is wrong (never a
traceback); every response carries a Content-Security-Policy that lets the
page run scripts from this server only and talk to nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import analysis, generate, matches, payload
from .catalog import Served
from .queue import Busy, WorkQueue

TEXT_LIMIT = 20_000  # characters of text a request may carry
BODY_LIMIT = 4 * TEXT_LIMIT + 4096  # bytes: the text in UTF-8 at worst, plus the rest of the JSON
TELLING = 8  # units sent by default per gate
STREAM_UNITS = 16  # units sent per generated character
STREAM_CHUNK = 4  # characters sampled per turn on a worker
COMPARE_UNITS = 4
LANGUAGES = ("en", "de")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
ASSETS = {"app.js": "text/javascript", "strings.js": "text/javascript", "colors.js": "text/javascript",
          "labels.js": "text/javascript", "style.css": "text/css", "index.html": "text/html",
          "icon.svg": "image/svg+xml"}
GENERATED = {"labels.js"}  # made here, not read from static/


def labels_script() -> str:
    """``labels.js``: the tour's figure labels (``gated.viz.lang``), which the page's gate names,
    "mean" and "unit" read too, so that the two stay one set of words."""
    from ..viz.lang import LABELS

    return f"// Made by gated.serve from gated/viz/lang.py.\nwindow.GATED_LABELS = {json.dumps(LABELS)};\n"


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def error_response(status: int, message: str, **extra) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response, streamed ones included."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(served: dict[str, Served], lang: str = "en", workers: int = 2, waiting: int = 256,
               log=print) -> Starlette:
    """The app for the runs in ``served`` (from ``catalog.load_all``); builds their match indexes first,
    one run per worker at a time (the model runs release the GIL)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda run: prepare(run, log), served.values()))
    log(f"match index ready in {time.perf_counter() - started:.1f} s")
    queue = WorkQueue(workers, waiting)
    api = Api(served, queue, lang)
    routes = [
        Route("/", api.page), Route("/static/{name}", api.asset),
        Route("/api/config", api.config), Route("/api/runs", api.runs),
        Route("/api/read", api.read, methods=["POST"]), Route("/api/match", api.match, methods=["POST"]),
        Route("/api/compare", api.compare, methods=["POST"]), Route("/api/generate", api.generate),
    ]
    handlers = {HTTPException: _http_error, ApiError: _api_error, Busy: _busy, Exception: _unexpected}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        queue.close()

    return SecurityHeaders(Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan))


def prepare(run: Served, log=print) -> None:
    """The match index over the run's test split, and the units a generation streams."""
    if "index" in run.extra:
        return
    index = matches.build(run)
    run.extra["index"] = index
    run.extra["stream_units"] = [int(u) for u in (-index.spread()).argsort(kind="stable")[:STREAM_UNITS]]
    log(f"indexed {run.name}: {len(index.documents):,} test passages, {index.size:,} tokens, "
        f"in {index.seconds:.1f} s")


async def _http_error(request, error: HTTPException):
    messages = {404: f"nothing here: {request.url.path}; the page is at /, the API under /api (GET /api/runs)",
                405: f"{request.method} is not allowed on {request.url.path}"}
    return error_response(error.status_code, messages.get(error.status_code, str(error.detail)))


async def _api_error(request, error: ApiError):
    return error_response(error.status, error.message, **error.extra)


async def _busy(request, error: Busy):
    return error_response(503, "the server is busy: too many requests are waiting; try again in a second")


async def _unexpected(request, error: Exception):
    return error_response(500, "the server failed on this request; its log says why")


# -- reading the request --------------------------------------------------------------------------


async def _body(request: Request) -> dict:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > BODY_LIMIT:
        raise ApiError(413, f"the request is too large; a text may have at most {TEXT_LIMIT:,} characters",
                       limit=TEXT_LIMIT)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > BODY_LIMIT:
            raise ApiError(413, f"the request is too large; a text may have at most {TEXT_LIMIT:,} characters",
                           limit=TEXT_LIMIT)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the body is not valid JSON ({error}); send an object such as "
                            '{"run": "sentiment-lstm", "text": "..."}') from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the body is a JSON {type(data).__name__}; send an object such as "
                            '{"run": "sentiment-lstm", "text": "..."}')
    return data


def _field(data: dict, name: str, kind, default=None, required: bool = True):
    if name not in data or data[name] is None:
        if required:
            raise ApiError(422, f"the field {name!r} is missing")
        return default
    value = data[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ApiError(422, f"the field {name!r} must be {_KIND_NAMES[kind]}, not {type(value).__name__}")
    return value


_KIND_NAMES = {str: "text", int: "a whole number", float: "a number", list: "a list", bool: "true or false"}


def _text(data: dict, name: str = "text") -> str:
    text = _field(data, name, str)
    if len(text) > TEXT_LIMIT:
        raise ApiError(413, f"the text has {len(text):,} characters; the limit is {TEXT_LIMIT:,}", limit=TEXT_LIMIT)
    return text


class Api:
    def __init__(self, served: dict[str, Served], queue: WorkQueue, lang: str) -> None:
        self.served, self.queue, self.lang = served, queue, lang

    def _run(self, name) -> Served:
        if not isinstance(name, str) or name not in self.served:
            shown = name[:80] if isinstance(name, str) else name
            raise ApiError(404, f"no run named {shown!r} is served; GET /api/runs lists those that are")
        return self.served[name]

    # -- the page --------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        return self._asset_response("index.html")

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS or name == "index.html":
            raise ApiError(404, "no such file")
        return self._asset_response(name)

    def _asset_response(self, name: str) -> Response:
        if name in GENERATED:
            data = labels_script().encode()
        else:
            data = resources.files(__package__).joinpath("static", name).read_bytes()
        kind = ASSETS[name] + "; charset=utf-8"
        return Response(data, media_type=kind, headers={"Cache-Control": "no-cache"})

    async def config(self, request: Request) -> Response:
        return JSONResponse({"lang": self.lang, "languages": list(LANGUAGES), "text_limit": TEXT_LIMIT})

    async def runs(self, request: Request) -> Response:
        return JSONResponse({"runs": [run.describe() for run in self.served.values()]})

    # -- reading ---------------------------------------------------------------------------------

    async def read(self, request: Request) -> Response:
        data = await _body(request)
        served = self._run(_field(data, "run", str))
        text = _text(data)
        encoding = _field(data, "encoding", str, "base64", required=False)
        if encoding not in payload.ENCODINGS:
            raise ApiError(422, f"the field 'encoding' must be one of {', '.join(payload.ENCODINGS)}")
        drop = _indices(_field(data, "drop", list, [], required=False), "drop")
        units = data.get("units", "telling")
        return _json(await self.queue.run(self._read_json, served, text, units, drop, encoding))

    def _read_json(self, *args) -> bytes:
        return payload.to_json(self._read(*args))

    def _read(self, served: Served, text: str, units, drop: list[int], encoding: str) -> dict:
        tokens, unread = analysis.tokens_of(served, text)
        dropped = set(drop)
        kept = [t for i, t in enumerate(tokens) if i not in dropped]
        found = _checked(analysis.analyse, served, kept, unread, TELLING)
        chosen = _units(units, found.telling, served.model.config.hidden_size)
        return payload.reading(served, found, chosen, encoding, dropped=sorted(dropped) or None)

    async def match(self, request: Request) -> Response:
        data = await _body(request)
        served = self._run(_field(data, "run", str))
        text = _text(data)
        start, end = _field(data, "start", int), _field(data, "end", int)
        threshold = _field(data, "threshold", float, 0.3, required=False)
        if not -1.0 <= threshold <= 1.0:
            raise ApiError(422, f"the threshold must be between -1 and 1 (hidden states are), got {threshold}")
        return _json(await self.queue.run(lambda: payload.to_json(self._match(served, text, start, end, threshold))))

    def _match(self, served: Served, text: str, start: int, end: int, threshold: float) -> dict:
        tokens, unread = analysis.tokens_of(served, text)
        if not 0 <= start <= end < len(tokens):
            raise ApiError(422, f"the span {start}..{end} is not within the text's {len(tokens)} tokens "
                                "(counted from 0, end included)")
        if end - start + 1 > matches.MAX_SPAN:
            raise ApiError(422, f"the span covers {end - start + 1} tokens; select at most {matches.MAX_SPAN}")
        found = _checked(analysis.analyse, served, tokens, unread, TELLING)
        on = analysis.units_on(found, start, end, threshold)
        index = served.extra["index"]
        return {"run": served.name, "span": tokens[start : end + 1], "start": start, "end": end,
                "threshold": threshold, "units": on, "indexed": index.size,
                "matches": index.search(on, end - start + 1, threshold)}

    async def compare(self, request: Request) -> Response:
        data = await _body(request)
        text = _text(data)
        names = _field(data, "runs", list, None, required=False)
        if names is None:
            first = self._run(data["run"]) if "run" in data else next(iter(self.served.values()))
            names = [s.name for s in self.served.values() if s.task_name == first.task_name]
        runs = [self._run(name) for name in names[:6]]
        readings = []
        for served in runs:  # one queue turn each: a comparison never holds a worker for three models
            readings.append(await self.queue.run(self._read_json, served, text, "telling", [], "base64"))
        return _json(b'{"readings":[' + b",".join(readings) + b"]}")

    # -- generating ------------------------------------------------------------------------------

    async def generate(self, request: Request) -> Response:
        query = request.query_params
        served = self._run(query.get("run"))
        prime = query.get("prime", "\n")
        try:
            temperature = float(query.get("temperature", "0.8"))
            length = int(query.get("length", "300"))
            seed = int(query.get("seed", str(random.randrange(2**31))))
        except ValueError:
            raise ApiError(422, "temperature must be a number, length and seed whole numbers") from None
        try:
            generate.check(served, prime, temperature, length)
        except ValueError as error:
            raise ApiError(422, str(error)) from None
        units = served.extra.get("stream_units", list(range(STREAM_UNITS)))
        writer = await self.queue.run(generate.Writer, served, prime, temperature, seed, units)
        kinds = [{"name": name, "kind": "gate" if served.model.rnn.kind.is_gate(name) else "state"}
                 for name in writer.names]
        start = {"run": served.name, "prime": prime, "seed": seed, "units": units, "gates": kinds}
        stream = self._stream(writer, length, start)
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _stream(self, writer, length: int, start: dict):
        yield _event("start", start)
        written, started = 0, time.perf_counter()
        while written < length:
            try:
                steps = await self.queue.run(writer.steps, min(STREAM_CHUNK, length - written))
            except Busy:  # a full queue delays a stream already running; it does not cut it off
                await asyncio.sleep(0.05)
                continue
            for step in steps:
                yield _event("char", step)
            written += len(steps)
        yield _event("end", {"length": written, "seconds": round(time.perf_counter() - started, 3)})


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=True)}\n\n"


def _checked(function, *args):
    """Model work whose ValueError (a text with no words) is the reader's to fix: a 422, not a 500."""
    try:
        return function(*args)
    except ValueError as error:
        raise ApiError(422, str(error)) from None


def _indices(values: list, name: str) -> list[int]:
    if len(values) > 1000 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise ApiError(422, f"the field {name!r} must be a list of token positions (whole numbers from 0)")
    return values


def _units(units, telling: list[int], hidden_size: int) -> list[int]:
    """The units to send: the telling ones, all of them, or those listed."""
    if units == "telling":
        return telling
    if units == "all":
        return list(range(hidden_size))
    if isinstance(units, list) and units and all(
            isinstance(u, int) and not isinstance(u, bool) and 0 <= u < hidden_size for u in units):
        return units[:hidden_size]
    raise ApiError(422, f"the field 'units' must be \"telling\", \"all\" or a list of unit numbers "
                        f"from 0 to {hidden_size - 1}")
