"""darklib.utils.data: datasets, samplers, collation and the DataLoader (PyTorch's API).

Samples are whatever a dataset returns: a tuple ``(image, target)``, a dict such as
``{"image", "mask", "keypoints", "boxes", "label"}`` or a single array. The DataLoader's
collation stacks numpy arrays and Tensors into darklib Tensors and keeps the structure.
"""

from darklib.utils.data import distributed
from darklib.utils.data._worker import WorkerInfo, get_worker_info, sample_rng, sample_seed
from darklib.utils.data.collate import default_collate, default_convert
from darklib.utils.data.dataloader import DataLoader
from darklib.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from darklib.utils.data.distributed import DistributedSampler
from darklib.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "default_collate",
    "default_convert",
    "distributed",
    "get_worker_info",
    "random_split",
    "sample_rng",
    "sample_seed",
]
