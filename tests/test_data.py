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


def test_iterable_dataset_workers_each_read_a_copy():
    # as torch: every worker iterates its own copy (a dataset that does not shard itself by
    # get_worker_info() comes once per worker), batches taken from the workers in turn;
    # worker 0 reads the streams of num_workers=0
    ref = _as_list(DataLoader(Stream(11), batch_size=3, seed=2))
    got = _as_list(DataLoader(Stream(11), batch_size=3, seed=2, num_workers=2))
    assert len(ref) == 4 and [r[1].tolist() for r in ref][-1] == [9, 10]
    assert len(got) == 8
    for k, r in enumerate(ref):
        np.testing.assert_array_equal(got[2 * k][0], r[0])
        np.testing.assert_array_equal(got[2 * k][1], r[1])
        np.testing.assert_array_equal(got[2 * k + 1][1], r[1])
        assert not np.array_equal(got[2 * k + 1][0], r[0])
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
    # the dataset's own exception object, with a note naming the sample
    with pytest.raises(ValueError, match=r"^cannot decode\nDataLoader: .*sample 13 of Broken"):
        next(it)


def test_iterable_errors_reach_caller():
    class Bad(IterableDataset):
        def __iter__(self):
            yield np.zeros(2)
            raise OSError("disk gone")

    with pytest.raises(OSError, match=r"disk gone\n.*sample 1 of Bad"):
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


# ------------------------------------------------------------------ torch parity (review)
def _torch_data():
    return pytest.importorskip("torch.utils.data")


class _Batched:
    """A map-style dataset with __getitems__, recording how it is read."""

    def __init__(self):
        self.calls = []

    def __len__(self):
        return 5

    def __getitem__(self, i):
        self.calls.append(("item", i))
        return i

    def __getitems__(self, idx):
        self.calls.append(("items", list(idx)))
        return [i * 100 for i in idx]


def test_loader_reads_a_batch_with_getitems_like_torch():
    T = _torch_data()
    got = []
    for L in (T, dl.utils.data):
        ds = _Batched()
        batches = [b.tolist() for b in L.DataLoader(ds, batch_size=2)]
        sub = [b.tolist() for b in L.DataLoader(L.Subset(ds, [4, 3, 2]), batch_size=2)]
        got.append((batches, ds.calls, sub))
    assert got[0] == got[1]
    assert got[1][0] == [[0, 100], [200, 300], [400]]
    assert got[1][1][:3] == [("items", [0, 1]), ("items", [2, 3]), ("items", [4])]


def test_subset_forwards_lists_of_indices_like_torch():
    T = _torch_data()
    out = []
    torch = pytest.importorskip("torch")
    for lib, L in ((torch, T), (dl, dl.utils.data)):
        sub = L.Subset(L.TensorDataset(lib.arange(10) * 10), [5, 2, 7])
        listed = sub[[0, 1]]
        items = sub.__getitems__([2, 0])
        assert isinstance(listed, tuple) and len(listed) == 1
        assert isinstance(items, list) and len(items) == 2
        out.append((listed[0].tolist(), [x[0].item() for x in items]))
        ds = _Batched()
        assert L.Subset(ds, [4, 3, 2]).__getitems__([0, 2]) == [400, 200]
        assert ds.calls == [("items", [4, 2])]
    assert out[0] == out[1] == ([50, 20], [70, 50])


class _CodeError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


class _Failing(Dataset):
    def __init__(self, kind):
        self.kind = kind

    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            if self.kind == "code":
                raise _CodeError(42, "bad sample")
            open("/nonexistent-dir-darklib/x.png")  # FileNotFoundError
        return i


@pytest.mark.parametrize("kind", ["code", "file"])
def test_dataset_exceptions_keep_type_and_attributes_like_torch(kind):
    T = _torch_data()
    caught = []
    for L in (T, dl.utils.data):
        with pytest.raises(Exception) as info:
            list(L.DataLoader(_Failing(kind), batch_size=1))
        e = info.value
        caught.append((type(e), str(e), getattr(e, "code", None), getattr(e, "errno", None)))
    assert caught[0] == caught[1]
    # with worker threads: the same object type, attributes kept, a note naming the worker
    with pytest.raises((_CodeError, FileNotFoundError)) as info:
        list(DataLoader(_Failing(kind), batch_size=1, num_workers=2))
    assert (type(info.value), str(info.value)) == caught[1][:2]
    if kind == "code":
        assert info.value.code == 42
    else:
        assert info.value.filename == "/nonexistent-dir-darklib/x.png"
    assert any("worker thread 0" in n for n in info.value.__notes__)


