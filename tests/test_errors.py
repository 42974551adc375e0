"""Bad specifications: every problem raises a specific InitStatsError that names the value.

Each case gives the exact exception class expected (a subclass of :class:`InitStatsError`), a
pattern that must find the offending value (and where useful the layer) in the message, and a
pattern that must find what would be valid.  Positive controls at the boundaries make sure the
checks are not stricter than the rules they implement.
"""

from __future__ import annotations

import pytest

from initstats import errors
from initstats.errors import (DeviceError, GraphError, GraphFormatError, InitStatsError, NotADAGError, OptionError,
                              SpecError, SpecFileError, UnsupportedLayerError)
from initstats.families import make_arch, with_avgpool
from initstats.spec import Arch, AvgPool, Conv, Dense, MaxPool, Residual

LOGITS = Dense(1, activation=None)


def net(shape: tuple[int, ...], *layers) -> Arch:
    """An Arch with ``layers`` followed by one linear logit."""
    return Arch(shape, (*layers, LOGITS))


def raises_exactly(cls: type[Exception], fn, *patterns: str) -> str:
    """Call ``fn``; assert it raises exactly ``cls`` whose one-line message matches every pattern."""
    with pytest.raises(InitStatsError) as info:
        fn()
    err = info.value
    assert type(err) is cls, f"expected {cls.__name__}, got {type(err).__name__}: {err}"
    message = str(err)
    assert "\n" not in message, f"message is not one line: {message!r}"
    for pattern in patterns:
        with pytest.raises(cls, match=pattern):
            raise err
    return message


# --------------------------------------------------------------------------------------------
# the hierarchy
# --------------------------------------------------------------------------------------------

def test_one_root_with_specific_subclasses():
    for cls in (SpecError, UnsupportedLayerError, GraphError, NotADAGError, GraphFormatError, SpecFileError,
                OptionError, DeviceError):
        assert issubclass(cls, InitStatsError), cls
        assert cls is not InitStatsError
    assert issubclass(UnsupportedLayerError, SpecError)
    assert issubclass(NotADAGError, GraphError) and issubclass(GraphFormatError, GraphError)
    # the built-in bases let callers catch them the usual way too
    assert issubclass(SpecError, ValueError) and issubclass(GraphError, ValueError)
    assert issubclass(OptionError, ValueError) and issubclass(SpecFileError, OSError)
    assert not issubclass(NotADAGError, GraphFormatError) and not issubclass(SpecError, GraphError)
    assert set(errors.__all__) >= {"InitStatsError", "SpecError", "UnsupportedLayerError", "GraphError",
                                   "NotADAGError", "GraphFormatError", "SpecFileError", "OptionError"}


def test_catching_the_root_catches_spec_errors():
    with pytest.raises(InitStatsError):
        Conv(0)
    with pytest.raises(ValueError):
        Conv(0)


# --------------------------------------------------------------------------------------------
# layer constructors: sizes, types, choices
# --------------------------------------------------------------------------------------------

