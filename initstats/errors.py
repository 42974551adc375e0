"""The exception hierarchy of initstats.

Every error that initstats raises on bad input derives from :class:`InitStatsError`, names
the offending value and says what would be valid.  The command line turns these into a
one-line message and exit code 2; Python users can catch the root class.
"""

from __future__ import annotations

__all__ = [
    "InitStatsError",
    "SpecError",
    "UnsupportedLayerError",
    "GraphError",
    "NotADAGError",
    "GraphFormatError",
    "SpecFileError",
    "OptionError",
    "DeviceError",
    "ModuleError",
    "ExactLimitError",
    "SweepError",
    "SweepFileError",
    "SweepLockedError",
    "SweepChangedError",
]


class InitStatsError(Exception):
    """Root of every error initstats raises on bad input.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> try:
    ...     make_arch("vgg", 32)
    ... except InitStatsError as err:                # one except clause for every bad input
    ...     print(f"{type(err).__name__}: {err}")
    OptionError: unknown architecture 'vgg'; expected one of fc, cnn, cnn-avgpool, resnet
    """


class SpecError(InitStatsError, ValueError):
    """An architecture specification is invalid (sizes, kernels, paddings, shapes).

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> try:
    ...     make_arch("cnn", 8, padding="reflect")    # three downsamplings leave 1 px: nothing to reflect
    ... except ValueError as err:                   # a SpecError is a ValueError too
    ...     print(type(err).__name__, "-", err)
    SpecError - cnn at 8 px: conv10 (axis 0): reflect padding 1 needs an input larger than 1, got size 1
    >>> from initstats.spec import Conv
    >>> Conv(4, kernel=0)
    Traceback (most recent call last):
        ...
    initstats.errors.SpecError: Conv: kernel=0 is invalid; expected an integer >= 1 or a tuple of them
    """


class UnsupportedLayerError(SpecError):
    """A layer or layer option that initstats cannot represent.

    Examples
    --------
    >>> from initstats.spec import Conv
    >>> Conv(4, activation=None, batchnorm=True)
    Traceback (most recent call last):
        ...
    initstats.errors.UnsupportedLayerError: Conv: batchnorm=True needs activation='relu' (BatchNorm is supported only as conv -> BatchNorm -> ReLU)
    >>> issubclass(UnsupportedLayerError, SpecError)
    True
    """


class GraphError(InitStatsError, ValueError):
    """A graph is not a valid network DAG.

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.graph import check_graph
    >>> check_graph(nx.DiGraph())
    Traceback (most recent call last):
        ...
    initstats.errors.GraphError: the graph has no nodes
    """


class NotADAGError(GraphError):
    """The graph has a directed cycle.

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.graph import check_graph
    >>> g = nx.DiGraph([("x", "a"), ("a", "b"), ("b", "a")])
    >>> nx.set_node_attributes(g, {"x": "input", "a": "relu", "b": "relu"}, "kind")
    >>> check_graph(g)
    Traceback (most recent call last):
        ...
    initstats.errors.NotADAGError: the graph has a directed cycle: 'a' -> 'b' -> 'a'; a feed-forward network must be acyclic
    """


class GraphFormatError(GraphError):
    """A node or edge attribute is missing, unknown or unparsable.

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.graph import check_graph
    >>> g = nx.DiGraph([("x", "y")])
    >>> g.nodes["x"]["kind"] = "input"
    >>> check_graph(g)                              # y has no kind
    Traceback (most recent call last):
        ...
    initstats.errors.GraphFormatError: node 'y': kind missing; expected one of input, relu, linear, avgpool, sum, sumrelu, maxpool, batchnorm
    """


class SpecFileError(InitStatsError, OSError):
    """A specification file cannot be read or parsed.

    Examples
    --------
    >>> from initstats.graph import read_graph
    >>> try:
    ...     read_graph("no/such/net.json")
    ... except OSError as err:                      # a SpecFileError is an OSError too
    ...     print(type(err).__name__, "-", err)
    SpecFileError - cannot read spec file 'no/such/net.json': No such file or directory
    """


