"""`lyricgen serve`: a local web page and JSON API for writing lyrics with loaded runs.

    lyricist = lyricgen.load("checkpoints/default")
    app = create_app([lyricist])          # an ASGI app (Starlette)
    serve_main([Path("checkpoints/default")], port=8000)   # load, then run uvicorn

Routes:

- `GET /`: the page (`lyricgen/web/index.html`, one self-contained file).
- `GET /api/runs`: the served runs with their training history (the page's curves).
- `GET /api/options`: the generation options (from `option_specs`), the server's limits
  and the rhyme groups; the page builds its form from it.
- `GET /api/forms`: the forms `--form` writes in (近体诗 and 词牌), each with its pattern,
  for the page's form picker; a request with `form` gets the form back beside its samples.
- `POST /api/generate`: a JSON object with `start` (default ""), `run` (default the first
  run) and any generation option under its snake_case name (`lines`, `line_length`,
  `acrostic`, `temperature`, `top_p`, `seed`, `num_samples`, `beam`, `rhyme`, ...).
  Answers `{"samples": [Sample.to_dict(), ...], "run": name}`. `keywords`, `theme` and
  `template` say what to write about; each sample carries its `plan` and, under a bare
  form name, the variant it keeps (`form`). A tune (填词) comes as `jianpu` (numbered
  notation, an option like the others) or as `midi` (a MIDI file, base64, with `track`):
  one line per phrase, each sample carrying `melody_fit` (every character with its note,
  tone, step and the step's class), and the answer the `melody` itself.
- `POST /api/revise`: `text` (the draft), `lines` (1-based line numbers to rewrite; lines of
  `_` and blank lines between text lines are filled anyway), `show` (alternatives per line,
  default 5), `rank` ("text" or "line"), `run`, and the generation options. Answers
  `Revision.to_dict()` (the new text, each written line's alternatives with their scores)
  with `run`. Every line not named keeps its bytes.

Every request is cheap: `LIMITS` caps length, samples, beams, lines and line length, and
`TEXT_LIMITS` the start, prefix and acrostic text. A sample is at most 500 tokens
(`LIMITS["length"]`) whether or not `length` is given: without it, lines of `line_length`
characters get lines x (line_length + 2) tokens (room for a closing punctuation mark and
the line break), and a request whose lines need more than 500 is refused; free lines (no
`line_length`) get 42 tokens a line, up to 500, and a long line ends the sample early;
no lines at all means 99 tokens, the CLI's default. So one request steps the model at most
500 times for at most 8 rows (samples or beams). Models are loaded once, before the app is
made; generation runs in a thread pool (`Lyricist.generate` keeps no per-request state),
so requests are served concurrently.

Errors are JSON `{"error": "<one line>"}`: the message a `LyricgenError` carries (the
CLI's), 400 for a bad request, 413 for a body over `MAX_BODY` bytes (sent once the rest
of the body is read and thrown away, up to `DRAIN_BODY` bytes or `DRAIN_SECONDS`, so that a
client still sending gets the answer, not a reset connection), 404/405 for an unknown route
or method, and 500 for anything unexpected (logged with its traceback; the server goes on
serving).

Starlette and uvicorn are the optional extra `lyricgen[serve]`; they are imported inside
functions, so `import lyricgen.frontend.serve` works without them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lyricgen.errors import LyricgenError

if TYPE_CHECKING:
    from starlette.requests import Request

    from lyricgen.craft.options import SamplingOptions
    from lyricgen.frontend.api import Lyricist

log = logging.getLogger(__name__)

EXTRA_MISSING = 'lyricgen serve needs the web extra: pip install "lyricgen[serve]"'
MAX_BODY = 64 * 1024  # bytes of a request body
# an over-limit body is read and thrown away up to these bounds before the 413 (see _drain)
DRAIN_BODY = 4 * 1024 * 1024  # bytes
DRAIN_SECONDS = 2.0
# upper bounds on the options that set how much work one request is
LIMITS = {"length": 500, "num_samples": 8, "beam": 8, "lines": 40, "line_length": 40,
          "candidates": 32}  # fmt: skip
TEXT_LIMITS = {
    "start": 200,
    "prefix": 500,
    "acrostic": LIMITS["lines"],
    "keywords": 200,
    "theme": 500,
    "template": 1000,
    "jianpu": 4000,
    "phrases": 200,
}  # characters
MAX_MIDI = 48 * 1024  # bytes of an uploaded MIDI file (sent base64 in the JSON body)
DRAFT_CHARS = 2000  # characters of a draft /api/revise takes
REVISE_FIELDS = ("text", "lines", "show", "rank", "run")  # /api/revise's non-option fields
FREE_LINE_CAP = 40  # tokens a line without line_length may take before `length` ends it
# the fields of /api/generate that are not options: `midi` is a MIDI file, base64, and
# `track` its melody track (1-based), for a tune uploaded instead of `jianpu` text
REQUEST_FIELDS = ("start", "run", "midi", "track")


class RequestError(LyricgenError):
    """A request the server refuses; `status` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def have_web_extra() -> bool:
    """Whether starlette and uvicorn can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("starlette", "uvicorn"))


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None, so it is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _one_line(text: str) -> str:
    """A message squeezed onto one line."""
    return " ".join(str(text).split()) or "error"


# ---------------------------------------------------------------------------------------
# requests -> options (no web framework needed: tested directly)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _json_kind(value: Any) -> str:
    """How JSON names the type of a parsed value."""
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    return "null" if value is None else kinds.get(type(value), "a number")


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body; one-line RequestErrors otherwise."""
    if len(body) > MAX_BODY:
        raise RequestError(f"request body is over {MAX_BODY // 1024} KB", 413)
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("request body is not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except ValueError as exc:  # JSONDecodeError, NaN, 1e999, an int of 5000 digits
        raise RequestError(f"request body is not valid JSON: {_one_line(str(exc))}") from None
    if not isinstance(data, dict):
        raise RequestError(f"request body must be a JSON object, not {_json_kind(data)}")
    return data


def check_limits(values: dict[str, Any]) -> None:
    """Refuse numbers and texts over the server's limits, naming the limit."""
    for name, cap in LIMITS.items():
        value = values.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap:
            raise RequestError(f"{name} is {value}; this server allows at most {cap}")
    seed = values.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and seed < 0:
        raise RequestError(f"seed is {seed}; give a number >= 0")  # numpy refuses it
    for name, cap in TEXT_LIMITS.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > cap:
            raise RequestError(
                f"{name} has {len(value)} characters; this server allows at most {cap}"
            )


def bounded_options(opts: SamplingOptions) -> SamplingOptions:
    """`opts` with a `length` that bounds the work (see the module docstring)."""
    n, cap = opts.n_lines, LIMITS["length"]
    if n is not None and n > LIMITS["lines"]:
        raise RequestError(
            f"acrostic has {n} characters; this server allows at most {LIMITS['lines']} lines"
        )
    if opts.length is not None:
        return opts
    form = opts.form_template
    if form is not None:  # its characters, marks and line breaks: never cut short
        return replace(opts, length=form.tokens + 2)
    if not n:
        return replace(opts, length=99)
    if opts.line_length is None:
        return replace(opts, length=min(n * (FREE_LINE_CAP + 2), cap))
    need = n * (opts.line_length + 2)  # a closing punctuation mark and the line break
    if need > cap:
        raise RequestError(
            f"{n} lines of {opts.line_length} characters take up to {need} tokens; this "
            f"server writes at most {cap} a sample: ask for fewer or shorter lines"
        )
    return replace(opts, length=need)


def request_options(
    values: dict[str, Any], runs: dict[str, Lyricist]
) -> tuple[Lyricist, str, SamplingOptions]:
    """The run, start text and options a /api/generate body asks for."""
    from lyricgen.craft.options import option_specs, options_from_mapping

    names = [s.name for s in option_specs()]
    unknown = sorted(set(values) - set(names) - set(REQUEST_FIELDS))
    if unknown:
        known = ", ".join([*REQUEST_FIELDS, *sorted(names)])
        raise RequestError(f"unknown field {unknown[0]!r}; known: {known}")
    start = values.get("start", "")
    run = values.get("run")
    if start is None:
        raise RequestError('start cannot be null; give a string ("" for none)')
    for field_name, value in (("start", start), ("run", run)):
        if value is not None and not isinstance(value, str):
            raise RequestError(f"{field_name} must be a str, not {value!r}")
    check_limits(values)
    if run is None:
        lyricist = next(iter(runs.values()))
    elif run in runs:
        lyricist = runs[run]
    else:
        raise RequestError(f"unknown run {run!r}; this server has {', '.join(runs)}")
    opts = options_from_mapping({k: v for k, v in values.items() if k not in REQUEST_FIELDS})
    return lyricist, start, bounded_options(opts)


def request_melody(values: dict[str, Any], opts: SamplingOptions
                   ) -> tuple[Any, SamplingOptions]:  # fmt: skip
    """The tune a /api/generate body gives (`jianpu` text, or `midi`: a MIDI file in base64
    with its `track`), checked against the server's limits, and the options with a `length`
    that holds its lines; (None, opts) without one."""
    import base64
    import binascii
    import tempfile

    from lyricgen.craft.melody_io import load_melody

    midi, track = values.get("midi"), values.get("track")
    if track is not None and (not isinstance(track, int) or isinstance(track, bool)):
        raise RequestError(f"track must be an int, not {track!r}")
    if midi is None:
        if track is not None:
            raise RequestError("track picks a track of an uploaded MIDI file; send midi too")
        if opts.jianpu is None:
            return None, opts
        melody = load_melody(jianpu=opts.jianpu)
    else:
        if opts.jianpu is not None:
            raise RequestError("midi and jianpu both give a tune; send one")
        if not isinstance(midi, str):
            raise RequestError("midi must be a MIDI file in base64 (a string)")
        try:
            data = base64.b64decode(midi, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("midi is not base64; send the file's bytes base64-encoded") from None
        if len(data) > MAX_MIDI:
            raise RequestError(f"the MIDI file is over {MAX_MIDI // 1024} KB", 413)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.mid"
            path.write_bytes(data)
            try:
                melody = load_melody(path, track=track)
            except ImportError:
                raise RequestError(
                    "this server cannot read MIDI (pip install 'lyricgen[melody]'); paste "
                    "numbered notation instead",
                    501,
                ) from None
            melody.source = "the uploaded MIDI file"
    if opts.phrases is not None:
        from lyricgen.craft.forms import parse_line_lengths

        melody = melody.regroup(parse_line_lengths(opts.phrases))
        opts = replace(opts, phrases=None)  # cut once, here: generate takes the melody as it is
    lengths = melody.lengths()
    if len(lengths) > LIMITS["lines"]:
        raise RequestError(
            f"the melody has {len(lengths)} phrases; this server writes at most "
            f"{LIMITS['lines']} lines"
        )
    longest = max(lengths)
    if longest > LIMITS["line_length"]:
        i = lengths.index(longest)
        raise RequestError(
            f"phrase {i + 1} has {longest} notes; this server writes lines of at most "
            f"{LIMITS['line_length']} characters (cut it with phrases)"
        )
    need = sum(n + 2 for n in lengths)  # a closing mark and the line break
    if need > LIMITS["length"]:
        raise RequestError(
            f"the melody's {len(lengths)} phrases take up to {need} tokens; this server "
            f"writes at most {LIMITS['length']} a sample: send part of the tune"
        )
    if opts.length is None or opts.length < need:
        opts = replace(opts, length=need)
    return melody, opts


def revise_request(values: dict[str, Any], runs: dict[str, Lyricist]) -> tuple[Lyricist, dict]:
    """The run and the `Lyricist.revise` arguments a /api/revise body asks for."""
    from lyricgen.craft.options import option_specs, options_from_mapping

    names = {s.name for s in option_specs()}
    unknown = sorted(set(values) - names - set(REVISE_FIELDS))
    if unknown:
        known = ", ".join([*REVISE_FIELDS, *sorted(names)])
        raise RequestError(f"unknown field {unknown[0]!r}; known: {known}")
    text = values.get("text")
    if not isinstance(text, str):
        raise RequestError("text must be a string: the draft to revise")
    if len(text) > DRAFT_CHARS:
        raise RequestError(
            f"text has {len(text)} characters; this server revises at most {DRAFT_CHARS}", 413
        )
    lines = values.get("lines")
    if lines is not None and (
        not isinstance(lines, list)
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in lines)
    ):
        raise RequestError("lines must be an array of line numbers, e.g. [3, 5]")
    show = values.get("show", 5)
    if not isinstance(show, int) or isinstance(show, bool) or not 0 <= show <= 16:
        raise RequestError(f"show is {show!r}; give 0 to 16")
    rank = values.get("rank", "text")
    if rank not in ("text", "line"):
        raise RequestError(f"rank is {rank!r}; choose text or line")
    run = values.get("run")
    if run is None:
        lyricist = next(iter(runs.values()))
    elif isinstance(run, str) and run in runs:
        lyricist = runs[run]
    else:
        raise RequestError(f"unknown run {run!r}; this server has {', '.join(runs)}")
    option_values = {k: v for k, v in values.items() if k not in REVISE_FIELDS}
    check_limits(option_values)
    opts = options_from_mapping(option_values)
    args = {"text": text, "lines": lines, "opts": opts, "show": show, "rank": rank,
            "max_chars": DRAFT_CHARS}  # fmt: skip
    return lyricist, args


# ---------------------------------------------------------------------------------------
# what the page reads


def run_info(lyricist: Lyricist) -> dict[str, Any]:
    """One run as /api/runs lists it: its model and its training history."""
    from lyricgen.run.files import best_epoch

    history = lyricist.history()
    best = best_epoch(history)
    return _finite(
        {
            "name": lyricist.name,
            "level": lyricist.vocab.level,
            "cell": lyricist.config.model.cell,
            "vocab": len(lyricist.vocab),
            "backend": lyricist.backend,
            "copy_index": lyricist.copy_index is not None,
            "epochs": len(history),
            "best_epoch": best.get("epoch") if best else None,
            "best_val_bpc": best["val_bpc"] if best else None,
            "history": history,
        }
    )


def options_info() -> dict[str, Any]:
    """The generation options, the server's limits and the rhyme groups (for the form)."""
    from lyricgen.craft.options import option_specs
    from lyricgen.craft.rhyme import GROUPS

    options = [
        {
            "name": s.name,
            "kind": s.kind.__name__,
            "default": s.default,
            "optional": s.optional,
            "help": s.help,
            "choices": list(s.choices) if s.choices else None,
            "max": LIMITS.get(s.name),
        }
        for s in option_specs()
    ]
    return {
        "options": options,
        "limits": {**LIMITS, **{f"{k}_chars": v for k, v in TEXT_LIMITS.items()}},
        "rhyme_groups": [{"name": name, "final": g.final} for name, g in GROUPS.items()],
    }


def forms_info() -> dict[str, Any]:
    """The forms --form writes in, with their patterns, for the page's form picker."""
    from lyricgen.craft.forms import LEGEND, all_forms

    return {"legend": LEGEND, "forms": [f.to_dict() for f in all_forms()]}


def page_html() -> bytes:
    """The page, shipped as package data."""
    from importlib.resources import files

    return (files("lyricgen") / "web" / "index.html").read_bytes()


# ---------------------------------------------------------------------------------------
# the app


def line_unit_trace(probes: dict, lyricist: Lyricist, start: str, samples: list) -> dict | None:
    """The run's strongest line-position unit drawn over each explained sample (the start's
    tokens read first); None where the run has no held-out text to find the unit on."""
    from lyricgen.craft.generate import encode_prompt
    from lyricgen.inspection import units

    probe = probes.get(lyricist.name)
    if probe is None:
        probe = probes[lyricist.name] = units.UnitProbe(lyricist.run_dir)
    unit = probe.line_unit
    if unit is None:
        return None
    vocab = lyricist.vocab
    prompt = vocab.encode(encode_prompt(start, vocab)) if start.strip() else []
    values = []
    for s in samples:
        ids = vocab.encode(s.tokens)
        values.append(probe.trace(prompt + ids, unit.name)[len(prompt) :])
    return {"unit": unit.name, "r": unit.score, "values": values}


def _require_extra() -> None:
    if not have_web_extra():
        raise LyricgenError(EXTRA_MISSING)


def _runs_by_name(lyricists: list[Lyricist]) -> dict[str, Lyricist]:
    if not lyricists:
        raise LyricgenError("lyricgen serve needs at least one run")
    runs: dict[str, Lyricist] = {}
    for lyricist in lyricists:
        if lyricist.name in runs:
            raise LyricgenError(
                f"two runs are named {lyricist.name!r} ({runs[lyricist.name].run_dir} and "
                f"{lyricist.run_dir}); serve runs whose folders have different names"
            )
        runs[lyricist.name] = lyricist
    return runs


def _too_large() -> RequestError:
    return RequestError(f"request body is over {MAX_BODY // 1024} KB", 413)


async def _drain(stream: Any, size: int) -> None:
    """Read and throw away the rest of a body that is over MAX_BODY (`size` bytes of it read
    so far), up to DRAIN_BODY bytes in all and for at most DRAIN_SECONDS.

    The 413 must reach the client: a server that answers and closes while the body is still
    arriving makes the kernel reset the connection, and a client that sends its whole body
    before reading (urllib, most scripts) then gets ECONNRESET or EPIPE instead of the answer.
    Mature servers linger too (nginx's lingering_close, Go's net/http reads up to 256 KB). An
    ASGI app can read the body only before it answers (uvicorn's `receive` says disconnect
    once the response is complete), so this runs before the 413 is sent; past the bounds the
    413 goes out with `Connection: close` and what remains is the kernel's business."""
    import anyio
    from starlette.requests import ClientDisconnect

    with anyio.move_on_after(DRAIN_SECONDS):
        try:
            async for chunk in stream:
                size += len(chunk)
                if size > DRAIN_BODY:
                    return
        except ClientDisconnect:
            return


async def _read_body(request: Any) -> bytes:
    """The request body; past MAX_BODY a 413 RequestError, raised once the rest of the body
    is drained (see `_drain`)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        # more than DRAIN_BODY cannot all be drained; a client waiting for "100 Continue"
        # has sent nothing and, answered at once, sends nothing
        expects = request.headers.get("expect", "").lower() == "100-continue"
        if int(declared) <= DRAIN_BODY and not expects:
            await _drain(request.stream(), 0)
        raise _too_large()
    chunks, size = [], 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > MAX_BODY:
            await _drain(stream, size)
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


def _error(message: str, status: int) -> Any:
    """The JSON error answer: `{"error": "<one line>"}`."""
    # after a 413 the connection may still carry the unread rest of the body: close it
    headers = {"connection": "close"} if status == 413 else None
    return _json({"error": _one_line(message)}, status, headers)


def similar_request(query: Any, runs: dict[str, Lyricist]) -> tuple[Lyricist, str, int]:
    """The run, token and number of neighbours a /api/similar query asks for."""
    lyricist = runs.get(query.get("run") or next(iter(runs)))
    if lyricist is None:
        raise RequestError(f"unknown run {query.get('run')!r}; this server has {', '.join(runs)}")
    token = query.get("token", "")
    if not token.strip():
        raise RequestError("token is empty; give a token of the vocabulary, e.g. 月")
    try:
        top = int(query.get("top", "10"))
    except ValueError:
        raise RequestError(f"top is {query.get('top')!r}; give a whole number") from None
    if not 1 <= top <= 100:
        raise RequestError(f"top is {top}; give 1 to 100")
    return lyricist, token.strip(), top


class _Handlers:
    """The routes' handlers over the runs, loaded once, and what the page reads of them (read
    once too, like the models)."""

    def __init__(self, lyricists: list[Lyricist]) -> None:
        self.runs = _runs_by_name(lyricists)
        self.probes: dict[str, Any] = {}  # run name -> units.UnitProbe, made on the first --explain
        self.infos = [run_info(lyricist) for lyricist in self.runs.values()]
        self.options = options_info()
        self.forms = forms_info()
        self.page = page_html()

    async def index(self, request: Request) -> Any:
        from starlette.responses import Response

        return Response(self.page, media_type="text/html; charset=utf-8")

    async def list_runs(self, request: Request) -> Any:
        return _json(self.infos)

    async def list_options(self, request: Request) -> Any:
        return _json(self.options)

    async def list_forms(self, request: Request) -> Any:
        return _json(self.forms)

    async def generate(self, request: Request) -> Any:
        try:
            return _json(await self._generated(request))
        except RequestError as exc:
            return _error(str(exc), exc.status)
        except LyricgenError as exc:  # the CLI's one-line messages: bad options, start text
            return _error(str(exc), 400)
        except Exception as exc:  # noqa: BLE001 - nothing a client sends may stop the server
            log.exception("POST /api/generate failed")
            return _error(f"internal error: {type(exc).__name__}: {exc}", 500)

    async def _generated(self, request: Request) -> dict[str, Any]:
        """The answer's body: the samples, and the form and line-unit trace when asked."""
        from starlette.concurrency import run_in_threadpool

        values = parse_body(await _read_body(request))
        lyricist, start, opts = request_options(values, self.runs)
        melody, opts = request_melody(values, opts)
        if melody is None:
            samples = await run_in_threadpool(lyricist.generate, start, opts)
        else:
            samples = await run_in_threadpool(
                functools.partial(lyricist.generate, start, opts, melody=melody)
            )
        body = {
            "samples": [_finite(s.to_dict()) for s in samples],
            "run": lyricist.name,
            "start": start,
        }
        if opts.form is not None:
            body["form"] = opts.form_template.to_dict()
        if melody is not None:
            body["melody"] = melody.to_dict()
        if opts.explain:
            trace = await run_in_threadpool(line_unit_trace, self.probes, lyricist, start, samples)
            if trace is not None:
                body["cell"] = _finite(trace)  # the JSON field keeps its 0.3 name
        return body

    async def revise(self, request: Request) -> Any:
        from starlette.concurrency import run_in_threadpool

        try:
            values = parse_body(await _read_body(request))
            lyricist, args = revise_request(values, self.runs)
            r = await run_in_threadpool(lambda: lyricist.revise(**args))
            return _json({**_finite(r.to_dict()), "run": lyricist.name})
        except RequestError as exc:
            return _error(str(exc), exc.status)
        except LyricgenError as exc:
            return _error(str(exc), 400)
        except Exception as exc:  # noqa: BLE001 - nothing a client sends may stop the server
            log.exception("POST /api/revise failed")
            return _error(f"internal error: {type(exc).__name__}: {exc}", 500)

    async def similar(self, request: Request) -> Any:
        from starlette.concurrency import run_in_threadpool

        from lyricgen.inspection.neighbours import similar as nearest_tokens

        try:
            lyricist, token, top = similar_request(request.query_params, self.runs)
            return _json(await run_in_threadpool(nearest_tokens, lyricist.run_dir, token, top))
        except RequestError as exc:
            return _error(str(exc), exc.status)
        except LyricgenError as exc:
            return _error(str(exc), 400)


