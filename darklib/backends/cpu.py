"""``dl.backends.cpu``: what the CPU offers darklib's NumPy kernels."""

from __future__ import annotations


def get_cpu_capability() -> str:
    """The widest vector instruction set NumPy's compiled loops use on this CPU, in torch's
    names: ``'AVX512'``, ``'AVX2'``, ``'SVE'``, ``'VSX'`` or ``'DEFAULT'``."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as features
    for name, needs in (
        ("AVX512", ("AVX512F", "AVX512BW", "AVX512VL")),
        ("AVX2", ("AVX2", "FMA3")),
        ("SVE", ("SVE",)),
        ("VSX", ("VSX",)),
    ):
        if all(features.get(n, False) for n in needs):
            return name
    return "DEFAULT"
