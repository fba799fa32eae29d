"""darklib.utils.data: datasets, samplers, collation and the DataLoader (threads included)."""

import contextlib
import threading
import warnings
from collections import namedtuple

import numpy as np
import pytest

import darklib as dl
from darklib.tensor import Tensor
from darklib.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
    sample_rng,
)


class Squares(Dataset):
    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full((2,), i * i, np.float32), i


class Noisy(Dataset):
    """Each sample draws from the per-sample stream, as random transforms do."""

    def __len__(self):
        return 37

    def __getitem__(self, i):
        return {"x": sample_rng().random(3).astype(np.float32), "i": i}


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield np.float32(sample_rng().random()), i

    def __len__(self):
        return self.n


def _as_list(batches):
    out = []
    for b in batches:
        if isinstance(b, dict):
            out.append({k: v.numpy().copy() for k, v in b.items()})
        else:
            out.append([v.numpy().copy() for v in b])
    return out


def test_tensor_dataset_subset_concat():
    a = np.arange(12).reshape(6, 2)
    ds = TensorDataset(dl.tensor(a), np.arange(6))
    xi, yi = ds[4]
    assert isinstance(xi, Tensor) and xi.tolist() == [8, 9] and yi == 4
    assert len(ds) == 6
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(np.zeros((3, 1)), np.zeros(4))
    sub = Subset(ds, [5, 0])
    assert len(sub) == 2 and sub[0][1] == 5 and sub[1][1] == 0
    cat = ConcatDataset([Squares(3), Squares(4)])
    assert len(cat) == 7 and cat[3][1] == 0 and cat[6][1] == 3 and cat[-1][1] == 3
    with pytest.raises(IndexError):
        cat[7]
    assert len(Squares(2) + Squares(5)) == 7


def test_random_split_lengths_and_fractions():
    ds = Squares(10)
    a, b = random_split(ds, [7, 3], generator=dl.Generator().manual_seed(1))
    assert len(a) == 7 and len(b) == 3
    assert sorted(a.indices + b.indices) == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=dl.Generator().manual_seed(1))
    assert a.indices == a2.indices
    parts = random_split(Squares(11), [0.5, 0.3, 0.2], generator=0)
    assert [len(p) for p in parts] == [6, 3, 2]
    with pytest.raises(ValueError, match="does not equal"):
        random_split(ds, [5, 4])


def test_samplers():
    ds = Squares(10)
    assert list(SequentialSampler(ds)) == list(range(10))
    r1 = list(RandomSampler(ds, generator=dl.Generator().manual_seed(3)))
    r2 = list(RandomSampler(ds, generator=dl.Generator().manual_seed(3)))
    assert r1 == r2 and sorted(r1) == list(range(10)) and r1 != list(range(10))
    s = RandomSampler(ds, generator=5)
    assert list(s) != list(s)  # an int seed makes a stream: epochs differ
    rep = list(RandomSampler(ds, replacement=True, num_samples=25, generator=0))
    assert len(rep) == 25 and max(rep) < 10
    more = list(RandomSampler(ds, num_samples=15, generator=0))
    assert len(more) == 15 and sorted(more[:10]) == list(range(10))
    assert sorted(SubsetRandomSampler([3, 5, 7], generator=0)) == [3, 5, 7]
    w = list(WeightedRandomSampler([0, 0, 1.0], 5, generator=0))
    assert w == [2] * 5
    bs = BatchSampler(SequentialSampler(ds), 4, drop_last=False)
    assert list(bs) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(bs) == 3
    bs = BatchSampler(SequentialSampler(ds), 4, drop_last=True)
    assert list(bs) == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(bs) == 2
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)


def test_default_collate_structures():
    Point = namedtuple("Point", "x y")
    batch = [
        {
            "img": np.ones((2, 3), np.uint8) * i,
            "label": i,
            "w": 0.5 * i,
            "name": f"n{i}",
            "pair": (np.float32(i), [i, i + 1]),
            "p": Point(i, True),
            "t": dl.tensor([1.0, 2.0]) * i,
        }
        for i in range(3)
    ]
    out = default_collate(batch)
    assert out["img"].shape == (3, 2, 3) and out["img"].dtype == dl.uint8
    assert out["label"].dtype == dl.int64 and out["label"].tolist() == [0, 1, 2]
    assert out["w"].dtype == dl.float64
    assert out["name"] == ["n0", "n1", "n2"]
    assert isinstance(out["pair"], list) and out["pair"][0].dtype == dl.float32
    assert out["pair"][1][1].tolist() == [1, 2, 3]
    assert isinstance(out["p"], Point) and out["p"].y.dtype == dl.bool
    assert out["t"].shape == (3, 2) and out["t"].tolist()[2] == [2.0, 4.0]
    with pytest.raises(RuntimeError, match=r"\[2\] at entry 0 and \[3\] at entry 1.*'boxes'"):
        default_collate([{"boxes": np.zeros(2)}, {"boxes": np.zeros(3)}])
    with pytest.raises(TypeError, match="found NoneType"):
        default_collate([None, None])


