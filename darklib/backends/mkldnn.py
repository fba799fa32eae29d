"""``dl.backends.mkldnn``: Intel's oneDNN, which darklib does not use (its CPU ops are
NumPy and OpenBLAS)."""


def is_available() -> bool:
    return False