class OptionError(InitStatsError, ValueError):
    """An option has a value outside its valid range.

    Examples
    --------
    >>> from initstats.measurement import MeasureOptions
    >>> MeasureOptions(device="tpu")
    Traceback (most recent call last):
        ...
    initstats.errors.OptionError: device='tpu' is unknown; expected 'auto', 'cpu', 'cuda' or 'cuda:N'
    """


class DeviceError(InitStatsError, RuntimeError):
    """The requested compute device is not available.

    Examples
    --------
    >>> from initstats.empirical.common import resolve_device
    >>> resolve_device("npu")
    Traceback (most recent call last):
        ...
    initstats.errors.DeviceError: device 'npu' is unknown; expected auto, cpu or cuda
    """


class ModuleError(UnsupportedLayerError):
    """A PyTorch model that cannot be turned into a spec: an operation, a layer option or a
    structure outside what :func:`initstats.empirical.trace.from_module` maps, or a factory that
    cannot be loaded.  The message names the fx node, its operation and where the model made it.

    Examples
    --------
    >>> from torch import nn
    >>> from initstats.empirical.trace import from_module
    >>> try:
    ...     from_module(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)))
    ... except ModuleError as err:
    ...     print(err)
    fx node '_1' (call_module 1): module Tanh is not supported; supported: ...
    """


class ExactLimitError(InitStatsError):
    """An exact computation that would exceed its memory budget: refused with the size it needed.

    Examples
    --------
    >>> import initstats.exact.paths as paths
    >>> from initstats.exact import analyse
    >>> from initstats.families import make_arch
    >>> budget, paths.PROFILE_BUDGET = paths.PROFILE_BUDGET, 10
    >>> try:
    ...     analyse(make_arch("cnn", 16, channels=2))
    ... except ExactLimitError as err:
    ...     print(str(err)[:60])
    the symmetry check (S) needs more than 10 distinct path-degr
    >>> paths.PROFILE_BUDGET = budget
    """


class SweepError(InitStatsError):
    """A sweep (:mod:`initstats.sweep`) that cannot run or report: its directory, its store or a backend.

    Examples
    --------
    >>> from initstats.sweep import SweepStore
    >>> try:
    ...     SweepStore.open("/proc/no-such-place/sweep", create=False)
    ... except SweepError as err:
    ...     print(str(err)[:52])
    no sweep in '/proc/no-such-place/sweep': it holds no
    """


class SweepFileError(SweepError, ValueError):
    """A sweep file (TOML) that does not parse, or whose cases name unknown keys or wrong types.

    Examples
    --------
    >>> from initstats.sweep import parse_sweep
    >>> try:
    ...     parse_sweep({"case": [{"arch": "fc", "dims": [8, 16], "chanels": 4}]})
    ... except SweepFileError as err:
    ...     print(err)
    case 1: unknown key 'chanels'; did you mean 'channels'?
    """


class SweepLockedError(SweepError):
    """Another sweep is running on the same directory (it holds the directory's lock).

    Examples
    --------
    >>> import tempfile
    >>> from initstats.sweep import SweepStore
    >>> root = tempfile.mkdtemp()
    >>> with SweepStore.open(root):                   # a running sweep holds the lock ...
    ...     try:
    ...         SweepStore.open(root)                 # ... so a second one is refused
    ...     except SweepLockedError as err:
    ...         print(str(err).split(" (process")[0])
    another sweep is running on '...'
    """


class SweepChangedError(SweepError):
    """The sweep file differs from the one a directory was started with: the message names the case.

    Examples
    --------
    >>> import tempfile
    >>> from initstats.sweep import SweepStore
    >>> with SweepStore.open(tempfile.mkdtemp()) as store:
    ...     _ = store.check_cases({"fc": '{"keys": {"nets": 100}, "name": "fc", "seed": 0}'})
    ...     try:
    ...         store.check_cases({"fc": '{"keys": {"nets": 200}, "name": "fc", "seed": 0}'})
    ...     except SweepChangedError as err:
    ...         print(str(err).split(";")[0])
    case 'fc' differs from the sweep file this directory was started with (nets: 100 -> 200)
    """