def test_loader_order_partial_and_drop_last():
    ds = Squares(10)
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 2) and batches[0][0].dtype == dl.float32
    assert batches[0][1].dtype == dl.int64
    assert len(DataLoader(ds, batch_size=4)) == 3
    dropped = list(DataLoader(ds, batch_size=4, drop_last=True))
    assert len(dropped) == 2 and len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    single = list(DataLoader(ds, batch_size=None))
    assert len(single) == 10 and isinstance(single[3][0], Tensor) and single[3][1] == 3
    custom = DataLoader(ds, batch_sampler=[[9, 1], [2]])
    assert [b[1].tolist() for b in custom] == [[9, 1], [2]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=3)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)


def test_shuffle_determinism():
    ds = Squares(20)
    a = [b[1].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, seed=7)]
    b = [b[1].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, seed=7)]
    flat = [i for b in a for i in b]
    assert a == b and sorted(flat) == list(range(20)) and flat != list(range(20))
    loader = DataLoader(ds, batch_size=5, shuffle=True, seed=7)
    e1 = [x[1].tolist() for x in loader]
    e2 = [x[1].tolist() for x in loader]
    assert e1 != e2  # a new order every epoch
    dl.manual_seed(3)
    c = [x[1].tolist() for x in DataLoader(ds, batch_size=5, shuffle=True)]
    dl.manual_seed(3)
    d = [x[1].tolist() for x in DataLoader(ds, batch_size=5, shuffle=True)]
    assert c == d


@pytest.mark.parametrize("shuffle", [False, True])
def test_workers_equal_no_workers(shuffle):
    ds = Noisy()
    ref = _as_list(DataLoader(ds, batch_size=4, shuffle=shuffle, seed=11))
    for workers in (1, 2, 3):
        got = _as_list(
            DataLoader(
                ds, batch_size=4, shuffle=shuffle, seed=11, num_workers=workers, prefetch_factor=3
            )
        )
        assert len(got) == len(ref) == 10
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g["i"], r["i"])
            np.testing.assert_array_equal(g["x"], r["x"])
    # the per-sample streams differ between samples and between epochs
    assert not np.array_equal(ref[0]["x"][0], ref[0]["x"][1])
    loader = DataLoader(ds, batch_size=4, seed=11, num_workers=2, persistent_workers=True)
    e1, e2 = _as_list(loader), _as_list(loader)
    assert not np.array_equal(e1[0]["x"], e2[0]["x"])


def test_workers_run_in_threads_with_worker_info():
    seen = set()
    lock = threading.Lock()

    class Spy(Squares):
        def __getitem__(self, i):
            info = get_worker_info()
            with lock:
                seen.add(
                    (
                        threading.current_thread().name.startswith("darklib-data"),
                        None if info is None else info.num_workers,
                    )
                )
            return super().__getitem__(i)

    list(DataLoader(Spy(16), batch_size=2, num_workers=2))
    assert seen == {(True, 2)}
    assert get_worker_info() is None


def test_iterable_dataset_workers_equal_no_workers():
    ref = _as_list(DataLoader(Stream(11), batch_size=3, seed=2))
    got = _as_list(DataLoader(Stream(11), batch_size=3, seed=2, num_workers=2))
    assert len(ref) == 4 and [r[1].tolist() for r in ref][-1] == [9, 10]
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g[0], r[0])
    assert len(_as_list(DataLoader(Stream(11), batch_size=3, drop_last=True))) == 3
    assert len(DataLoader(Stream(11), batch_size=3)) == 4
    chained = [
        b[1].tolist() for b in DataLoader(ChainDataset([Stream(2), Stream(3)]), batch_size=10)
    ]
    assert chained == [[0, 1, 0, 1, 2]]
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(3), shuffle=True)


class Broken(Squares):
    def __getitem__(self, i):
        if i == 13:
            raise ValueError("cannot decode")
        return super().__getitem__(i)


