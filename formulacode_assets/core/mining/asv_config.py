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

_STRING_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


class AsvConfigError(ValueError):
    """The config exists but is not JSON even after removing comments and trailing commas."""


def load_asv_json(text: str) -> dict:
    """Parse asv's JSON dialect: strip ``//`` and ``/* */`` comments outside strings, drop trailing commas."""

    def keep_strings(match: re.Match) -> str:
        token = match.group(0)
        return token if token.startswith('"') else ""

    without_comments = _STRING_OR_COMMENT.sub(keep_strings, text)
    # Trailing commas: only outside strings, so re-split on strings once more.
    parts = re.split(r'("(?:\\.|[^"\\])*")', without_comments)
    cleaned = "".join(part if i % 2 else _TRAILING_COMMA.sub(r"\1", part) for i, part in enumerate(parts))
    try:
        data = json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise AsvConfigError(f"asv.conf.json is not valid JSON: {exc}") from exc
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
    out = run_git(git_dir, ["cat-file", "--batch"], input=request)
    pos = 0
    for path in ASV_CONF_CANDIDATES:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("utf-8", "replace").split()
        pos = end + 1
        if len(header) == 3 and header[1] == "blob":
            size = int(header[2])
            blob = out[pos : pos + size]
            pos += size + 1
            config = load_asv_json(blob.decode("utf-8", "replace"))
            return AsvConfigLocation(path, resolve_benchmark_dir(path, config), config)
        if len(header) == 3:  # a tree or other object at that name: skip its body
            pos += int(header[2]) + 1
    return None
