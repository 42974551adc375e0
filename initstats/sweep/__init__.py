"""Sweeps: many ``verify`` cases, measured chunk by chunk into a store, resumable and run in parallel.

A sweep file (TOML) lists cases, each with the options of ``initstats verify``
(:mod:`initstats.sweep.cases`).  :func:`run_sweep` measures them chunk by chunk on a backend
(this machine's processes, or Ray: :mod:`initstats.sweep.backends`), commits every finished
chunk to an SQLite store in the sweep's directory (:mod:`initstats.sweep.store`) and verifies
each case from the store (:mod:`initstats.sweep.run`).  Interrupted, the same call resumes; the
numbers depend on the seed and the cases alone, not on the backend, the number of workers or
interruptions.

Examples
--------
>>> import tempfile
>>> sweep = parse_sweep({"seed": 0, "case": [{"arch": "fc", "dims": [4, 8], "width": 16, "nets": 300}]})
>>> out = tempfile.mkdtemp()
>>> res = run_sweep(sweep, out)
>>> again = run_sweep(sweep, out, report_only=True)          # from the store: nothing measured again
>>> again.chunks_run, again.rows().equals(res.rows())
(0, True)
"""

from .cases import CASE_KEYS, Case, Point, Sweep, load_sweep, parse_sweep
from .output import write_sweep
from .run import SweepResult, run_sweep
from .store import SweepStore

__all__ = ["Sweep", "Case", "Point", "CASE_KEYS", "load_sweep", "parse_sweep", "run_sweep", "SweepResult",
           "SweepStore", "write_sweep"]