@pytest.mark.parametrize("workers", [0, 2])
def test_errors_name_the_sample(workers):
    loader = DataLoader(Broken(20), batch_size=4, num_workers=workers)
    it = iter(loader)
    got = [next(it) for _ in range(3)]
    assert got[2][1].tolist() == [8, 9, 10, 11]
    with pytest.raises(ValueError, match=r"sample 13 of Broken.*cannot decode"):
        next(it)


def test_iterable_errors_reach_caller():
    class Bad(IterableDataset):
        def __iter__(self):
            yield np.zeros(2)
            raise OSError("disk gone")

    with pytest.raises(OSError, match=r"sample 1 of Bad.*disk gone"):
        list(DataLoader(Bad(), batch_size=1, num_workers=2))


def test_collate_error_in_worker_names_batch():
    class Ragged(Squares):
        def __getitem__(self, i):
            return np.zeros(i + 1, np.float32)

    with pytest.raises(RuntimeError, match=r"collating the batch of samples \[0, 1\]"):
        list(DataLoader(Ragged(4), batch_size=2, num_workers=2))


def test_loader_argument_checks():
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(Squares(), num_workers=-1)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(Squares(), prefetch_factor=2)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Squares(), batch_size=0)
    with pytest.raises(ValueError, match="either generator or seed"):
        DataLoader(Squares(), seed=1, generator=dl.Generator())


def test_break_early_releases_workers():
    before = threading.active_count()
    for _ in range(3):
        for _b in DataLoader(Squares(100), batch_size=2, num_workers=2):
            break
    import gc
    import time

    gc.collect()
    deadline = time.time() + 2
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


def test_sample_seed_streams_and_nesting():
    from darklib.utils.data import sample_seed

    with sample_seed(5, 3):
        a = sample_rng().random(4)
    with sample_seed(5, 3):
        outer = sample_rng()
        first = outer.random(2)
        with sample_seed(5, 4):
            other = sample_rng().random(4)
        rest = outer.random(2)  # the outer stream goes on where it was
    np.testing.assert_array_equal(np.concatenate([first, rest]), a)
    assert not np.allclose(other, a)
    dl.manual_seed(2)
    x = sample_rng().random()  # outside a loader: darklib's default generator
    dl.manual_seed(2)
    assert sample_rng().random() == x


def test_loader_accepts_darklib_and_numpy_generators():
    ds = Squares(12)

    def order(**kw):
        return [i for b in DataLoader(ds, batch_size=5, shuffle=True, **kw) for i in b[1].tolist()]

    assert order(generator=dl.Generator().manual_seed(4)) == order(
        generator=dl.Generator().manual_seed(4)
    )
    assert order(generator=np.random.default_rng(4)) == order(generator=np.random.default_rng(4))
    assert sorted(order(generator=4)) == list(range(12))


def test_collate_keeps_numpy_scalar_dtypes_like_torch():
    import torch
    from torch.utils.data import default_collate as torch_collate

    sample = {"i32": np.int32(1), "f32": np.float32(1.5), "f16": np.float16(2), "u8": np.uint8(3)}
    sample.update({"i": 4, "f": 0.5, "b": True, "nb": np.bool_(False)})
    ours, theirs = default_collate([sample, sample]), torch_collate([sample, sample])
    for key, t in theirs.items():
        assert ours[key].dtype.name == str(t.dtype).replace("torch.", ""), key
        np.testing.assert_array_equal(ours[key].numpy(), t.numpy())
    assert isinstance(theirs["i"], torch.Tensor)


def test_random_split_lengths_follow_torch_rules():
    from torch.utils.data import random_split as torch_split

    cases = [(10, [1, 0]), (5, [0.33, 0.33, 0.34]), (3, [0.0, 1.0]), (11, [0.5, 0.5])]
    for n, lengths in cases:
        with pytest.warns(UserWarning) if 0 in lengths or 0.0 in lengths else _no_warning():
            ours = [len(s) for s in random_split(range(n), lengths, generator=0)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = [len(s) for s in torch_split(range(n), lengths)]
        assert ours == theirs, (n, lengths)


def test_concat_dataset_negative_index_out_of_range_is_a_value_error_too():
    c = ConcatDataset([list(range(3)), list(range(10, 14))])
    assert [c[-1], c[-4], c[-7]] == [13, 10, 0]
    with pytest.raises(ValueError, match="should not exceed"):  # torch's type
        c[-8]
    with pytest.raises(IndexError):  # and still an IndexError
        c[-8]
    with pytest.raises(IndexError):
        c[7]


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
