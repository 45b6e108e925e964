"""The flags several commands share, as option groups (decorators), and the click types that read their values.

A bad value is refused by its type while the command line is parsed, with the lab's own one-line error
(a :class:`~wasmlab.errors.ConfigError`: the group prints it as ``wasmlab: error: ...``, exit status 2),
so every command that takes a flag answers a bad value of it in the same words.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from wasmlab.config import has_size_unit, parse_size
from wasmlab.errors import ConfigError, allowed

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json")
POOL_MODES = ("shared", "per-worker")  # the same as wasmlab.experiments.concurrency.POOL_MODES (checked by a test)


def _flag(param: click.Parameter | None) -> str:
    return (param.opts[0] if param is not None and param.opts else "value") if not isinstance(param, click.Argument) else str(param.name)


class Choice(click.Choice[str]):
    """``click.Choice`` (so ``--help`` lists the values) that refuses a bad one in the lab's words."""

    def __init__(self, choices: Sequence[str], what: str) -> None:
        super().__init__(choices)
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value not in self.choices:
            raise allowed(value, self.what, list(self.choices))
        return value


class Size(click.ParamType[int, Any]):
    """A size in bytes: ``65536``, ``64KiB``, ``8GiB`` (binary units; KB/MB/GB are decimal)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        return parse_size(value, _flag(param))


class Workers(click.ParamType[int, Any]):
    """Points a sweep runs at once: 1 (in this process's order) up to :data:`~wasmlab.config.MAX_THREADS`."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from wasmlab.config import MAX_THREADS

        try:
            count = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{_flag(param)} {value!r} is not an integer; allowed: 1 to {MAX_THREADS}") from None
        if not 1 <= count <= MAX_THREADS:
            raise ConfigError(f"{_flag(param)} {count} is out of range; allowed: 1 to {MAX_THREADS} points at once")
        return count


class GateRatio(click.ParamType[float, Any]):
    """A B/A threshold of ``wasmlab compare``'s gate: a finite number > 0."""

    name = "ratio"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from wasmlab.report.gate import parse_ratio

        return parse_ratio(value, _flag(param))


class WarmupCount(click.ParamType[Any, Any]):
    """``--warmup``: untimed requests per variant, or (``auto``, where the command takes it) until the request time is
    stable (:mod:`wasmlab.measure.warmup`)."""

    def __init__(self, auto: bool) -> None:
        self.auto = auto
        self.name = "integer|auto" if auto else "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from wasmlab.measure.warmup import AUTO, AutoWarmup, fixed_warmup, parse_warmup

        if not self.auto:
            command = " ".join(["wasmlab", *ctx.command_path.split()[1:]]) if ctx is not None else "this command"
            return fixed_warmup(value, command)
        return AUTO if isinstance(parse_warmup(value), AutoWarmup) else int(value)


class CommaList(click.ParamType[tuple[Any, ...], Any]):
    """``1,2,4`` as a tuple of ``item`` values; ``bad`` says, with ``{flag}``, ``{item}`` and ``{text}``, what a bad item is."""

    name = "list"

    def __init__(self, item: Callable[[str], Any] = str, bad: str = "", empty_ok: bool = True) -> None:
        self.item, self.bad, self.empty_ok = item, bad, empty_ok

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[Any, ...]:
        if isinstance(value, tuple):
            return value
        items = []
        for part in (p.strip() for p in str(value).split(",") if p.strip()):
            try:
                items.append(self.item(part))
            except ValueError:
                raise ConfigError(self.bad.format(flag=_flag(param), item=part, text=value)) from None
        if not items and not self.empty_ok:
            raise ConfigError(f"{_flag(param)} is empty; allowed: a comma-separated list, e.g. 1,2,4")
        return tuple(items)


NUMBERS = "{flag} {item!r} is not a number; allowed: a comma-separated list of numbers, e.g. 1,2,4"
INTEGERS = CommaList(lambda text: int(text, 0), "{flag} {text!r} is not a list of integers; allowed: e.g. 1,2,3")
THREAD_COUNTS = CommaList(int, NUMBERS, empty_ok=False)
RATES = CommaList(float, NUMBERS, empty_ok=False)
NAMES = CommaList()


class CallPaths(click.ParamType[str, Any]):
    """One call path, a comma list of them (``native,lean``), ``both`` or ``all``; ``--help`` lists the paths."""

    name = "call-path"

    def __init__(self, only: Sequence[str] = (), command: str = "", lists: bool = True) -> None:
        self.only, self.command, self.lists = tuple(only), command, lists

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        from wasmlab.host.callpaths import call_paths

        if self.only:
            return "[" + "|".join(self.only) + ("|" + ",".join(self.only) if self.lists else "") + "]"
        return "[" + "|".join((*call_paths(), "both", "all")) + "|A,B]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from wasmlab.measure.scenario import expand_call_paths

        paths = expand_call_paths(value)
        if self.only and (any(p not in self.only for p in paths) or (len(paths) > 1 and not self.lists)):
            listed = ", ".join(self.only) + (f", or {','.join(self.only)}" if self.lists else "")
            raise ConfigError(f"call path {value!r} is not allowed for {self.command}; allowed: {listed}")
        return str(value)


class KeyValue(click.ParamType[tuple[str, Any], Any]):
    """``KEY=VALUE``: a knob and its value (true/false, a size such as 64KiB, an integer, else the text)."""

    name = "KEY=VALUE"
    # What a value that is not KEY=VALUE is told is allowed.
    allowed = ""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        key, eq, text = str(value).partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"{_flag(param)} {value!r} is not KEY=VALUE" + (f"; allowed: {self.allowed}" if self.allowed else ""))
        return self.parse(key, text, param)

    def parse(self, key: str, text: str, param: click.Parameter | None) -> tuple[str, Any]:
        lowered = text.strip().lower()
        parsed: Any
        if lowered in ("true", "false"):
            parsed = lowered == "true"
        elif has_size_unit(text):
            parsed = parse_size(text, f"{_flag(param)} {key}")
        else:
            try:
                parsed = int(text, 0)
            except ValueError:
                parsed = text.strip()
        return key.strip().replace("-", "_"), parsed


