"""The results store of a sweep: an SQLite database in the sweep's directory, one row per finished chunk.

A chunk's row holds what its networks measured, exactly (per-network values of every statistic,
per-coordinate sums, per-network group sums, the intraclass sums: the fields of a
:class:`~initstats.measurement.Measurement`, as float64 arrays in one ``.npz`` blob), keyed by
case, point and chunk index.  Every claim is computed from these, so tables and verdicts can be
recomputed without measuring again, and merging the chunks of a point in index order gives, bit
for bit, the measurement of one uninterrupted run (:meth:`Measurement.merge`).

SQLite, chosen by measurement (``benchmarks/bench_sweep.py``, ``docs/benchmarks.md``): on a 2-core
CPU it commits a chunk (encode, insert, durable commit) in about 0.7 ms, 2-2.5 % of the chunk's
compute, where DuckDB took about 4.5 ms; reading back costs the same in both.  It is also part of
the standard library, and the store's work is small transactional appends.  Each chunk is committed in its own transaction (``synchronous =
FULL``), so a process killed at any point loses at most the chunks it was computing.

A sweep holds an exclusive lock on the directory while it runs (``flock`` on ``sweep.lock``,
released by the system when the process dies, ``kill -9`` included): a second sweep on the same
directory at the same time gets :class:`~initstats.errors.SweepLockedError`.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SweepChangedError, SweepError, SweepLockedError
from ..measurement import STATISTICS, Measurement

__all__ = ["SweepStore", "encode_measurement", "decode_measurement", "DB_NAME", "LOCK_NAME"]

DB_NAME = "sweep.sqlite"
LOCK_NAME = "sweep.lock"
_FORMAT = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (name TEXT PRIMARY KEY, position INTEGER NOT NULL, recipe TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (case_name TEXT NOT NULL, point INTEGER NOT NULL, label TEXT NOT NULL,
    chunk_size INTEGER NOT NULL, target INTEGER NOT NULL, PRIMARY KEY (case_name, point));
CREATE TABLE IF NOT EXISTS chunks (case_name TEXT NOT NULL, point INTEGER NOT NULL, chunk INTEGER NOT NULL,
    nets INTEGER NOT NULL, seconds REAL NOT NULL, device TEXT NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (case_name, point, chunk));
"""


def encode_measurement(m: Measurement) -> bytes:
    """A measurement as an ``.npz`` blob (no pickles): its arrays, and its other fields as JSON.

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions, measure
    >>> from initstats.families import make_arch
    >>> m = measure(make_arch("fc", 4, width=8), MeasureOptions(nets=5, device="cpu"))
    >>> back = decode_measurement(encode_measurement(m))
    >>> bool((back.per_net["grad_loss_l1"] == m.per_net["grad_loss_l1"]).all()), back.outputs == m.outputs
    (True, True)
    """
    arrays = {f"per_net.{s}": v for s, v in m.per_net.items()}
    arrays.update(coord_sum=m.coord_sum, coord_sq_sum=m.coord_sq_sum)
    for name in ("input_mean", "input_ss", "group_sums"):
        if getattr(m, name) is not None:
            arrays[name] = getattr(m, name)
    meta = {"name": m.name, "d": m.d, "px": m.px, "outputs": list(m.outputs), "inputs_per_net": m.inputs_per_net,
            "seconds": m.seconds, "device": m.device, "input_names": list(m.input_names)}
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


def decode_measurement(blob: bytes) -> Measurement:
    """The measurement :func:`encode_measurement` stored (``stopped='nets'``; the sweep sets its own).

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions, measure
    >>> from initstats.families import make_arch
    >>> m = measure(make_arch("fc", 4, width=8), MeasureOptions(nets=3, device="cpu"))
    >>> decode_measurement(encode_measurement(m)).n_nets
    3
    """
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k] for k in z.files if k != "meta"}
    return Measurement(name=meta["name"], d=meta["d"], px=meta["px"], outputs=tuple(meta["outputs"]),
                       per_net={s: arrays[f"per_net.{s}"] for s in STATISTICS if f"per_net.{s}" in arrays},
                       coord_sum=arrays["coord_sum"], coord_sq_sum=arrays["coord_sq_sum"],
                       inputs_per_net=meta["inputs_per_net"], seconds=meta["seconds"], device=meta["device"],
                       input_mean=arrays.get("input_mean"), input_ss=arrays.get("input_ss"),
                       input_names=tuple(meta["input_names"]), group_sums=arrays.get("group_sums"))


@dataclass(frozen=True, kw_only=True)
class StoredPoint:
    """How a point is chunked, fixed when it was first measured: ``chunk_size`` networks per chunk, up
    to ``target`` networks (``nets``, or ``max_nets`` with adaptive sampling)."""

    label: str
    chunk_size: int
    target: int


