"""The JavaScript guest: a checkout handler compiled to a component by componentize-js (SpiderMonkey inside, ~12 MB).

The sources are the repository's (``guests/js_handler``: ``handler.js`` and ``wit/handler.wit``, one interface export
``handle: func(request: string) -> string``).  The compiler is ``@bytecodealliance/componentize-js`` from the npm
registry, pinned by version in ``package.json`` and, with its whole dependency tree, by the committed
``package-lock.json`` (an integrity hash for every package): ``npm ci`` installs exactly that tree into
``data/workloads/cache/build/componentize-js-<lock digest>/`` and refuses any package whose hash differs.

``wasmlab workloads fetch`` (so ``make components`` and CI) builds the component into ``data/workloads/cache/build/``,
named by the digest of every input (the sources, the lock, the build options), so a change to any of them builds
anew and an unchanged tree reuses the build; it is never committed.  The build is not byte-for-byte repeatable:
componentize-js's snapshot holds the random name of its temporary folder, so each build records its own SHA-256
beside it, and loading refuses a component that no longer has it.

The build disables every WASI feature componentize-js can leave out (:data:`DISABLED`): the component then imports
nothing, so every call path (lean, api, native) instantiates it with no linker definitions.  Each request's
expected response is computed here in Python (:func:`expected_response`), so a guest that answers wrongly is caught.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from wasmlab.errors import ConfigError, allowed
from wasmlab.workloads.catalog import cache_dir, sha256_of
from wasmlab.workloads.components import component_workload
from wasmlab.workloads.model import Workload

GUEST_DIR = Path(__file__).parent / "guests" / "js_handler"
SOURCES = ("handler.js", "wit/handler.wit", "package.json", "package-lock.json")
WORLD = "js-handler"
ENTRY = "wasmlab:js-handler/handler@0.1.0#handle"
PACKAGE = "@bytecodealliance/componentize-js"
# componentize-js's --disable choices, all of them: the handler reads no clock, no random, no stdio and makes no fetch.
DISABLED = ("stdio", "random", "clocks", "http", "fetch-event")
REQUESTS = {
    "checkout": "POST /v1/checkout with ITEMS items and the coupon TEN: 200 with lines, quantity, total, discount, digest",
    "not-found": "GET /v1/items (not the checkout route): 404",
    "empty": "POST /v1/checkout with no items: 400",
}
MAX_ITEMS = 100_000


def _digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def toolchain_version() -> str:
    """The componentize-js version the committed lock pins."""
    lock = json.loads((GUEST_DIR / "package-lock.json").read_text())
    return str(lock["packages"][f"node_modules/{PACKAGE}"]["version"])


def toolchain_dir() -> Path:
    """Where ``npm ci`` installs the locked tree: one folder per lock digest."""
    lock = (GUEST_DIR / "package-lock.json").read_bytes()
    return cache_dir() / "build" / f"componentize-js-{hashlib.sha256(lock).hexdigest()[:16]}"


def source_hash() -> str:
    """What the build depends on: the sources, the package files (so the compiler and its tree) and the options."""
    return _digest([name.encode() for name in SOURCES] + [(GUEST_DIR / name).read_bytes() for name in SOURCES]
                   + [" ".join(DISABLED).encode(), WORLD.encode()])[:16]


def component_path() -> Path:
    return cache_dir() / "build" / f"js-handler-{source_hash()}.wasm"


def _run(command: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ConfigError(f"{what} needs {command[0]}, which is not installed; allowed: install Node.js and npm") from None
    if done.returncode != 0:
        raise ConfigError(f"{what} failed (exit {done.returncode}): " + " ".join((done.stderr or done.stdout).split())[-400:])


def install_toolchain() -> Path:
    """componentize-js and its locked tree, installed by ``npm ci`` unless this lock's install is complete."""
    folder = toolchain_dir()
    if (folder / ".installed").is_file():
        return folder
    # Installed beside its place and renamed into it when complete: two processes installing at once each use their
    # own folder, and an interrupted install is never taken for a complete one.
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(GUEST_DIR / name, partial / name)
    # --ignore-scripts: nothing in the tree needs an install script, and none runs unasked.
    _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"], partial,
         f"installing {PACKAGE}@{toolchain_version()} (npm ci)")
    (partial / ".installed").write_text(toolchain_version() + "\n")
    if not (folder / ".installed").is_file():  # an incomplete install left by an older lab, or none
        shutil.rmtree(folder, ignore_errors=True)
    try:
        partial.rename(folder)
    except OSError:  # another process renamed its complete install into place first
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def build(force: bool = False) -> Path:
    """Build the component (about 20 s) unless this exact build exists; record its SHA-256 beside it."""
    out = component_path()
    if out.is_file() and not force:
        return out
    cli = install_toolchain() / "node_modules" / PACKAGE / "src" / "cli.js"
    partial = out.with_suffix(f".{os.getpid()}.partial")  # two processes building at once each write their own
    _run(["node", str(cli), "handler.js", "--wit", "wit", "--world-name", WORLD, "--disable", *DISABLED, "--out", str(partial)],
         GUEST_DIR, "componentize-js building js-handler")
    if not partial.is_file():
        raise ConfigError(f"componentize-js building js-handler wrote no component ({partial.name})")
    Path(f"{out}.sha256").write_text(sha256_of(partial) + "\n")
    partial.replace(out)
    return out


