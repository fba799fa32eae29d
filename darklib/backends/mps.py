"""``dl.backends.mps``: Apple's Metal GPUs, which darklib does not run on."""


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
