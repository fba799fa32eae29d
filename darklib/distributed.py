"""``dl.distributed``: darklib trains in one process, so, as torch built without
distributed support, ``is_available()`` is False; scripts that check it (``if
dist.is_available() and dist.is_initialized(): ...``) take their single-process path.
A launcher's shares of a dataset come from
``dl.utils.data.DistributedSampler(dataset, num_replicas, rank)``."""


def is_available() -> bool:
    return False


def is_initialized() -> bool:
    return False