async def _http_error(request: Request, exc: Exception) -> Any:
    """404, 405 and the other errors Starlette raises, as JSON."""
    return _error(getattr(exc, "detail", None) or "error", getattr(exc, "status_code", 500))


async def _server_error(request: Request, exc: Exception) -> Any:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(f"internal error: {type(exc).__name__}", 500)


def create_app(lyricists: list[Lyricist]) -> Any:
    """The ASGI app serving the page and the API for these loaded runs."""
    _require_extra()
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    h = _Handlers(lyricists)
    routes = [
        Route("/", h.index, methods=["GET"]),
        Route("/api/runs", h.list_runs, methods=["GET"]),
        Route("/api/options", h.list_options, methods=["GET"]),
        Route("/api/forms", h.list_forms, methods=["GET"]),
        Route("/api/generate", h.generate, methods=["POST"]),
        Route("/api/revise", h.revise, methods=["POST"]),
        Route("/api/similar", h.similar, methods=["GET"]),
    ]
    return Starlette(
        routes=routes, exception_handlers={HTTPException: _http_error, Exception: _server_error}
    )


# ---------------------------------------------------------------------------------------
# the command


def load_runs(checkpoints: list[Path], backend: str = "auto", device: str = "auto") -> list:
    """Every run, loaded once (when none is given: `checkpoints/default` once trained, else
    the shipped verse model)."""
    import lyricgen

    runs = checkpoints or [None]
    return [lyricgen.load(path, backend, device) for path in runs]


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; a one-line LyricgenError when it cannot be had."""
    if not 0 <= port <= 65535:
        raise LyricgenError(f"--port is {port}; give 0 to 65535 (0: any free port)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise LyricgenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise LyricgenError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port"
        ) from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http:// address a listening socket answers at."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def single_threaded_blas() -> bool:
    """Give each BLAS call one thread (unless the environment says otherwise); True when
    it took effect, i.e. numpy was not imported yet.

    The server runs requests side by side in threads; OpenBLAS's own threads on top of
    them oversubscribe the cores: on 2 cores, 10 concurrent 4 x 7 requests on a
    512-unit GRU took 40 s instead of 1.5 s (limiting threads at run time did not help:
    it must be set before OpenBLAS starts). See benchmarks/serve_latency.py.
    """
    import os
    import sys

    if "numpy" in sys.modules:
        return False
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    return True


def serve_main(checkpoints: list[Path], host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load every run, print where the page is, and serve until Ctrl-C."""
    _require_extra()
    if not single_threaded_blas():
        log.warning("numpy was imported before serve_main: BLAS may oversubscribe the cores")
    import uvicorn

    runs = load_runs(checkpoints)
    app = create_app(runs)
    sock = listen(host, port)
    n = len(runs)
    print(f"serving {n} run{'s' if n != 1 else ''} at {url_of(sock)}", flush=True)
    for run in runs:
        print(f"  {run.label}", flush=True)
    config = uvicorn.Config(app, log_level="warning")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