class Setting(KeyValue):
    """``KEY=VALUE`` of ``wasmlab sweep --set``: VALUE read as YAML (``100``, ``[4, 20]``, ``seed``)."""

    allowed = "a notebook parameter and a YAML value, e.g. requests=200 or slots=[4,20]"

    def parse(self, key: str, text: str, param: click.Parameter | None) -> tuple[str, Any]:
        import yaml

        try:
            return key.strip(), yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{_flag(param)} {key}={text!r}: {text!r} is not a YAML value; allowed: e.g. 200, seed, [4, 20]") from None


class Preset(Choice):
    """A named preset, or ``none`` (wasmlab's defaults)."""

    def __init__(self) -> None:
        from wasmlab.config import PRESETS

        super().__init__((*PRESETS, "none"), "preset")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from wasmlab.config import PRESETS

        if value not in self.choices:
            raise allowed(value, "preset", PRESETS)
        return value


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several option decorators as one (the first listed shows first in ``--help``)."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def format_option() -> Callable[[F], F]:
    return click.option("--format", "fmt", default="table", show_default=True, type=Choice(FORMATS, "format"), help="table or json.")


def measurement_options(requests: tuple[int, str], repeats: tuple[int, str], warmup: tuple[int, str],
                        auto_warmup: bool = False) -> Callable[[F], F]:
    """--requests, --repeats, --warmup: each a default and what it counts (per variant, per worker...); ``auto_warmup``:
    --warmup also takes auto."""
    return options(
        click.option("--requests", default=requests[0], show_default=True, type=int, help=requests[1]),
        click.option("--repeats", default=repeats[0], show_default=True, type=int, help=repeats[1]),
        click.option("--warmup", default=warmup[0], show_default=True, type=WarmupCount(auto_warmup), help=warmup[1]),
    )


def pool_options(slots_help: str, slots_default: int | None = None) -> Callable[[F], F]:
    """--preset, --slots, --pool and --engine: the engine and its pool."""
    return options(
        click.option("--preset", default="seed", show_default=True, type=Preset(), help="Host settings: a real host's preset, or none."),
        click.option("--slots", type=int, default=slots_default, show_default=slots_default is not None, help=slots_help),
        click.option("--pool", "pool_knobs", multiple=True, type=KeyValue(), metavar="KEY=VALUE",
                     help="Any pool knob, e.g. linear_memory_keep_resident=64KiB."),
        click.option("--engine", "engine_knobs", multiple=True, type=KeyValue(), metavar="KEY=VALUE",
                     help="Any engine knob, e.g. compiler=winch."),
    )


def cache_options() -> Callable[[F], F]:
    from wasmlab.config import CACHE_POLICIES

    return options(
        click.option("--cache-policy", default=None, type=Choice(sorted(CACHE_POLICIES), "cache.policy"),
                     help="The compiled-module cache's policy (the native path's: lru)."),
        click.option("--cache-size", type=int, default=None, help="Compiled modules the cache holds."),
    )


def exhaustion_options() -> Callable[[F], F]:
    return options(
        click.option("--exhaustion", default="fail", show_default=True, type=Choice(("fail", "wait"), "limits.exhaustion"),
                     help="When no pool slot is free: fail or wait."),
        click.option("--wait-timeout-ms", type=float, default=100.0, show_default=True,
                     help="Longest wait for a pool slot under --exhaustion wait."),
    )


