"""darklib: a from-scratch, PyTorch-like deep-learning engine on NumPy (CPU) and CuPy (GPU).

>>> import darklib as dl
>>> x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

from darklib import (
    _methods,
    _torch_paths,
    amp,
    autograd,
    backends,
    cuda,
    distributed,
    distributions,
    func,
    linalg,
    nn,
    optim,
    profiler,
    return_types,
    special,
    testing,
    utils,
    version,
)
from darklib._methods import layout, nonzero_static, strided
from darklib._namespace import *  # noqa: F403  (torch's top-level functional forms, ...)
from darklib.amp import autocast, get_autocast_dtype, is_autocast_enabled
from darklib.amp.autocast_mode import (
    clear_autocast_cache,
    is_autocast_cache_enabled,
    set_autocast_cache_enabled,
    set_autocast_dtype,
    set_autocast_enabled,
)
from darklib.autograd.anomaly_mode import is_anomaly_check_nan_enabled, is_anomaly_enabled
from darklib.backend import device, get_default_device, set_default_device
from darklib.creation import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
    arange,
    as_tensor,
    asarray,
    bartlett_window,
    bernoulli,
    binomial,
    blackman_window,
    clone,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    hamming_window,
    hann_window,
    kaiser_window,
    linspace,
    logspace,
    manual_seed,
    multinomial,
    normal,
    ones,
    ones_like,
    poisson,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    scalar_tensor,
    tensor,
    tril_indices,
    triu_indices,
    zeros,
    zeros_like,
)
from darklib.dtypes import (
    bool,
    can_cast,
    double,
    dtype,
    finfo,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    iinfo,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    promote_types,
    set_default_dtype,
    short,
    uint8,
    uint16,
    uint32,
    uint64,
)
from darklib.errors import OutOfMemory as OutOfMemoryError
from darklib.func import vmap
from darklib.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from darklib.kernels.parallel import get_num_threads, set_num_threads
from darklib.ops.decomp import (
    cholesky,
    cholesky_inverse,
    cholesky_solve,
    cross,
    det,
    inverse,
    logdet,
    lu,
    lu_solve,
    lu_unpack,
    matrix_exp,
    matrix_power,
    pinverse,
    qr,
    slogdet,
    svd,
    triangular_solve,
)
from darklib.ops.elementwise import (
    abs,
    absolute,
    acos,
    acosh,
    add,
    addcdiv,
    addcmul,
    allclose,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    bitwise_and,
    bitwise_left_shift,
    bitwise_not,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    ceil,
    clamp,
    clamp_max,
    clamp_min,
    clip,
    copysign,
    cos,
    cosh,
    div,
    divide,
    eq,
    equal,
    erf,
    erfc,
    erfinv,
    exp,
    exp2,
    expm1,
    fix,
    float_power,
    floor,
    floor_divide,
    fmax,
    fmin,
    fmod,
    frac,
    ge,
    greater,
    greater_equal,
    gt,
    heaviside,
    hypot,
    isclose,
    isfinite,
    isinf,
    isnan,
    ldexp,
    le,
    lerp,
    less,
    less_equal,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    logaddexp2,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logit,
    lt,
    maximum,
    minimum,
    mul,
    multiply,
    nan_to_num,
    ne,
    neg,
    negative,
    not_equal,
    pow,
    reciprocal,
    relu,
    remainder,
    round,
    rsqrt,
    sgn,
    sigmoid,
    sign,
    signbit,
    sin,
    sinh,
    sqrt,
    square,
    sub,
    subtract,
    tan,
    tanh,
    true_divide,
    trunc,
    where,
    xlogy,
)
from darklib.ops.extras import (
    angle,
    deg2rad,
    frexp,
    gcd,
    gradient,
    isneginf,
    isposinf,
    lcm,
    nanquantile,
    nextafter,
    positive,
    rad2deg,
    rsub,
    unravel_index,
)
from darklib.ops.indexing import (
    argwhere,
    bincount,
    gather,
    index_add,
    index_copy,
    index_fill,
    index_put,
    index_reduce,
    index_select,
    masked_fill,
    masked_scatter,
    masked_select,
    nonzero,
    put,
    scatter,
    scatter_add,
    scatter_reduce,
    searchsorted,
    take,
    take_along_dim,
    unique,
    unique_consecutive,
)
from darklib.ops.linalg import (
    addmm,
    baddbmm,
    bmm,
    cdist,
    dist,
    dot,
    einsum,
    ger,
    inner,
    matmul,
    mm,
    mv,
    outer,
    pdist,
    vdot,
)
from darklib.ops.products import (
    addbmm,
    addmv,
    addr,
    block_diag,
    cartesian_prod,
    combinations,
    corrcoef,
    cov,
    cumulative_trapezoid,
    diag_embed,
    diagflat,
    diagonal_scatter,
    histc,
    histogram,
    kron,
    narrow_copy,
    renorm,
    select_scatter,
    slice_scatter,
    tensordot,
    trapezoid,
    trapz,
    vander,
)
from darklib.ops.reduction import (
    all,
    amax,
    amin,
    aminmax,
    any,
    argmax,
    argmin,
    argsort,
    bucketize,
    count_nonzero,
    cummax,
    cummin,
    cumprod,
    cumsum,
    isin,
    kthvalue,
    log_softmax,
    logcumsumexp,
    logsumexp,
    max,
    mean,
    median,
    min,
    mode,
    nanmean,
    nanmedian,
    nansum,
    norm,
    prod,
    quantile,
    softmax,
    sort,
    std,
    std_mean,
    sum,
    topk,
    var,
    var_mean,
)
from darklib.ops.shape import (
    as_strided,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    broadcast_shapes,
    broadcast_tensors,
    broadcast_to,
    cat,
    chunk,
    column_stack,
    concat,
    concatenate,
    diag,
    diagonal,
    diff,
    dsplit,
    dstack,
    flatten,
    flip,
    fliplr,
    flipud,
    hsplit,
    hstack,
    meshgrid,
    moveaxis,
    movedim,
    msort,
    narrow,
    permute,
    ravel,
    repeat_interleave,
    reshape,
    roll,
    rot90,
    row_stack,
    select,
    split,
    split_with_sizes,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    t,
    tensor_split,
    tile,
    trace,
    transpose,
    tril,
    triu,
    unbind,
    unflatten,
    unfold,
    unsqueeze,
    vsplit,
    vstack,
)
from darklib.ops.shape import chunk as unsafe_chunk
from darklib.ops.shape import split as unsafe_split
from darklib.ops.special import (
    digamma,
    i0,
    igamma,
    igammac,
    lgamma,
    mvlgamma,
    polygamma,
    sinc,
)
from darklib.random import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    seed,
    set_rng_state,
)
from darklib.serialization import SerializationError, load, save
from darklib.tensor import (
    Size,
    Tensor,
    channels_last,
    channels_last_3d,
    contiguous_format,
    memory_format,
    preserve_format,
    set_printoptions,
)
from darklib.utils.dlpack import from_dlpack, to_dlpack


def is_tensor(obj: object) -> bool:
    """True for darklib tensors (and Parameters)."""
    return isinstance(obj, Tensor)


def _input(input: object, op: str) -> Tensor:
    if not isinstance(input, Tensor):
        from darklib.errors import InvalidType

        raise InvalidType(
            f"{op}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}"
        )
    return input


def is_floating_point(input: Tensor) -> bool:
    return _input(input, "is_floating_point").is_floating_point()


def is_nonzero(input: Tensor) -> bool:
    return _input(input, "is_nonzero").is_nonzero()


def get_device(input: Tensor) -> int:
    """The CUDA device index of ``input``, -1 on the CPU."""
    return _input(input, "get_device").get_device()


def real(input: Tensor) -> Tensor:
    """The real part: a real tensor itself."""
    return _input(input, "real").real


def imag(input: Tensor) -> Tensor:
    """Refused for real tensors, as torch (darklib has no complex dtypes)."""
    return _input(input, "imag").imag


def numel(input: Tensor) -> int:
    return _input(input, "numel").numel()


def is_same_size(input: Tensor, other: Tensor) -> bool:
    return _input(input, "is_same_size").is_same_size(other)


def is_inference(input: Tensor) -> bool:
    """False: darklib has no inference tensors (see :meth:`Tensor.is_inference`)."""
    return _input(input, "is_inference").is_inference()


def result_type(tensor1: object, tensor2: object) -> dtype:
    """The dtype an elementwise op over these operands (tensors or numbers) gives."""
    from darklib.dtypes import from_numpy_dtype
    from darklib.ops._promote import result_dtype

    return from_numpy_dtype(result_dtype(tensor1, tensor2))


autograd._load_tools()  # (they need the ops, loaded by now)


def _legacy_amp() -> None:
    """``dl.cuda.amp`` and ``dl.cpu.amp``, torch's older homes of autocast and GradScaler."""
    from darklib.amp import legacy

    cuda.amp = legacy.cuda_amp
    globals()["cpu"] = legacy.cpu