def test_worker_info_seeds_and_round_robin_like_torch():
    seen = {}
    lock = threading.Lock()

    class Who(Dataset):
        def __len__(self):
            return 12

        def __getitem__(self, i):
            w = get_worker_info()
            with lock:
                seen[i] = (w.id, w.seed, w.num_workers, w.dataset is self)
            return i

    loader = DataLoader(Who(), batch_size=2, num_workers=3, seed=0)
    seeds = []
    for _ in range(2):
        seen.clear()
        batches = [b.tolist() for b in loader]
        assert batches == [[2 * k, 2 * k + 1] for k in range(6)]
        # as torch: batch k is loaded by worker k % num_workers, every worker gets some
        assert [seen[2 * k][0] for k in range(6)] == [0, 1, 2, 0, 1, 2]
        assert {v[2] for v in seen.values()} == {3} and all(v[3] for v in seen.values())
        by_worker = {v[0]: v[1] for v in seen.values()}
        base = by_worker[0]
        assert by_worker == {0: base, 1: base + 1, 2: base + 2}  # base_seed + worker id
        seeds.append(base)
    assert seeds[0] != seeds[1]  # a new base seed every epoch
    # persistent workers keep the seeds they started with
    loader = DataLoader(Who(), batch_size=2, num_workers=2, persistent_workers=True)
    firsts = []
    for _ in range(2):
        seen.clear()
        list(loader)
        firsts.append({v[0]: v[1] for v in seen.values()})
    assert firsts[0] == firsts[1] and firsts[0][1] == firsts[0][0] + 1


def test_iterable_dataset_is_copied_per_worker_like_torch():
    class Four(IterableDataset):
        def __iter__(self):
            return iter(range(4))

    # torch 2.13: sorted [0, 0, 1, 1, 2, 2, 3, 3]; batches come from the workers in turn
    got = [b.tolist() for b in DataLoader(Four(), batch_size=2, num_workers=2)]
    assert got == [[0, 1], [0, 1], [2, 3], [2, 3]]

    class Sharded(IterableDataset):
        """The torch docs' pattern: each worker reads its share of its own copy."""

        def __init__(self):
            self.start, self.end = 0, 10

        def __iter__(self):
            w = get_worker_info()
            if w is None:
                return iter(range(self.start, self.end))
            assert w.dataset is not ds  # the worker's copy
            return iter(range(self.start + w.id, self.end, w.num_workers))

    ds = Sharded()
    got = [b.tolist() for b in DataLoader(ds, batch_size=2, num_workers=3)]
    assert got == [[0, 3], [1, 4], [2, 5], [6, 9], [7], [8]]
    assert sorted(x for b in got for x in b) == list(range(10))

    def init(wid):  # worker_init_fn edits the worker's own copy
        info = get_worker_info()
        info.dataset.start = 100 * (wid + 1)
        info.dataset.end = info.dataset.start + 2

    got = [b for b in DataLoader(Sharded(), batch_size=None, num_workers=2, worker_init_fn=init)]
    assert sorted(int(x) for x in got) == [100, 201]