def out_option(default_help: str) -> Callable[[F], F]:
    return click.option("--out", type=click.Path(path_type=Path), default=None, help=f"Results folder [default: {default_help}].")


def save_options(command: str, what: str) -> Callable[[F], F]:
    """--out and --no-save as every measuring command has them: results saved by default under
    ``data/results/<command>/<run id>`` (``what`` says which files), kept on an interrupt too."""
    return options(out_option(f"data/results/{command}/RUN_ID: {what}, kept on Ctrl-C or SIGTERM marked partial"),
                   click.option("--no-save", is_flag=True, help="Do not write result files."))


def run_folder(out: Path | None, no_save: bool, command: str, run_id: str) -> Path | None:
    """Where a run of ``command`` is saved: ``--out``, else ``data/results/<command>/<run id>``; None with --no-save."""
    from wasmlab.cli.group import default_results

    return None if no_save else (out or default_results() / command / run_id)


def shown(path: Path | str) -> str:
    """``path`` as a line prints it: relative to the working directory when it lies under it, as the user typed it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(path)


def split_argv(text: str | None) -> tuple[str, ...]:
    return tuple(shlex.split(text)) if text else ()


def workload_options(default: str = "seed", variants: str = "pooled+cached", multiple: bool = False,
                     workload_help: str = "Workload spec, e.g. seed, dirty-memory:kib=256.") -> Callable[[F], F]:
    """--workload (several with ``multiple``: a multi-tenant host) and --variants."""
    return options(
        click.option("--workload", "workloads" if multiple else "workload", multiple=multiple, default=(default,) if multiple else default,
                     show_default=True, help=workload_help),
        click.option("--variants", default=variants, show_default=True, type=NAMES,
                     help="Comma-separated variants: baseline or '+'-joined pooled, cached, pre, disk, wtcache, snapshot; "
                          "+reuseN (an instance serves N requests); @lean, @api or @native pins a call path; @v8 or @extism runs it on V8 or Extism (--runtime)."),
    )


# Every flag a Scenario is built from, by the name click gives its value; a command takes those it has.
SCENARIO_FLAGS = ("workload", "variants", "call_path", "requests", "repeats", "warmup", "rounds", "preset", "slots", "pool_knobs",
                  "engine_knobs", "cache_policy", "cache_size", "fuel", "deadline_ms", "memory_limit", "max_wasm_stack", "exhaustion",
                  "wait_timeout_ms", "entry", "call_args", "expect", "argv", "stdin", "dirs", "expect_exit", "expect_files", "recipe",
                  "invoke", "expect_value", "stdout_match", "stdout_file", "stderr_file", "no_check", "artifact_dir", "phases", "cpu", "trace", "seed",
                  "runtime", "time_budget")
LIMIT_FLAGS = {"fuel": "fuel", "deadline_ms": "deadline_ms", "memory_limit": "memory_bytes", "max_wasm_stack": "max_wasm_stack",
               "exhaustion": "exhaustion", "wait_timeout_ms": "wait_timeout_ms"}


def scenario_from(flags: dict[str, Any], fixed: dict[str, Any] | None = None) -> Any:
    """The :class:`~wasmlab.measure.scenario.Scenario` the command line says; its flags are taken out of ``flags``."""
    from wasmlab.measure.scenario import Scenario

    given = {name: flags.pop(name) for name in SCENARIO_FLAGS if name in flags}
    if "workloads" in flags:  # several: a multi-tenant host
        workloads = flags.pop("workloads")
        given["workload"], given["tenants"] = workloads[0], workloads if len(workloads) > 1 else ()
    limits = {key: given.pop(flag) for flag, key in LIMIT_FLAGS.items() if given.get(flag) is not None}
    for flag in LIMIT_FLAGS:
        given.pop(flag, None)
    renamed = {"pool_knobs": "pool", "engine_knobs": "engine", "call_args": "args"}
    data = {renamed.get(name, name): value for name, value in given.items()}
    for knobs in ("pool", "engine"):
        if knobs in data:
            data[knobs] = dict(data[knobs])
    if "preset" in data and data["preset"] == "none":
        data["preset"] = None
    if "argv" in data:
        data["argv"] = split_argv(data["argv"])
    if "no_check" in data:
        data["check"] = not data.pop("no_check")
    if "trace" in data:
        from wasmlab.measure.traces import parse_trace_spec

        data["trace"], data["zipf_s"] = parse_trace_spec(data["trace"])
    return Scenario(**{**data, "limits": limits, **(fixed or {})})


def scenario_with(**fixed: Any) -> Callable[[F], F]:
    """Calls the command with the Scenario its flags say (and ``fixed``) as its first argument, its other flags as they are."""
    import functools

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def with_scenario(**flags: Any) -> Any:
            return function(scenario_from(flags, fixed), **flags)

        return with_scenario  # type: ignore[return-value]

    return decorate


takes_scenario = scenario_with()