LAYER_CASES = [
    # non-positive sizes
    ("conv channels 0", lambda: Conv(0), SpecError, r"Conv: out_channels=0\b", r"integer >= 1"),
    ("conv channels -2", lambda: Conv(-2), SpecError, r"out_channels=-2\b", r"integer >= 1"),
    ("dense units 0", lambda: Dense(0), SpecError, r"Dense: out_features=0\b", r"integer >= 1"),
    ("conv kernel 0", lambda: Conv(4, kernel=0), SpecError, r"Conv: kernel=0\b", r"integer >= 1"),
    ("conv kernel -1", lambda: Conv(4, kernel=-1), SpecError, r"kernel=-1\b", r"integer >= 1"),
    ("conv kernel tuple", lambda: Conv(4, kernel=(3, 0)), SpecError, r"kernel=\(3, 0\)", r"integer >= 1"),
    ("conv kernel empty", lambda: Conv(4, kernel=()), SpecError, r"kernel=\(\)", r"integer >= 1"),
    ("conv stride 0", lambda: Conv(4, stride=0), SpecError, r"Conv: stride=0\b", r"integer >= 1"),
    ("conv stride tuple", lambda: Conv(4, stride=(1, -1)), SpecError, r"stride=\(1, -1\)", r"integer >= 1"),
    ("conv dilation 0", lambda: Conv(4, dilation=0), SpecError, r"Conv: dilation=0\b", r"integer >= 1"),
    ("conv pad -1", lambda: Conv(4, pad=-1), SpecError, r"Conv: pad=-1\b", r"integer >= 0"),
    ("avgpool kernel 0", lambda: AvgPool(0), SpecError, r"AvgPool: kernel=0\b", r"integer >= 1"),
    ("maxpool stride 0", lambda: MaxPool(2, stride=0), SpecError, r"MaxPool: stride=0\b", r"integer >= 1"),
    # bool (an int subclass) where an int is expected
    ("conv channels True", lambda: Conv(True), SpecError, r"out_channels=True\b", r"integer >= 1"),
    ("dense units False", lambda: Dense(False), SpecError, r"out_features=False\b", r"integer >= 1"),
    ("conv kernel True", lambda: Conv(4, kernel=True), SpecError, r"kernel=True\b", r"integer >= 1"),
    ("conv stride (1, True)", lambda: Conv(4, stride=(1, True)), SpecError, r"stride=\(1, True\)", r"integer"),
    ("avgpool kernel True", lambda: AvgPool(True), SpecError, r"kernel=True\b", r"integer >= 1"),
    # other wrong types
    ("dense units float", lambda: Dense(2.0), SpecError, r"out_features=2\.0\b", r"integer >= 1"),
    ("conv kernel str", lambda: Conv(4, kernel="3"), SpecError, r"kernel='3'", r"integer >= 1"),
    ("conv kernel list", lambda: Conv(4, kernel=[3, 3]), SpecError, r"kernel=\[3, 3\]", r"tuple"),
    # a number of units or channels is one integer, never a tuple
    ("dense units tuple", lambda: Dense((3,)), SpecError, r"out_features=\(3,\)", r"an integer >= 1$"),
    ("conv channels tuple", lambda: Conv((2, 2)), SpecError, r"out_channels=\(2, 2\)", r"an integer >= 1$"),
    ("conv batchnorm str", lambda: Conv(4, batchnorm="yes"), SpecError, r"batchnorm='yes'", r"True or False"),
    ("dense batchnorm int", lambda: Dense(4, batchnorm=1), SpecError, r"batchnorm=1\b", r"True or False"),
    # unknown choices
    ("unknown padding", lambda: Conv(4, padding="same"), SpecError, r"padding='same'",
     r"zero, circular, reflect"),
    ("padding None", lambda: Conv(4, padding=None), SpecError, r"padding=None", r"zero, circular, reflect"),
    ("conv activation", lambda: Conv(4, activation="tanh"), SpecError, r"Conv: activation='tanh'",
     r"'relu' or None"),
    ("dense activation", lambda: Dense(4, activation="sigmoid"), SpecError, r"Dense: activation='sigmoid'",
     r"'relu' or None"),
    # BatchNorm only as conv/dense -> BatchNorm -> ReLU
    ("conv batchnorm linear", lambda: Conv(4, batchnorm=True, activation=None), UnsupportedLayerError,
     r"Conv: batchnorm=True", r"activation='relu'"),
    ("dense batchnorm linear", lambda: Dense(4, batchnorm=True, activation=None), UnsupportedLayerError,
     r"Dense: batchnorm=True", r"activation='relu'"),
    # pooling and residual structure
    ("global pool with stride", lambda: AvgPool(None, stride=2), SpecError, r"stride=2\b", r"kernel=None"),
    ("global maxpool with stride", lambda: MaxPool(None, stride=1), SpecError, r"MaxPool: .*stride=1\b",
     r"takes no stride"),
    ("residual empty body", lambda: Residual(()), SpecError, r"body=\(\)", r"non-empty tuple of layers"),
    ("residual body not layers", lambda: Residual(None), SpecError, r"body=None", r"non-empty tuple"),
]


