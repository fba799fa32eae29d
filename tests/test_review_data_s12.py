"""darklib.utils.data beside torch.utils.data: argument checks and their texts, the
loader's torch attributes, ChainDataset/ConcatDataset/random_split errors, collation and
conversion of containers, WeightedRandomSampler's weights."""

from __future__ import annotations

import collections
import multiprocessing
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as TD

import darklib as dl
import darklib.utils.data as DD

LIBS = (TD, DD)


def _map(L, n=10):
    class Numbers(L.Dataset):
        def __getitem__(self, i):
            return i

        def __len__(self):
            return n

    return Numbers()


def _stream(L, n=6, length=None):
    class Stream(L.IterableDataset):
        def __iter__(self):
            return iter(range(n))

        def __len__(self):
            return n if length is None else length

    return Stream()


def _errors(make):
    """The exception that ``make(L)`` raises with torch and with darklib."""
    out = []
    for L in LIBS:
        with pytest.raises(Exception) as info:
            make(L)
        out.append(info.value)
    return out


def _assert_like_torch(make, exact=False):
    theirs, ours = _errors(make)
    assert isinstance(ours, type(theirs)), (ours, theirs)
    if exact:
        assert str(ours) == str(theirs)
    else:
        assert str(theirs) in str(ours), (str(ours), str(theirs))


_LOADER_ERRORS = {
    "num_workers<0": (lambda L: L.DataLoader(_map(L), num_workers=-1), True),
    "timeout<0": (lambda L: L.DataLoader(_map(L), timeout=-1), True),
    "prefetch without workers": (lambda L: L.DataLoader(_map(L), prefetch_factor=2), True),
    "prefetch<0": (lambda L: L.DataLoader(_map(L), num_workers=1, prefetch_factor=-1), True),
    "persistent without workers": (
        lambda L: L.DataLoader(_map(L), persistent_workers=True),
        True,
    ),
    "batch_sampler+batch_size": (
        lambda L: L.DataLoader(_map(L), batch_sampler=[[0]], batch_size=2),
        True,
    ),
    "batch_sampler+shuffle": (
        lambda L: L.DataLoader(_map(L), batch_sampler=[[0]], shuffle=True),
        True,
    ),
    "batch_sampler+sampler": (
        lambda L: L.DataLoader(_map(L), batch_sampler=[[0]], sampler=[0]),
        True,
    ),
    "batch_sampler+drop_last": (
        lambda L: L.DataLoader(_map(L), batch_sampler=[[0]], drop_last=True),
        True,
    ),
    "sampler+shuffle": (lambda L: L.DataLoader(_map(L), sampler=[0], shuffle=True), True),
    "iterable+shuffle": (lambda L: L.DataLoader(_stream(L), shuffle=True), True),
    "iterable+sampler": (lambda L: L.DataLoader(_stream(L), sampler=[0, 1]), True),
    "iterable+batch_sampler": (lambda L: L.DataLoader(_stream(L), batch_sampler=[[0]]), True),
    "batch_size=None+drop_last": (
        lambda L: L.DataLoader(_map(L), batch_size=None, drop_last=True),
        True,
    ),
    "batch_size=0": (lambda L: L.DataLoader(_map(L), batch_size=0), False),
    "iterable batch_size=True": (lambda L: L.DataLoader(_stream(L), batch_size=True), False),
    "iterable batch_size=-1": (lambda L: L.DataLoader(_stream(L), batch_size=-1), False),
    "context without workers": (
        lambda L: L.DataLoader(_map(L), multiprocessing_context="spawn"),
        True,
    ),
    "unknown start method": (
        lambda L: L.DataLoader(_map(L), num_workers=1, multiprocessing_context="bogus"),
        True,
    ),
    "context of a wrong type": (
        lambda L: L.DataLoader(_map(L), num_workers=1, multiprocessing_context=3),
        True,
    ),
}


@pytest.mark.parametrize("case", list(_LOADER_ERRORS))
def test_loader_argument_errors_like_torch(case):
    make, exact = _LOADER_ERRORS[case]
    _assert_like_torch(make, exact)


def test_loader_takes_torchs_other_keywords():
    for L in LIBS:
        loader = L.DataLoader(
            _map(L, 6),
            batch_size=2,
            num_workers=1,
            in_order=False,
            multiprocessing_context="spawn",
            pin_memory_device="",
        )
        assert loader.in_order is False and loader.pin_memory_device == ""
        assert isinstance(loader.multiprocessing_context, multiprocessing.context.BaseContext)
    # (the context is unused: darklib's workers are threads, and batches come in order)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4, 5]]
    ctx = multiprocessing.get_context("spawn")
    assert DD.DataLoader(_map(DD), num_workers=1, multiprocessing_context=ctx)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DD.DataLoader(_map(DD), pin_memory=True, pin_memory_device="cuda")
    assert any("pin_memory_device is deprecated" in str(w.message) for w in caught)


