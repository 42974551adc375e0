"""Report profiles: how large and how precise each section's runs are."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError

__all__ = ["Profile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class Profile:
    """Sizes of one report run.

    ``quick`` fits a 2-core CPU in a few minutes (16 channels, 1.3 % relative standard error);
    ``full`` is the paper's scale (64 channels, 1 %, more networks), meant for a GPU.  The
    ``model_*`` fields size the standard-models page (:mod:`initstats.report.experiments.models`).

    Examples
    --------
    >>> from dataclasses import replace
    >>> quick = PROFILES["quick"]
    >>> quick.dims, quick.channels, quick.rel_se
    ((32, 64, 128, 256), 16, 0.013)
    >>> small = replace(quick, name="small", dims=(8, 16), channels=8)     # a smaller run of one's own
    >>> small.dims, small.max_nets
    ((8, 16), 8000)
    """

    name: str
    dims: tuple[int, ...]           # input sizes (px) of Theorems 4/5 and the Figure 3 network
    channels: int                   # convolution width of the cnn families
    fc_width: int                   # hidden width of the fc family
    rel_se: float                   # target relative standard error of adaptive runs
    max_nets: int
    pool_input: int                 # side of the input of the pooling sweep
    pool_sizes: tuple[int, ...]     # k of the k x k average pool (degree a = k^2)
    outside_nets: int               # fixed networks for nets outside (H) (BatchNorm: 16 inputs each)
    fig4_dims: tuple[int, ...]
    fig4_nets: int                  # fixed networks per Figure 4 network (a comparison of large differences)
    attack_px: int
    attack_eps: tuple[float, ...]
    attack_nets: int
    attack_dims: tuple[int, ...]
    attack_eps_fixed: float
    model_px: tuple[int, ...] = (8, 16, 32)         # input sizes of the 2-D zoo models (standard models page)
    model_lengths: tuple[int, ...] = (32, 64, 128)  # input lengths of the 1-D zoo model
    model_features: tuple[int, ...] = (16, 64, 256)  # input features of the zoo MLP
    model_width: int = 4                            # first-stage width of the zoo convnets
    model_nets: int = 800                           # networks per 2-D model and size (fixed: a known cost)
    width_trend_input: int = 8                      # side of the input of the finite-width trend (Theorems 7/11 page)
    width_trend_pools: tuple[int, ...] = (4, 8)     # k of its networks' k x k average pool
    width_trend_widths: tuple[int, ...] = (4, 8, 16)  # the widths measured
    width_trend_nets: int = 40000                   # networks per width (fixed: the fit needs SEs of ~0.3 %)


PROFILES = {
    "quick": Profile("quick", dims=(32, 64, 128, 256), channels=16, fc_width=256, rel_se=0.013, max_nets=8000,
                     pool_input=16, pool_sizes=(1, 2, 4, 8, 16), outside_nets=96, fig4_dims=(32, 64), fig4_nets=1024,
                     attack_px=32, attack_eps=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1), attack_nets=512,
                     attack_dims=(32, 64, 128, 256), attack_eps_fixed=1e-3),
    "full": Profile("full", dims=(32, 64, 128, 256), channels=64, fc_width=256, rel_se=0.01, max_nets=40000,
                    pool_input=32, pool_sizes=(1, 2, 4, 8, 16, 32), outside_nets=512, fig4_dims=(32, 64, 128), fig4_nets=4096,
                    attack_px=32, attack_eps=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1), attack_nets=2048,
                    attack_dims=(32, 64, 128, 256), attack_eps_fixed=1e-3, model_px=(32, 64, 128),
                    model_lengths=(64, 128, 256, 512), model_features=(64, 256, 1024), model_width=16,
                    model_nets=4000, width_trend_widths=(4, 8, 16, 32, 64), width_trend_nets=100000),
}


def get_profile(name: str) -> Profile:
    """The :class:`Profile` named ``name`` (``'quick'`` or ``'full'``), checked.

    Examples
    --------
    >>> get_profile("full").channels
    64
    >>> get_profile("huge")
    Traceback (most recent call last):
        ...
    initstats.errors.OptionError: profile 'huge' is unknown; expected one of quick, full
    """
    if name not in PROFILES:
        raise OptionError(f"profile {name!r} is unknown; expected one of {', '.join(PROFILES)}")
    return PROFILES[name]