class SweepStore:
    """The store of one sweep directory (see the module docstring); open it with :meth:`open`.

    Use it as a context manager, or call :meth:`close`: that releases the directory's lock.

    Examples
    --------
    >>> import tempfile
    >>> with SweepStore.open(tempfile.mkdtemp()) as store:
    ...     store.chunk_indices("fc", 0)
    set()
    """

    def __init__(self, root: Path, db: sqlite3.Connection, lock_fd: int) -> None:
        self.root, self.db, self._lock_fd = root, db, lock_fd

    @classmethod
    def open(cls, root: str | Path, *, create: bool = True) -> SweepStore:
        """Open (or, with ``create``, make) the store in ``root`` and take the directory's lock."""
        import fcntl

        root = Path(root)
        if not create and not (root / DB_NAME).is_file():
            raise SweepError(f"no sweep in {str(root)!r}: it holds no {DB_NAME}; run the sweep without --report-only "
                             "first")
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise SweepError(f"cannot write the sweep directory {str(root)!r}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            raise SweepLockedError(f"another sweep is running on {str(root)!r}" + (f" (process {holder})" if holder else "")
                                   + "; wait for it to finish, or give another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            db = sqlite3.connect(root / DB_NAME, isolation_level=None)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.executescript(_SCHEMA)
            found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if found is None:
                db.execute("INSERT INTO meta VALUES ('format', ?)", (_FORMAT,))
            elif found[0] != _FORMAT:
                raise SweepError(f"{root / DB_NAME} has store format {found[0]}; this initstats reads format {_FORMAT}")
        except sqlite3.Error as err:
            os.close(fd)
            raise SweepError(f"cannot use the store {str(root / DB_NAME)!r}: {err}") from None
        except SweepError:
            os.close(fd)
            raise
        return cls(root, db, fd)

    def close(self) -> None:
        if self._lock_fd >= 0:
            self.db.close()
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- cases --------------------------------------------------------------------------------------
    def recipes(self) -> dict[str, str]:
        """The stored cases: name -> recipe (canonical JSON), in the sweep file's order."""
        return dict(self.db.execute("SELECT name, recipe FROM cases ORDER BY position"))

    def check_cases(self, recipes: dict[str, str], *, force: bool = False) -> list[str]:
        """Compare the sweep file's cases with the stored ones; record them; the names of changed cases.

        A stored case that is missing from the file or differs from it is an error naming it
        (:class:`~initstats.errors.SweepChangedError`), unless ``force``: then its chunks are
        deleted.  New cases are added.
        """
        stored = self.recipes()
        changed = [n for n, r in stored.items() if recipes.get(n) != r]
        if changed and not force:
            name = changed[0]
            what = "is no longer in the sweep file" if name not in recipes else "differs from the sweep file"
            old = json.loads(stored[name])
            new = json.loads(recipes[name]) if name in recipes else None
            diff = "" if new is None else _diff(old, new)
            raise SweepChangedError(f"case {name!r} {what} this directory was started with{diff}; give another --out, "
                                    "or --force to discard the measurements of changed cases"
                                    + (f" ({', '.join(map(repr, changed))})" if len(changed) > 1 else ""))
        with self.db:
            self.db.execute("BEGIN")
            for name in changed:
                for table in ("chunks", "points"):
                    self.db.execute(f"DELETE FROM {table} WHERE case_name = ?", (name,))
                self.db.execute("DELETE FROM cases WHERE name = ?", (name,))
            for position, (name, recipe) in enumerate(recipes.items()):
                self.db.execute("INSERT INTO cases VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET position = ?",
                                (name, position, recipe, position))
        return changed

    # -- points and chunks ----------------------------------------------------------------------------
    def point(self, case: str, point: int) -> StoredPoint | None:
        row = self.db.execute("SELECT label, chunk_size, target FROM points WHERE case_name = ? AND point = ?",
                              (case, point)).fetchone()
        return None if row is None else StoredPoint(label=row[0], chunk_size=row[1], target=row[2])

    def add_point(self, case: str, point: int, p: StoredPoint) -> None:
        self.db.execute("INSERT INTO points VALUES (?, ?, ?, ?, ?)", (case, point, p.label, p.chunk_size, p.target))

    def put_chunk(self, case: str, point: int, chunk: int, m: Measurement, payload: bytes | None = None) -> None:
        """Commit one finished chunk (its own transaction: durable once this returns).

        ``payload`` is ``encode_measurement(m)`` when the caller has it already (a worker's result).
        """
        self.db.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (case, point, chunk, m.n_nets, m.seconds, m.device,
                         encode_measurement(m) if payload is None else payload))

    def chunk_indices(self, case: str, point: int) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT chunk FROM chunks WHERE case_name = ? AND point = ?",
                                              (case, point))}

    def chunks(self, case: str, point: int, stop: int | None = None) -> dict[int, Measurement]:
        """The stored chunks of a point (those with index below ``stop``, if given): index -> measurement."""
        rows = self.db.execute("SELECT chunk, payload FROM chunks WHERE case_name = ? AND point = ? AND chunk < ? "
                               "ORDER BY chunk", (case, point, 2**62 if stop is None else stop))
        return {j: decode_measurement(blob) for j, blob in rows}

    def chunk_values(self, case: str, point: int, statistic: str) -> dict[int, np.ndarray]:
        """One statistic's per-network values of each stored chunk of a point (the rest is not decoded)."""
        out = {}
        for j, blob in self.db.execute("SELECT chunk, payload FROM chunks WHERE case_name = ? AND point = ?",
                                       (case, point)):
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                out[j] = z[f"per_net.{statistic}"]
        return out

    def chunk_frame(self) -> pd.DataFrame:
        """One row per stored chunk: ``case, point, label, chunk, nets, seconds, device``."""
        return pd.read_sql_query(
            "SELECT c.case_name AS 'case', c.point, p.label, c.chunk, c.nets, c.seconds, c.device FROM chunks c "
            "JOIN points p USING (case_name, point) JOIN cases k ON k.name = c.case_name "
            "ORDER BY k.position, c.point, c.chunk", self.db)


def _diff(old: dict, new: dict) -> str:
    keys_old, keys_new = {**old["keys"], "seed": old["seed"]}, {**new["keys"], "seed": new["seed"]}
    parts = [f"{k}: {keys_old.get(k, '(unset)')!r} -> {keys_new.get(k, '(unset)')!r}"
             for k in sorted(set(keys_old) | set(keys_new)) if keys_old.get(k) != keys_new.get(k)]
    return f" ({'; '.join(parts)})" if parts else ""
