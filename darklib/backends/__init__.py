"""``dl.backends``: torch's switches for the libraries under its ops, for scripts that set
them (``dl.backends.cudnn.benchmark = True``) or ask what the machine has
(``dl.backends.mps.is_available()``).

darklib runs on NumPy and CuPy only: it uses neither cuDNN, nor MKL-DNN, nor Apple's MPS.
The cuDNN flags are kept, so that code written for torch runs unchanged, and change
nothing; ``cuda.matmul.allow_tf32`` is torch's other spelling of
``dl.set_float32_matmul_precision('high')``.
"""

from darklib.backends import cpu, cuda, cudnn, mkldnn, mps

__all__ = ["cpu", "cuda", "cudnn", "mkldnn", "mps"]