def test_loader_refuses_to_change_its_samplers_after_init_like_torch():
    for name, value in [
        ("batch_size", 3),
        ("sampler", [0]),
        ("batch_sampler", [[0]]),
        ("drop_last", True),
        ("dataset", [1]),
        ("persistent_workers", True),
    ]:
        _assert_like_torch(lambda L, n=name, v=value: setattr(L.DataLoader(_map(L)), n, v), True)
    loader = DD.DataLoader(_map(DD, 4), batch_size=2)
    loader.collate_fn = lambda batch: batch  # the others may change, as in torch
    loader.num_workers = 1
    assert list(loader) == [[0, 1], [2, 3]]


def test_loader_attributes_like_torch():
    for make in (
        lambda L: L.DataLoader(_stream(L)),
        lambda L: L.DataLoader(_stream(L), batch_size=None),
        lambda L: L.DataLoader(_map(L)),
        lambda L: L.DataLoader(_map(L), num_workers=2),
        lambda L: L.DataLoader(_map(L), batch_size=None, shuffle=True),
    ):
        theirs, ours = make(TD), make(DD)
        assert type(ours.sampler).__name__ == type(theirs.sampler).__name__
        assert type(ours.batch_sampler).__name__ == type(theirs.batch_sampler).__name__
        assert ours._auto_collation == theirs._auto_collation
        assert ours.prefetch_factor == theirs.prefetch_factor
        assert ours.collate_fn.__name__ == theirs.collate_fn.__name__


def test_num_workers_must_be_an_integer():
    with pytest.raises(TypeError, match="num_workers"):
        DD.DataLoader(_map(DD), num_workers=1.0)


def _fetch_with_warnings(L, **kwargs):
    loader = L.DataLoader(_stream(L, 4, length=2), batch_size=None, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = len(loader)
        got = [int(x) for x in loader]
    return n, got, [str(w.message) for w in caught]


@pytest.mark.parametrize("workers", [0, 2])
def test_iterable_dataset_yielding_more_than_its_len_warns_like_torch(workers):
    (n1, got1, w1), (n2, got2, w2) = (_fetch_with_warnings(L, num_workers=workers) for L in LIBS)
    assert (n1, sorted(got1)) == (n2, sorted(got2))
    assert len(w1) == len(w2) > 0
    assert all("was reported to be 2(when accessing len(dataloader))" in w for w in w2)
    assert ("replica at each worker" in w2[0]) == (workers > 0)
    # without len(loader) there is nothing to compare with, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(DD.DataLoader(_stream(DD, 4, length=2), batch_size=None))) == 4


def test_get_iterator_is_what_iter_returns():
    class Counting(DD.DataLoader):
        made = 0

        def _get_iterator(self):
            Counting.made += 1
            return super()._get_iterator()

    loader = Counting(_map(DD, 4), batch_size=2)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3]]
    assert list(loader) and Counting.made == 2


class _Endless(DD.Dataset):
    """A map-style dataset whose ``__getitem__`` never runs out (iterating it never ends)."""

    def __getitem__(self, i):
        return i

    def __len__(self):
        return 3


def test_chain_dataset_refuses_map_style_datasets_like_torch():
    chained = DD.ChainDataset([_stream(DD, 2), _Endless()])
    it = iter(chained)
    assert [next(it), next(it)] == [0, 1]
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        next(it)  # (it used to iterate the map-style dataset forever)
    with pytest.raises(TypeError):
        len(chained)
    it = iter(_stream(DD, 2) + _Endless())
    assert [next(it), next(it)] == [0, 1]
    with pytest.raises(AssertionError):
        next(it)
    _assert_like_torch(lambda L: list(L.ChainDataset([[1, 2]])))
    _assert_like_torch(lambda L: len(L.ChainDataset([_stream(L), _map(L)])))
    for L in LIBS:
        assert len(L.ChainDataset([_stream(L, 2), _stream(L, 3)])) == 5


def test_concat_and_tensor_dataset_errors_are_torchs_assertions_too():
    _assert_like_torch(lambda L: L.ConcatDataset([]), True)
    _assert_like_torch(lambda L: L.ConcatDataset([_map(L), _stream(L)]))
    _assert_like_torch(lambda L: _map(L) + _stream(L))
    _assert_like_torch(lambda L: L.ConcatDataset([_map(L, 3)])[-4])
    with pytest.raises(ValueError):  # darklib's own type, kept
        DD.ConcatDataset([])
    with pytest.raises(AssertionError):
        DD.TensorDataset(dl.zeros(2), dl.zeros(3))
    with pytest.raises(ValueError, match="size mismatch"):
        DD.TensorDataset(dl.zeros(2), dl.zeros(3))