_legacy_amp()


def _out_keywords() -> None:
    """torch's ``out=`` on the top-level functions that take it (see :mod:`darklib._out`)."""
    from darklib._out import add_out

    add_out(globals())


_out_keywords()

_torch_paths.install()  # torch's module paths (torch.nn.modules.conv, torch.optim.adamw, ...)

# torch's names that darklib does not have, and why: the AttributeError says so (hasattr
# stays False) instead of a bare "no attribute", so a script ported from torch fails with
# a reason and a way on
_COMPLEX = "darklib has no complex dtypes (nor torch.fft, which needs them)"
_ABSENT = {
    "bfloat16": "NumPy has no bfloat16, so darklib neither: use dl.float16 for mixed "
    "precision (dl.autocast's default)",
    **dict.fromkeys(
        ("complex32", "complex64", "complex128", "cfloat", "cdouble", "chalf"), _COMPLEX
    ),
    "fft": _COMPLEX,
    "sparse": "darklib has no sparse tensors: use dense ones",
    "jit": "darklib has no TorchScript: models run eagerly (dl.compile returns them as they are)",
    "quantization": "darklib has no quantization",
}


def __getattr__(name: str) -> object:
    if name in _ABSENT:
        raise AttributeError(f"module 'darklib' has no attribute {name!r}: {_ABSENT[name]}")
    raise AttributeError(f"module 'darklib' has no attribute {name!r}")


from darklib.version import __version__  # noqa: E402
