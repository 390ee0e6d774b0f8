"""Profile files: stream each one through the profiler under a memory cap, merge the parts.

A CSV column whose later rows do not fit the type inferred from its first block is widened
(integers to floats, anything to text) and the file is scanned again; the profile keeps a note
so the check stage can report the mixed types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlops_ci.checks.profile import TableProfile, merge
from mlops_ci.checks.profiler import Profiler, ProfileOptions, estimate_histograms
from mlops_ci.data.stream import ReadOptions, Retype, iter_batches
from mlops_ci.errors import DataError

MAX_RETYPES = 20


def current_rss() -> int:
    """Resident memory of this process in bytes (0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ScanLimits:
    """``memory_mb`` caps what profiling may add to the process's resident memory."""

    memory_mb: int = 1024

    def read_options(self) -> ReadOptions:
        # Arrow's CSV reader holds a few dozen blocks in flight (measured: ~35 MB at 1 MB blocks,
        # ~250 MB at 8 MB) and parses no faster with larger ones, so blocks stay small
        block = max(1 << 20, min(4 << 20, (self.memory_mb << 20) // 256))
        return ReadOptions(block_bytes=block, batch_rows=max(8192, min(262_144, self.memory_mb * 256)))


def profile_file(local: Path, *, name: str, fmt: str = "auto", options: ProfileOptions = ProfileOptions(),
                 reference: TableProfile | None = None, limits: ScanLimits = ScanLimits(),
                 seed: int | None = None) -> TableProfile:
    """Profile one file in a single streaming pass (more only when a CSV column must be widened)."""
    types: dict[str, str] = {}
    notes: dict[str, str] = {}
    read = limits.read_options()
    for _ in range(MAX_RETYPES + 1):
        profiler = Profiler(options=options, reference=reference, source=name, seed=seed)
        baseline = current_rss()
        try:
            for batch in iter_batches(local, name=name, fmt=fmt,
                                      options=ReadOptions(read.block_bytes, read.batch_rows, types)):
                profiler.add(batch)
                used = current_rss() - baseline
                if baseline and used > limits.memory_mb << 20:
                    raise DataError(
                        f"{name}: profiling needs more than the memory cap of {limits.memory_mb} MB "
                        f"(used {used >> 20} MB after {profiler.rows:,} rows)",
                        hint="raise checks.memory_limit_mb in .mlops-ci.yaml, or split the file")
        except Retype as clash:
            types[clash.column] = clash.to
            if clash.to == "string":  # integers widened to floats are still one type of thing
                notes[clash.column] = clash.note()
            continue
        profile = profiler.finish()
        for column, note in notes.items():
            profile.columns[column].notes.append(note)
        return profile
    raise DataError(f"{name}: too many columns with mixed types (more than {MAX_RETYPES})",
                    hint="fix the export so that each column holds one type")


def profile_files(parts: Sequence[tuple[Path, str]], *, fmt: str = "auto",
                  options: ProfileOptions = ProfileOptions(), reference: TableProfile | None = None,
                  limits: ScanLimits = ScanLimits()) -> TableProfile:
    """Profile a dataset split across files, file by file, and merge the profiles."""
    if not parts:
        raise DataError("no data files to profile")
    merged: TableProfile | None = None
    for i, (local, name) in enumerate(parts):
        part = profile_file(local, name=name, fmt=fmt, options=options, reference=reference, limits=limits,
                            seed=options.seed + i)
        if merged is None:
            merged = part
            continue
        if list(part.columns) != list(merged.columns):
            raise DataError(f"{name}: its columns differ from the dataset's first file {parts[0][1]}",
                            hint="every file of a dataset must have the same header")
        try:
            merged = merge(merged, part, sample_size=options.sample_size, max_categories=options.max_categories)
        except ValueError as err:
            raise DataError(f"{name}: {err}", hint="every file of a dataset must have the same column types") from err
    for prof in merged.columns.values():  # sample-estimated histograms of the parts do not add up
        if reference is None:
            prof.edges = prof.hist = None
    return estimate_histograms(merged, options.bins)
