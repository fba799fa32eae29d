"""darklib: a from-scratch, PyTorch-like deep-learning engine on NumPy (CPU) and CuPy (GPU).

>>> import darklib as dl
>>> x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

from darklib import (
    _methods,  # noqa: F401  (binds op methods onto Tensor)
    autograd,
    cuda,
)
from darklib.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from darklib.backend import device
from darklib.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from darklib.dtypes import (
    bool,
    double,
    dtype,
    float,
    float16,
    float32,
    float64,
    half,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    short,
    uint8,
)
from darklib.ops.elementwise import (
    abs,
    add,
    ceil,
    clamp,
    clip,
    cos,
    div,
    eq,
    exp,
    floor,
    ge,
    gt,
    isfinite,
    isinf,
    isnan,
    le,
    log,
    logical_and,
    logical_not,
    logical_or,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    relu,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    sqrt,
    sub,
    tanh,
    trunc,
    where,
)
from darklib.ops.linalg import bmm, matmul, mm
from darklib.random import Generator, initial_seed, seed
from darklib.tensor import Tensor

__version__ = "0.1.0"
