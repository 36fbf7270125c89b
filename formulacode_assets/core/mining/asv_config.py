"""Finding and reading ``asv.conf.json`` as asv does: JSON with ``//`` comments and trailing commas."""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from formulacode_assets.core.mining.git import run_git

# Where real projects keep it (numpy/scipy: benchmarks/, pandas: asv_bench/, most: the root).
ASV_CONF_CANDIDATES = (
    "asv.conf.json",
    "benchmarks/asv.conf.json",
    "asv_bench/asv.conf.json",
    "benchmark/asv.conf.json",
    "bench/asv.conf.json",
    "asv/asv.conf.json",
    ".asv/asv.conf.json",
)

# Real configs are a few KB; anything far bigger is hostile or broken and is not read at all.
MAX_ASV_CONF_BYTES = 1 << 20
_SPECIAL = re.compile(r'["/,}\]]')
_STRING_STOP = re.compile(r'["\\]')


class AsvConfigError(ValueError):
    """The config exists but is not JSON even after removing comments and trailing commas."""


def _strip_comments_and_trailing_commas(text: str) -> str:
    """One left-to-right pass (linear time): drop comments and trailing commas outside strings."""
    out: list[str] = []
    pending_comma: int | None = None  # index in ``out`` of a comma that only whitespace follows so far
    pos, n = 0, len(text)
    while pos < n:
        match = _SPECIAL.search(text, pos)
        if match is None:
            out.append(text[pos:])
            break
        start = match.start()
        chunk = text[pos:start]
        out.append(chunk)
        if chunk.strip():
            pending_comma = None
        char = text[start]
        if char == '"':
            end = start + 1
            while True:
                stop = _STRING_STOP.search(text, end)
                if stop is None:
                    end = n
                    break
                if text[stop.start()] == "\\":
                    end = stop.start() + 2
                    continue
                end = stop.start() + 1
                break
            out.append(text[start:end])
            pending_comma, pos = None, end
        elif text.startswith("//", start):
            newline = text.find("\n", start)
            pos = n if newline < 0 else newline
        elif text.startswith("/*", start):
            close = text.find("*/", start + 2)
            pos = n if close < 0 else close + 2
        elif char == ",":
            out.append(",")
            pending_comma, pos = len(out) - 1, start + 1
        elif char in "}]":
            if pending_comma is not None:
                out[pending_comma] = ""
            out.append(char)
            pending_comma, pos = None, start + 1
        else:  # a lone '/'
            out.append(char)
            pending_comma, pos = None, start + 1
    return "".join(out)


def load_asv_json(text: str) -> dict:
    """Parse asv's JSON dialect: strip ``//`` and ``/* */`` comments outside strings, drop trailing commas.

    Any parser failure (including absurd nesting) is an :class:`AsvConfigError`, so it stays on the
    repository's row.
    """
    if len(text) > MAX_ASV_CONF_BYTES:
        raise AsvConfigError(f"asv.conf.json is larger than {MAX_ASV_CONF_BYTES} bytes")
    cleaned = _strip_comments_and_trailing_commas(text)
    try:
        data = json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise AsvConfigError(f"asv.conf.json is not valid JSON: {exc}") from exc
    except RecursionError:
        raise AsvConfigError("asv.conf.json is nested too deeply to parse") from None
    if not isinstance(data, dict):
        raise AsvConfigError("asv.conf.json is not a JSON object")
    return data


def resolve_benchmark_dir(conf_path: str, config: dict) -> str:
    """The benchmark folder relative to the repository root (asv's default: ``benchmarks`` next to the config)."""
    conf_dir = posixpath.dirname(conf_path)
    bench = config.get("benchmark_dir") or "benchmarks"
    if not isinstance(bench, str):
        raise AsvConfigError(f"benchmark_dir is not a string: {bench!r}")
    resolved = posixpath.normpath(posixpath.join(conf_dir, bench))
    if resolved.startswith("../") or resolved == ".." or posixpath.isabs(resolved):
        raise AsvConfigError(f"benchmark_dir {bench!r} points outside the repository")
    return "" if resolved == "." else resolved


@dataclass(frozen=True)
class AsvConfigLocation:
    conf_path: str
    benchmark_dir: str
    config: dict


def find_asv_config(git_dir: Path, commit: str) -> AsvConfigLocation | None:
    """Look for the config at ``commit`` in the known places, with one batched ``cat-file`` call.

    Returns ``None`` when there is none; raises :class:`AsvConfigError` when it cannot be parsed.
    """
    request = "".join(f"{commit}:{path}\n" for path in ASV_CONF_CANDIDATES).encode()
    # Sizes first (``--batch-check``), so a huge blob is never read into memory.
    out = run_git(git_dir, ["cat-file", "--batch-check"], input=request)
    for path, line in zip(ASV_CONF_CANDIDATES, out.decode("utf-8", "replace").splitlines(), strict=False):
        header = line.split()
        if len(header) == 3 and header[1] == "blob":
            if int(header[2]) > MAX_ASV_CONF_BYTES:
                raise AsvConfigError(f"{path} is {header[2]} bytes, over the {MAX_ASV_CONF_BYTES}-byte limit")
            blob = run_git(git_dir, ["cat-file", "blob", header[0]])
            config = load_asv_json(blob.decode("utf-8", "replace"))
            return AsvConfigLocation(path, resolve_benchmark_dir(path, config), config)
    return None