def _items(count: int) -> list[dict[str, Any]]:
    return [{"sku": f"sku-{i:05d}", "price": 100 + (i * 37) % 900, "quantity": 1 + i % 5} for i in range(count)]


def request_body(request: str = "checkout", items: int = 8) -> dict[str, Any]:
    """The request as the handler receives it (before JSON encoding)."""
    if request not in REQUESTS:
        raise allowed(request, "js-handler request", list(REQUESTS))
    if not 1 <= items <= MAX_ITEMS:
        raise ConfigError(f"js-handler items={items} is out of range; allowed: 1..{MAX_ITEMS}")
    if request == "not-found":
        return {"id": 7, "method": "GET", "path": "/v1/items", "items": _items(items)}
    return {"id": 7, "method": "POST", "path": "/v1/checkout", "coupon": "TEN", "items": [] if request == "empty" else _items(items)}


def _fnv1a(text: str) -> int:
    data = text.encode("utf-16-le")  # UTF-16 code units, as JavaScript's charCodeAt reads them
    value = 0x811C9DC5
    for i in range(0, len(data), 2):
        value = ((value ^ int.from_bytes(data[i:i + 2], "little")) * 0x01000193) & 0xFFFFFFFF
    return value


def expected_response(body: dict[str, Any]) -> str:
    """The response ``handler.js`` must give, computed independently in Python (integers only, same key order)."""
    if body["method"] != "POST" or body["path"] != "/v1/checkout":
        answer: dict[str, Any] = {"id": body["id"], "status": 404}
    elif not body["items"]:
        answer = {"id": body["id"], "status": 400, "error": "no items"}
    else:
        items = body["items"]
        total = sum(i["price"] * i["quantity"] for i in items)
        discount = total // 10 if body.get("coupon") == "TEN" else 0
        answer = {"id": body["id"], "status": 200, "lines": len(items), "quantity": sum(i["quantity"] for i in items),
                  "total": total - discount, "discount": discount, "digest": _fnv1a(",".join(i["sku"] for i in items))}
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)


def verified_component() -> bytes:
    """The built component's bytes, refused when missing or when they no longer have the SHA-256 recorded at build."""
    path = component_path()
    if not path.is_file():
        raise ConfigError(f"js-handler is not built yet ({path.name}); run `wasmlab workloads fetch js-handler` "
                          f"(or `make components`): componentize-js builds it in about 20 s")
    recorded = Path(f"{path}.sha256")
    pinned = recorded.read_text().strip() if recorded.is_file() else "(none recorded)"
    actual = sha256_of(path)
    if actual != pinned:
        raise ConfigError(f"js-handler: {path} has SHA-256 {actual}, but its build recorded {pinned}; refusing to run it "
                          f"(delete it and run `wasmlab workloads fetch js-handler`)")
    return path.read_bytes()


def js_handler(request: str = "checkout", items: int = 8) -> Workload:
    """A checkout handler in JavaScript, compiled by componentize-js (~12 MB, SpiderMonkey inside, imports nothing)."""
    body = request_body(request, items)
    label = "js-handler" if (request, items) == ("checkout", 8) else f"js-handler:request={request},items={items}"
    workload = component_workload(label, verified_component(), ENTRY, (json.dumps(body, separators=(",", ":")),),
                                  expected_response(body),
                                  provenance=f"built by wasmlab with {PACKAGE} {toolchain_version()} from guests/js_handler "
                                             f"(handler.js, wit/handler.wit; --disable {' '.join(DISABLED)})")
    return dataclasses.replace(workload, parameters={"request": request, "items": items},
                               license="Apache-2.0 (guest); MPL-2.0 (SpiderMonkey), Apache-2.0 WITH LLVM-exception (componentize-js)")