def test_concat_dataset_cumsum_and_old_name_like_torch():
    parts = [[1, 2, 3], [], [4, 5]]
    for L in LIBS:
        assert L.ConcatDataset.cumsum(parts) == [3, 3, 5]
        with pytest.warns(FutureWarning, match="renamed to `cumulative_sizes`"):
            assert L.ConcatDataset(parts).cummulative_sizes == [3, 3, 5]


@pytest.mark.parametrize(
    "n, lengths",
    [(10, [3, 3]), (10, [0.5, 0.6]), (2, [1.5, -0.5]), (10, [12])],
)
def test_random_split_errors_like_torch(n, lengths):
    _assert_like_torch(lambda L: L.random_split(range(n), lengths))


def test_random_split_edge_cases_like_torch():
    for L in LIBS:
        assert L.random_split(range(0), []) == []
        with pytest.warns(UserWarning, match="Length of split at index 1 is 0. This might"):
            sizes = [len(s) for s in L.random_split(range(2), [0.1, 0.1, 0.8])]
        assert sizes == [1, 0, 1]


def test_collate_error_texts_contain_torchs():
    _assert_like_torch(lambda L: L.default_collate([np.ones(3), np.zeros(4)]))
    _assert_like_torch(lambda L: L.default_collate([np.ones((3, 2)), np.zeros((3, 1))]))
    _assert_like_torch(lambda L: L.default_collate([np.array(["a"]), np.array(["b"])]))
    _assert_like_torch(lambda L: L.default_collate([np.array([None]), np.array([None])]))
    _assert_like_torch(lambda L: L.default_collate([[1, 2], [3]]))
    for L, M in ((TD, torch), (DD, dl)):
        with pytest.raises(RuntimeError, match=r"equal size, but got \[2\] at entry 0 and \[3\]"):
            L.default_collate([M.ones(2), M.ones(3)])
    with pytest.raises(IndexError):  # torch's type for an empty batch
        DD.default_collate([])
    with pytest.raises(ValueError, match="empty"):
        DD.default_collate([])


def _plain(x):
    if isinstance(x, torch.Tensor | dl.Tensor):
        return ("tensor", str(x.numpy().dtype), x.numpy().tolist())
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return (type(x).__name__, [_plain(v) for v in x])
    return x


def test_collate_a_batch_of_arrays_with_tensors_among_them_like_torch():
    got = [
        _plain(L.default_collate([np.ones(2), M.zeros(2), [1.0, 2.0]]))
        for L, M in ((TD, torch), (DD, dl))
    ]
    assert got[0] == got[1] == ("tensor", "float64", [[1, 1], [0, 0], [1, 2]])


class _MyList(list):
    pass


_Pair = collections.namedtuple("_Pair", "a b")


@pytest.mark.parametrize(
    "sample",
    [
        range(3),
        _MyList([np.ones(2, np.float32), 1]),
        (np.zeros(1, np.int32), "x", b"y"),
        _Pair(np.ones(1), [np.int16(3)]),
        {"a": range(2), "b": {"c": np.float64(1.5)}},
        collections.OrderedDict(a=np.ones(1, np.uint8)),
        "text",
        np.array(["a", "b"]),
    ],
)
def test_default_convert_keeps_containers_like_torch(sample):
    theirs = TD.default_convert(sample)
    ours = DD.default_convert(sample)
    assert type(ours) is type(theirs) or isinstance(theirs, torch.Tensor)
    if isinstance(theirs, np.ndarray):
        assert ours is sample
    else:
        assert _plain(ours) == _plain(theirs)


def test_default_convert_in_a_loader_without_batching():
    class Ranges(DD.Dataset):
        def __getitem__(self, i):
            return range(i)

        def __len__(self):
            return 3

    assert list(DD.DataLoader(Ranges(), batch_size=None)) == [[], [0], [0, 1]]


def test_weighted_sampler_weights_are_a_float64_tensor_read_at_each_epoch():
    theirs = TD.WeightedRandomSampler([1, 2, 3], 5)
    ours = DD.WeightedRandomSampler([1, 2, 3], 5, generator=0)
    assert isinstance(ours.weights, dl.Tensor)
    assert str(ours.weights.numpy().dtype) == str(theirs.weights.numpy().dtype) == "float64"
    assert ours.weights.tolist() == theirs.weights.tolist()
    ours.weights[0] = 0.0  # as torch's sampler, the next epoch follows the new weights
    ours.weights[1] = 0.0
    assert list(ours) == [2] * 5
    ours.weights[2] = -1.0
    with pytest.raises(RuntimeError, match="non-negative"):
        list(ours)