def test_collate_keeps_torch_containers_and_dtypes():
    T = _torch_data()
    samples = [(0, "a", [1, 2]), (1, "b", [3, 4])]
    tb = T.default_collate(samples)
    db = default_collate(samples)
    assert type(db) is type(tb) is list
    assert type(db[1]) is type(tb[1]) is tuple and db[1] == tb[1] == ("a", "b")
    assert type(db[2]) is type(tb[2]) is list
    assert next(iter(DataLoader([(0, "a"), (1, "b")], batch_size=2)))[1] == ("a", "b")
    assert default_collate(["x", "y"]) == T.default_collate(["x", "y"]) == ["x", "y"]
    # an ndarray leading numbers in a list: each entry made a tensor, then stacked
    mixed = [np.ones(2), [1, 2]]
    t, d = T.default_collate(mixed), default_collate(mixed)
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] == "float64"
    np.testing.assert_array_equal(d.numpy(), t.numpy())
    # uint16/uint32/uint64: kept, as torch's (darklib has these dtypes)
    for dt in (np.uint16, np.uint32, np.uint64):
        batch = [np.array([1, 65535], dt), np.array([2, 3], dt)]
        d, t = default_collate(batch), T.default_collate(batch)
        assert d.numpy().dtype == dt and str(t.dtype) == f"torch.{np.dtype(dt).name}"
        np.testing.assert_array_equal(d.numpy(), t.numpy())


def _in_thread(fn, timeout=10.0):
    """``fn()`` in a daemon thread, joined with a timeout (a hang fails, not blocks): its
    result or exception."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # handed back to the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"hung for more than {timeout} s"
    return out


class _Stream(IterableDataset):
    def __iter__(self):
        return iter(range(4))


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("kind", ["map", "iterable"])
def test_failing_worker_init_fn_raises_its_own_exception(kind, persistent, capsys):
    """torch re-raises the exception of a failing worker_init_fn (not BrokenThreadPool),
    and darklib prints nothing of it on its own."""

    def init(wid):
        raise ValueError("bad seed setup")

    ds = list(range(4)) if kind == "map" else _Stream()
    loader = DataLoader(
        ds, batch_size=2, num_workers=2, worker_init_fn=init, persistent_workers=persistent
    )
    for _ in range(2):  # a second epoch (persistent workers: the same failed workers)
        out = _in_thread(lambda: list(loader))
        err = out.get("error")
        assert type(err) is ValueError and str(err) == "bad seed setup", err
        assert any("worker_init_fn failed" in n and "worker thread 0" in n for n in err.__notes__)
    captured = capsys.readouterr()
    assert "bad seed setup" not in captured.err + captured.out


def test_worker_init_fn_runs_once_per_worker_before_its_batches():
    seen = []
    lock = threading.Lock()

    def init(wid):
        with lock:
            seen.append((wid, dl.utils.data.get_worker_info().id))

    out = _in_thread(
        lambda: list(DataLoader(list(range(8)), batch_size=2, num_workers=2, worker_init_fn=init))
    )
    assert [b.tolist() for b in out["value"]] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert sorted(seen) == [(0, 0), (1, 1)]


def test_collating_numbers_with_other_values_names_the_types():
    import torch
    from torch.utils.data import default_collate as torch_collate

    for batch in ([1, "a"], [1.0, None], [np.float32(1), "a"], [1, [2]]):
        with pytest.raises(TypeError):
            torch_collate(batch)
        with pytest.raises(TypeError, match=r"invalid data type '\w+' at entry 1 of a batch of "):
            default_collate(batch)
    out = _in_thread(lambda: list(DataLoader([1, "a"], batch_size=2)))
    assert isinstance(out["error"], TypeError) and "'str'" in str(out["error"])
    for batch in ([1, 2.5], [True, 2], [1.5, 2]):
        assert default_collate(batch).tolist() == torch_collate(batch).tolist()
        assert str(default_collate(batch).dtype)[8:] == str(torch_collate(batch).dtype)[6:]
    assert torch.is_tensor(torch_collate([1, 2]))


def test_pin_memory_loader_warns_without_a_gpu_and_pins_with_one():
    ds = dl.utils.data.TensorDataset(dl.arange(8.0).reshape(4, 2), dl.arange(4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = dl.utils.data.DataLoader(ds, batch_size=2, pin_memory=True)
    batches = list(loader)
    assert [tuple(x.shape) for x, _ in batches] == [(2, 2), (2, 2)]
    if dl.cuda.is_available():
        assert all(x.is_pinned() and y.is_pinned() for x, y in batches)
    else:
        assert any("no accelerator is found" in str(w.message) for w in caught)
        assert not any(x.is_pinned() for x, _ in batches)
