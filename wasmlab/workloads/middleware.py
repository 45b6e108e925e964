"""The gateway middleware as components: the workloads the seed's gateway actually runs.

Two guests implement ``guests/middleware/middleware.wit`` (on-request and on-response, each
returning continue / reject(status) / modify(headers, status)) with the same policy
(``guests/middleware/policy.py``):

``middleware``
    hand-written in the component text format (``middleware.wat``, ~2 KB): the canonical ABI
    implemented directly, so a call costs the runtime and the binding, not a language runtime.
``middleware-py``
    the policy in Python, compiled by componentize-py (~18 MB: CPython inside, WASI preview 2
    imported).  Built from the repository's sources by ``wasmlab workloads fetch`` (or
    ``make components``) into ``data/workloads/cache/build/``, keyed by the sources' hash and the
    componentize-py version; never committed.

A request is one call of one attach point with one of :data:`REQUESTS`; its expected action is
computed by the policy in Python, so a guest that skips work or decides differently is caught.  Each
request is a recipe in WAVE (:func:`request_recipe`: ``invoke: 'on-request({method: "GET", ...})'`` and
``expect: {result: ...}``), parsed and typed by the component's own types like any recipe's, so the lab's
own requests take the path a user's do (``wasmlab workloads recipe middleware:request=public`` prints it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component

from wasmlab.errors import ConfigError, allowed
from wasmlab.workloads import introspect
from wasmlab.workloads.catalog import cache_dir
from wasmlab.workloads.model import Workload
from wasmlab.workloads.signature import Case, Signature
from wasmlab.workloads.wave import format_call, format_value, parse_call, parse_value, typed, typed_args

GUEST_DIR = Path(__file__).parent / "guests" / "middleware"
WIT_DIR = GUEST_DIR / "wit"
WORLD = "middleware"
COMPONENTIZE_PY = "componentize-py"

# name -> (attach point, description).  The header count and body size are parameters of the workload.
REQUESTS = {
    "auth-ok": ("on-request", "GET /v1/items with a valid x-api-key: continues with x-request-id set, the key removed"),
    "auth-missing": ("on-request", "POST /v1/orders without x-api-key: rejected with 401"),
    "public": ("on-request", "GET /health (not under /v1): continues with x-request-id set"),
    "response-500": ("on-response", "a 500 from upstream: rewritten to 503"),
    "response-200": ("on-response", "a 200 from upstream: continues unchanged"),
}


def _policy() -> Any:
    spec = importlib.util.spec_from_file_location("wasmlab_middleware_policy", GUEST_DIR / "policy.py")
    if spec is None or spec.loader is None:
        raise ConfigError(f"the middleware policy {GUEST_DIR / 'policy.py'} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


policy = _policy()


def _headers(count: int, first: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``count`` headers: ``first``, then realistic filler (a gateway sees 8-20 on a typical request)."""
    filler = [("accept", "application/json"), ("user-agent", "wasmlab/0.1 (+https://example.invalid)"),
              ("accept-encoding", "gzip, deflate, br"), ("content-type", "application/json"),
              ("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https"), ("cache-control", "no-cache"),
              ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    headers = list(first)
    i = 0
    while len(headers) < count:
        name, value = filler[i % len(filler)]
        headers.append((name if i < len(filler) else f"{name}-{i // len(filler)}", value))
        i += 1
    return headers[:count]


def _body(size: int) -> bytes:
    pattern = b'{"item": "wasmlab", "quantity": 1}\n'
    return (pattern * (size // len(pattern) + 1))[:size]


def _action(decision: tuple[Any, ...]) -> Case:
    if decision[0] == "reject":
        return Case("reject", decision[1])
    if decision[0] == "modify":
        return Case("modify", {"set-headers": list(decision[1]), "remove-headers": list(decision[2]), "status": decision[3]})
    return Case("continue")


def request_call(request: str = "auth-ok", headers: int = 8, body: int = 512) -> tuple[str, tuple[Any, ...], Case]:
    """The export to call, its arguments (plain values) and the action the policy expects."""
    if request not in REQUESTS:
        raise allowed(request, "middleware request", list(REQUESTS))
    if not 0 <= headers <= 10_000:
        raise ConfigError(f"middleware headers={headers} is out of range; allowed: 0..10000")
    if not 0 <= body <= 16 << 20:
        raise ConfigError(f"middleware body={body} is out of range; allowed: 0..{16 << 20} bytes")
    entry = REQUESTS[request][0]
    payload = _body(body)
    if entry == "on-response":
        status = 500 if request == "response-500" else 200
        hs = _headers(headers, [])
        return entry, ({"status": status, "headers": hs, "body": payload},), _action(policy.on_response(status, hs, payload))
    method, path, first = {
        "auth-ok": ("GET", "/v1/items", [("X-Api-Key", policy.API_KEY)]),
        "auth-missing": ("POST", "/v1/orders", []),
        "public": ("GET", "/health", []),
    }[request]
    hs = _headers(headers, first) if headers else []
    return entry, ({"method": method, "path": path, "headers": hs, "body": payload},), _action(policy.on_request(method, path, hs, payload))


@lru_cache(maxsize=1)
def wat_component() -> bytes:
    """The hand-written middleware component, assembled from its text format."""
    return bytes(wasmtime.wat2wasm((GUEST_DIR / "middleware.wat").read_text()))


@cache
def signatures() -> dict[str, Signature]:
    """Each attach point's signature, read from the hand-written component (both guests share the WIT)."""
    exports = introspect.component_types(wat_component()).exports
    found = {}
    for name in ("on-request", "on-response"):
        ty = exports[name].ty
        if not isinstance(ty, wasmtime.component.FuncType):
            raise ConfigError(f"the hand-written middleware's export {name!r} is not a function")
        found[name] = Signature.of(ty)
    return found


def source_hash() -> str:
    """What the componentize-py build depends on: the WIT, the guest's Python sources, and the tool's version."""
    digest = hashlib.sha256()
    for path in sorted([*WIT_DIR.glob("*.wit"), GUEST_DIR / "app.py", GUEST_DIR / "policy.py"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(componentize_py_version().encode())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def componentize_py_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("componentize-py")
    except PackageNotFoundError:
        return "not installed"


def build_folder() -> Path:
    return cache_dir() / "build"


def py_component_path() -> Path:
    return build_folder() / f"middleware-py-{source_hash()}.wasm"


def build_py_component(force: bool = False) -> Path:
    """Build the componentize-py middleware (about 5 s) unless this exact build exists."""
    out = py_component_path()
    if out.is_file() and not force:
        return out
    tool = Path(sys.executable).with_name(COMPONENTIZE_PY)
    if not tool.is_file():
        found = shutil.which(COMPONENTIZE_PY)
        if found is None:
            raise ConfigError("middleware-py is built with componentize-py, which is not installed; "
                              "allowed: `pip install -e .` (it is a dependency of wasmlab)")
        tool = Path(found)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.partial")  # two processes building at once each write their own
    command = [str(tool), "-d", str(WIT_DIR), "-w", WORLD, "componentize", "-p", str(GUEST_DIR), "app", "-o", str(partial)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"componentize-py could not build middleware-py (exit {done.returncode}): "
                          + " ".join((done.stderr or done.stdout).split())[-400:])
    partial.replace(out)
    return out


def request_recipe(request: str = "auth-ok", headers: int = 8, body: int = 512) -> dict[str, Any]:
    """The middleware request as a recipe's request: the call in WAVE and the policy's action in WAVE."""
    entry, args, expected = request_call(request, headers, body)
    signature = signatures()[entry]
    assert signature.result is not None  # every attach point returns an action
    return {"invoke": format_call(entry, args, signature.params), "expect": {"result": format_value(expected, signature.result)}}


def middleware_workload(name: str, wasm: bytes, request: str, headers: int, body: int, provenance: str,
                        wasi: bool = False) -> Workload:
    recipe = request_recipe(request, headers, body)
    entry, trees = parse_call(recipe["invoke"], f"middleware {request}")
    signature = signatures()[entry]
    assert signature.result is not None
    args = typed_args(trees, signature.params, entry, f"middleware {request}")
    expected = typed(parse_value(recipe["expect"]["result"]), signature.result, f"middleware {request} expect.result")
    label = name if (request, headers, body) == ("auth-ok", 8, 512) else f"{name}:request={request},headers={headers},body={body}"
    return Workload(
        name=label, wasm=wasm, entry=entry, params=tuple(s.wit for _, s in signature.params),
        results=(signature.result.wit,) if signature.result else (), args=args, expected=expected, kind="component",
        provenance=provenance, parameters={"request": request, "headers": headers, "body": body}, wasi=wasi,
        signature=signature, license="Apache-2.0" if not wasi else "Apache-2.0 (guest); CPython PSF-2.0 (componentize-py)",
    )


def middleware(request: str = "auth-ok", headers: int = 8, body: int = 512) -> Workload:
    """The gateway middleware, hand-written in the component text format (~2 KB): auth, request id, 500->503."""
    return middleware_workload("middleware", wat_component(), request, headers, body,
                               "generated by wasmlab from the component text format (guests/middleware/middleware.wat)")


def middleware_py(request: str = "auth-ok", headers: int = 8, body: int = 512) -> Workload:
    """The same middleware in Python, compiled by componentize-py (~18 MB, CPython inside, imports WASI p2)."""
    path = py_component_path()
    if not path.is_file():
        raise ConfigError(f"middleware-py is not built yet ({path.name}); run `wasmlab workloads fetch` "
                          f"(or `make components`): componentize-py builds it in about 5 s")
    return middleware_workload("middleware-py", path.read_bytes(), request, headers, body,
                               f"built by wasmlab with componentize-py {componentize_py_version()} from guests/middleware "
                               f"(app.py, policy.py, wit/middleware.wit)", wasi=True)


def is_middleware(exports: Mapping[str, Any]) -> bool:
    """Whether a component's exports are the middleware world's (so a file by path gets its requests)."""
    sigs = signatures()
    for name, signature in sigs.items():
        ty = getattr(exports.get(name), "ty", None)
        if not isinstance(ty, wasmtime.component.FuncType) or Signature.of(ty).wit != signature.wit:
            return False
    return True