@pytest.mark.parametrize("fn,cls,value,valid", [c[1:] for c in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_layer_constructor_errors(fn, cls, value, valid):
    raises_exactly(cls, fn, value, valid)


# --------------------------------------------------------------------------------------------
# whole architectures: shapes that do not fit
# --------------------------------------------------------------------------------------------

ARCH_CASES = [
    # input shape and layer list
    ("input channels 0", lambda: Arch((0, 4), (LOGITS,)), SpecError, r"input_shape=\(0, 4\)", r"positive integers"),
    ("input 3 spatial axes", lambda: Arch((1, 4, 4, 4), (LOGITS,)), SpecError, r"input_shape=\(1, 4, 4, 4\)",
     r"at most 2 spatial axes"),
    ("input bool", lambda: Arch((1, True), (LOGITS,)), SpecError, r"input_shape=\(1, True\)", r"positive integers"),
    ("input empty", lambda: Arch((), (LOGITS,)), SpecError, r"input_shape=\(\)", r"\(channels, \*spatial\)"),
    ("no layers", lambda: Arch((1, 4), ()), SpecError, r"layers=\(\)", r"non-empty tuple of layers"),
    # kernel extent larger than the padded input
    ("kernel larger than padded input", lambda: net((1, 4), Conv(1, kernel=7, pad=0)), SpecError,
     r"conv1 \(axis 0\): kernel extent 7 \(kernel 7, dilation 1\)", r"padded input 4 \+ 2\*0"),
    ("kernel larger than input + pad", lambda: net((1, 4), Conv(1, kernel=9, pad=2)), SpecError,
     r"conv1 \(axis 0\): kernel extent 9\b", r"padded input 4 \+ 2\*2"),
    ("dilated kernel too large", lambda: net((1, 4), Conv(1, kernel=3, dilation=3, pad=0)), SpecError,
     r"kernel extent 7 \(kernel 3, dilation 3\)", r"smaller kernel or dilation"),
    ("second axis too small", lambda: net((1, 8, 2), Conv(1, kernel=(3, 5), pad=(1, 1))), SpecError,
     r"conv1 \(axis 1\): kernel extent 5\b", r"padded input 2 \+ 2\*1"),
    # output smaller than one position
    ("pool larger than input", lambda: net((1, 4), AvgPool(5)), SpecError,
     r"avgpool1 \(axis 0\): kernel extent 5\b", r"smaller than one position"),
    ("maxpool larger than second axis", lambda: net((1, 4, 2), MaxPool((1, 3))), SpecError,
     r"maxpool1 \(axis 1\): kernel extent 3\b", r"padded input 2\b"),
    ("pool after downsampling to 1", lambda: net((1, 4), Conv(1, 3, stride=2, pad=0), AvgPool(2)), SpecError,
     r"avgpool2 \(axis 0\): kernel extent 2\b", r"padded input 1 \+ 2\*0.*smaller than one position"),
    # padding too large for its mode
    ("circular pad > size", lambda: net((1, 2), Conv(1, kernel=5, padding="circular", pad=3)), SpecError,
     r"conv1 \(axis 0\): circular padding 3 exceeds the input size 2", r"must be <= 2"),
    ("reflect pad = size", lambda: net((1, 2), Conv(1, kernel=3, padding="reflect", pad=2)), SpecError,
     r"conv1 \(axis 0\): reflect padding 2\b", r"larger than 2, got size 2"),
    ("reflect pad on size 1", lambda: net((1, 1), Conv(1, kernel=3, padding="reflect")), SpecError,
     r"reflect padding 1\b", r"got size 1"),
    # a window entirely in the zero padding
    ("1x1 kernel with pad", lambda: net((1, 4), Conv(1, kernel=1, pad=1)), SpecError,
     r"conv1 \(axis 0\): the window of output position 0 lies entirely in the zero padding \(pad=1\)",
     r"pad <= dilation\*\(kernel-1\)"),
    ("pad 3 for kernel 3", lambda: net((1, 4), Conv(1, kernel=3, pad=3)), SpecError,
     r"output position 0 .*\(pad=3\)", r"pad <= dilation\*\(kernel-1\)"),
    # tuples of the wrong length
    ("kernel tuple too long", lambda: net((1, 4, 4), Conv(1, kernel=(3, 3, 3))), SpecError,
     r"conv1: kernel=\(3, 3, 3\) has 3 entries", r"2 spatial axes"),
    ("pool stride tuple too short", lambda: net((1, 4, 4), AvgPool(2, stride=(2,))), SpecError,
     r"avgpool1: stride=\(2,\) has 1 entries", r"2 spatial axes"),
    # convolution or pooling without spatial axes
    ("conv after dense", lambda: net((1, 4), Dense(3), Conv(2)), SpecError,
     r"conv2: a convolution needs spatial axes", r"shape \(3,\)"),
    ("conv on flat input", lambda: net((5,), Conv(2)), SpecError, r"conv1: .*spatial axes", r"shape \(5,\)"),
    ("pool after dense", lambda: net((1, 4), Dense(3), AvgPool(2)), SpecError,
     r"avgpool2: pooling needs spatial axes", r"shape \(3,\)"),
    ("maxpool on flat input", lambda: net((5,), MaxPool(None)), SpecError, r"maxpool1: pooling", r"shape \(5,\)"),
    # the last layer must be Dense
    ("last layer conv", lambda: Arch((1, 4), (Conv(2),)), SpecError, r"got Conv\b",
     r"Dense\(num_classes, activation=None\)"),
    ("last layer pool", lambda: Arch((1, 4), (Conv(2), AvgPool(None))), SpecError, r"got AvgPool\b",
     r"last layer must be Dense"),
    ("last layer residual", lambda: Arch((2, 4), (Conv(2), Residual((Conv(2),)))), SpecError, r"got Residual\b",
     r"last layer must be Dense"),
    # residual bodies must keep the shape
    ("residual changes channels", lambda: net((2, 4), Residual((Conv(3),))), SpecError,
     r"res1: the body maps shape \(2, 4\) to \(3, 4\)", r"same shape .*2 channels"),
    ("residual strides", lambda: net((2, 4), Residual((Conv(2, stride=2),))), SpecError,
     r"res1: the body maps shape \(2, 4\) to \(2, 2\)", r"stride 1"),
    ("residual 'valid' conv", lambda: net((2, 4), Conv(2), Residual((Conv(2, pad=0),))), SpecError,
     r"res2: the body maps shape \(2, 4\) to \(2, 2\)", r"'same' padding"),
    ("error inside a residual body", lambda: net((2, 4), Residual((Conv(2, kernel=9, pad=0),))), SpecError,
     r"res1\.conv1 \(axis 0\): kernel extent 9\b", r"padded input 4\b"),
    # layers initstats cannot represent
    ("unknown layer", lambda: net((1, 4), "relu"), UnsupportedLayerError, r"layer 'relu' is not supported",
     r"Dense, Conv, AvgPool, MaxPool, Residual or Concat"),
    ("unknown layer in body", lambda: net((1, 4), Residual((42,))), UnsupportedLayerError, r"layer 42\b",
     r"Dense, Conv, AvgPool, MaxPool, Residual or Concat"),
]


@pytest.mark.parametrize("fn,cls,value,valid", [c[1:] for c in ARCH_CASES], ids=[c[0] for c in ARCH_CASES])
def test_arch_errors(fn, cls, value, valid):
    raises_exactly(cls, fn, value, valid)


def test_boundaries_that_are_valid():
    """The largest valid paddings, a kernel exactly the padded input, and pad 0 with kernel 1."""
    assert net((1, 2), Conv(1, kernel=3, padding="reflect", pad=1)).stages[1].shape == (1, 2)
    assert net((1, 2), Conv(1, kernel=5, padding="circular", pad=2)).stages[1].shape == (1, 2)
    assert net((1, 4), Conv(1, kernel=6, pad=1)).stages[1].shape == (1, 1)     # extent 6 == 4 + 2
    assert net((1, 4), Conv(1, kernel=7, dilation=1, pad=2, stride=3)).stages[1].shape == (1, 1)
    assert net((1, 4), Conv(1, kernel=3, pad=2)).stages[1].shape == (1, 6)     # pad == kernel - 1
    assert net((1, 4), AvgPool(4)).stages[1].shape == (1, 1)
    assert net((1, 1), Conv(1, kernel=3, padding="circular")).stages[1].shape == (1, 1)
    assert net((2, 4), Residual((Conv(2), Conv(2, activation=None)))).has_residual
    assert Dense(3, batchnorm=True).batchnorm is True
    assert Conv(4, kernel=(3, 1), stride=(2, 1), pad=(0, 0)).kernel == (3, 1)


def test_error_names_the_layer_not_just_the_value():
    # two convolutions with the same bad kernel: the message says which one fails
    msg = raises_exactly(SpecError, lambda: net((1, 4), Conv(1, kernel=3, pad=1), Conv(1, kernel=3, stride=4, pad=0),
                                                Conv(1, kernel=3, pad=0)), r"conv3 \(axis 0\)")
    assert "conv1" not in msg and "conv2" not in msg


# --------------------------------------------------------------------------------------------
# families and their options
# --------------------------------------------------------------------------------------------

FAMILY_CASES = [
    ("unknown family", lambda: make_arch("vgg", 32), OptionError, r"unknown architecture 'vgg'",
     r"fc, cnn, cnn-avgpool, resnet"),
    ("family name case", lambda: make_arch("CNN", 32), OptionError, r"'CNN'", r"fc, cnn, cnn-avgpool, resnet"),
    ("head for fc", lambda: make_arch("fc", 32, head="avgpool"), OptionError, r"option 'head' does not apply to 'fc'",
     r"width, depth, classes, in_channels"),
    ("padding for fc", lambda: make_arch("fc", 8, padding="zero"), OptionError, r"option 'padding' .* 'fc'",
     r"it takes width"),
    ("blocks for cnn", lambda: make_arch("cnn", 32, blocks=2), OptionError, r"option 'blocks' .* 'cnn'",
     r"channels, downsample, head"),
    ("width for resnet", lambda: make_arch("resnet", 8, width=3), OptionError, r"option 'width' .* 'resnet'",
     r"blocks"),
    ("px 0", lambda: make_arch("cnn", 0), OptionError, r"input size 0\b", r"positive number of pixels"),
    ("px -8", lambda: make_arch("fc", -8), OptionError, r"input size -8\b", r"positive"),
    ("px bool", lambda: make_arch("cnn", True), OptionError, r"input size True\b", r"positive"),
    ("px str", lambda: make_arch("cnn", "32"), OptionError, r"input size '32'", r"positive"),
    ("unknown downsample", lambda: make_arch("cnn", 32, downsample="conv"), OptionError, r"downsample='conv'",
     r"stride, avg, max"),
    ("unknown head", lambda: make_arch("cnn-avgpool", 32, head="flatten"), OptionError, r"head='flatten'",
     r"dense, avgpool, maxpool"),
    ("unknown padding in family", lambda: make_arch("cnn", 32, padding="same"), SpecError,
     r"cnn at 32 px: .*padding='same'", r"zero, circular, reflect"),
    ("bool channels", lambda: make_arch("cnn", 32, channels=True), SpecError, r"cnn at 32 px: .*out_channels=True",
     r"integer >= 1"),
    ("zero width", lambda: make_arch("fc", 8, width=0), SpecError, r"fc at 8 px: .*out_features=0\b",
     r"integer >= 1"),
    ("zero classes", lambda: make_arch("resnet", 8, classes=0), SpecError, r"out_features=0\b", r"integer >= 1"),
    ("negative depth", lambda: make_arch("fc", 8, depth=-1), OptionError, r"depth=-1\b", r"integer >= 0"),
    ("bool depth", lambda: make_arch("fc", 8, depth=True), OptionError, r"depth=True\b", r"integer >= 0"),
    ("zero blocks", lambda: make_arch("resnet", 8, blocks=0), OptionError, r"blocks=0\b", r"integer >= 1"),
    ("bool blocks", lambda: make_arch("resnet", 8, blocks=True), OptionError, r"blocks=True\b", r"integer >= 1"),
    # too small for the family: which layer, which size
    ("cnn reflect at 4 px", lambda: make_arch("cnn", 4, padding="reflect"), SpecError,
     r"cnn at 4 px: conv7 \(axis 0\): reflect padding 1\b", r"got size 1"),
    ("cnn reflect at 8 px", lambda: make_arch("cnn", 8, padding="reflect"), SpecError,
     r"cnn at 8 px: conv10 \(axis 0\): reflect padding 1\b", r"got size 1"),
    ("resnet reflect at 1 px", lambda: make_arch("resnet", 1, padding="reflect"), SpecError,
     r"resnet at 1 px: conv1 \(axis 0\): reflect padding 1", r"got size 1"),
    ("cnn-avgpool at 2 px", lambda: make_arch("cnn-avgpool", 2), SpecError,
     r"cnn-avgpool at 2 px: avgpool6 \(axis 0\): kernel extent 2\b", r"smaller than one position"),
    # with_avgpool
    ("pool size 0", lambda: with_avgpool(make_arch("cnn", 32, channels=2), 0), OptionError, r"pooling size 0\b",
     r"positive integer"),
    ("pool size on fc", lambda: with_avgpool(make_arch("fc", 4, width=2), 2), OptionError,
     r"fc: pooling size 2 needs spatial axes", r"spatial axes"),
    ("pool size not a divisor", lambda: with_avgpool(make_arch("cnn", 32, channels=2), 3), OptionError,
     r"cnn: pooling size 3 does not divide the spatial size \(4, 4\)", r"divisor of 4"),
]


@pytest.mark.parametrize("fn,cls,value,valid", [c[1:] for c in FAMILY_CASES], ids=[c[0] for c in FAMILY_CASES])
def test_family_errors(fn, cls, value, valid):
    raises_exactly(cls, fn, value, valid)


def test_family_sizes_that_are_valid():
    """The smallest sizes just above the failing ones above build fine."""
    assert make_arch("cnn", 16, padding="reflect").d == 3 * 16 * 16
    assert make_arch("cnn", 8).d == 3 * 8 * 8              # three 2x2 downsamplings leave 1 pixel
    assert make_arch("fc", 8, depth=0, width=3).stages[-1].shape == (10,)
    assert make_arch("resnet", 2, padding="reflect", channels=2).has_residual
    assert make_arch("cnn-avgpool", 8, channels=2).d == 192
    assert with_avgpool(make_arch("cnn", 32, channels=2), 2).layers[-2] == AvgPool(2)
    # None means "family default", so it never counts as an option given to the wrong family
    assert make_arch("fc", 4, head=None, padding=None, width=2).name == "fc"
