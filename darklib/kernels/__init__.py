"""Low-level kernels behind the vision ops, CPU and GPU twins side by side.

- :mod:`darklib.kernels.im2col`: NumPy helpers (strided window views, im2col/col2im,
  per-offset window slices shared by convolution and pooling, reusable scratch buffers).
- :mod:`darklib.kernels.phases`: the polyphase layout in which every window term of a
  pooling (or strided col2im) is one contiguous run, for fast NumPy passes.
- :mod:`darklib.kernels.cuda`: CuPy ElementwiseKernels with the same index arithmetic
  (im2col, col2im, max/avg pooling, nearest/bilinear resampling). CuPy is imported lazily,
  through :mod:`darklib.backend`, the first time a kernel runs.
- :mod:`darklib.kernels.tables`: small per-geometry lookup tables, cached per device.

The ops in :mod:`darklib.ops` choose between them with ``xp is numpy``.
"""

from darklib.kernels.im2col import release_workspace, workspace

__all__ = ["release_workspace", "workspace"]
