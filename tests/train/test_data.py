"""Tests of minimtl.data: the synthetic generator, splits, batches, preprocessing, .npz files.

Expected values are computed here from the documented generative process or by hand, never
read back from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minimtl.data import (
    TASKS,
    Dataset,
    MinMaxScaler,
    MovingAverage,
    NotFittedError,
    Preprocessor,
    Standardizer,
    iterate_batches,
    load_npz,
    make_synthetic,
    save_npz,
    train_val_test_split,
)

K = 10  # classes at the defaults


@pytest.fixture(scope="module")
def default_ds() -> Dataset:
    return make_synthetic()


def _ids_dataset(n: int, seq_len: int = 4, features: int = 2) -> Dataset:
    """A tiny Dataset whose example i carries i in every array, to track identity."""
    ids = np.arange(n)
    x = np.broadcast_to(ids[:, None, None], (n, seq_len, features)).astype(np.float32)
    inputs = {t: x.copy() for t in TASKS}
    targets = {
        "user": ids.astype(np.int64),
        "goods": np.broadcast_to((ids % 2)[:, None], (n, 3)).astype(np.float32),
        "ads": ids.astype(np.int64),
    }
    return Dataset(inputs, targets, {"note": "ids"})


def _sampling_error(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


# ----------------------------------------------------------------------------- generator


def test_make_synthetic_same_seed_gives_identical_arrays():
    a = make_synthetic(samples=50, seq_len=16, features=4, seed=7)
    b = make_synthetic(samples=50, seq_len=16, features=4, seed=7)
    for t in TASKS:
        np.testing.assert_array_equal(a.inputs[t], b.inputs[t])
        np.testing.assert_array_equal(a.targets[t], b.targets[t])
    for key in a.latents:
        np.testing.assert_array_equal(a.latents[key], b.latents[key])
    assert a.meta == b.meta


def test_make_synthetic_different_seeds_differ():
    a = make_synthetic(samples=50, seq_len=16, features=4, seed=0)
    b = make_synthetic(samples=50, seq_len=16, features=4, seed=1)
    for t in TASKS:
        assert not np.array_equal(a.inputs[t], b.inputs[t])
    assert not np.array_equal(a.targets["user"], b.targets["user"])
    assert a.meta["affinity"] != b.meta["affinity"]


def test_default_dataset_shapes_and_dtypes(default_ds):
    assert len(default_ds) == 2400
    assert default_ds.seq_len == 64 and default_ds.features == 32
    for t in TASKS:
        assert default_ds.inputs[t].shape == (2400, 64, 32)
        assert default_ds.inputs[t].dtype == np.float32
        assert np.all(np.isfinite(default_ds.inputs[t]))
    assert default_ds.targets["user"].shape == (2400,)
    assert default_ds.targets["user"].dtype == np.int64
    assert default_ds.targets["goods"].shape == (2400, K)
    assert default_ds.targets["goods"].dtype == np.float32
    assert default_ds.targets["ads"].shape == (2400,)
    assert default_ds.targets["ads"].dtype == np.int64


def test_default_split_gives_sixty_batches_of_32(default_ds):
    train, _, _ = train_val_test_split(default_ds)
    assert len(train) == 1920
    assert len(list(iterate_batches(train, 32, rng=0))) == 60


def test_labels_lie_in_their_ranges_and_every_class_occurs(default_ds):
    for t in ("user", "ads"):
        y = default_ds.targets[t]
        assert y.min() >= 0 and y.max() < K
        assert len(np.unique(y)) == K
    g = default_ds.targets["goods"]
    assert set(np.unique(g).tolist()) == {0.0, 1.0}
    assert 0.2 < g.mean() < 0.8  # neither label value is rare


def test_custom_sizes_are_respected():
    ds = make_synthetic(samples=7, seq_len=9, features=3, classes=4, seed=3)
    assert all(ds.inputs[t].shape == (7, 9, 3) for t in TASKS)
    assert ds.targets["goods"].shape == (7, 4)
    assert ds.targets["user"].max() < 4 and ds.targets["ads"].max() < 4


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(samples=0),
        dict(seq_len=2),
        dict(classes=1),
        dict(noise=-1.0),
        dict(relatedness=1.5),
        dict(relatedness=-0.1),
        dict(label_noise=2.0),
    ],
)
def test_make_synthetic_rejects_bad_parameters(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        make_synthetic(**kwargs)


def test_zero_noise_sequences_are_exactly_the_planted_motifs():
    """With σ = 0 the user sequence is 3 copies of one motif per class: identical
    interests give sequences with equal time-sums, different interests do not."""
    ds = make_synthetic(samples=200, seq_len=12, features=3, noise=0.0, seed=2)
    z = ds.latents["interest"]
    sums = ds.inputs["user"].sum(axis=1)  # (N, F): 3 · Σ_t P[z, t]
    for c in np.unique(z):
        group = sums[z == c]
        np.testing.assert_allclose(group, np.broadcast_to(group[0], group.shape), atol=1e-4)
    first = {c: sums[z == c][0] for c in np.unique(z)}
    classes = sorted(first)
    assert not np.allclose(first[classes[0]], first[classes[1]], atol=1e-3)


# ----------------------------------------------------------------------------- planted signal


def _pooled(ds: Dataset) -> np.ndarray:
    """(N, 3F + 1): time-means of the three sequences and a constant."""
    feats = [ds.inputs[t].astype(np.float64).mean(axis=1) for t in TASKS]
    return np.concatenate(feats + [np.ones((len(ds), 1))], axis=1)


def _ridge(x: np.ndarray, y: np.ndarray, lam: float = 1.0) -> np.ndarray:
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def _baseline_accuracies(ds: Dataset) -> tuple[dict[str, float], dict[str, float], int]:
    """Ridge classifiers on pooled features, trained on 80%, scored on the other 20%."""
    train, _, test = train_val_test_split(ds, val_fraction=0.0, test_fraction=0.2, seed=5)
    xtr, xte = _pooled(train), _pooled(test)
    acc, chance = {}, {}
    for t in ("user", "ads"):
        w = _ridge(xtr, np.eye(K)[train.targets[t]])
        acc[t] = float(np.mean((xte @ w).argmax(axis=1) == test.targets[t]))
        chance[t] = float(np.bincount(train.targets[t], minlength=K).max() / len(train))
    w = _ridge(xtr, train.targets["goods"])
    acc["goods"] = float(np.mean(((xte @ w) > 0.5) == (test.targets["goods"] > 0.5)))
    majority = train.targets["goods"].mean(axis=0) > 0.5  # (G,)
    chance["goods"] = float(np.mean(majority[None, :] == (test.targets["goods"] > 0.5)))
    return acc, chance, len(test)


@pytest.fixture(scope="module")
def baseline(default_ds):
    return _baseline_accuracies(default_ds)


def test_linear_baseline_beats_chance_on_held_out_data(baseline):
    acc, chance, n = baseline
    for t in TASKS:
        margin = 4 * _sampling_error(chance[t], n)
        assert acc[t] > chance[t] + margin, (t, acc[t], chance[t])


def test_best_accuracy_lies_between_chance_and_one_and_bounds_the_baseline(default_ds, baseline):
    best = default_ds.meta["best_accuracy"]
    assert set(best) == set(TASKS)
    acc, chance, n = baseline
    for t in TASKS:
        assert chance[t] < best[t] < 1.0, (t, best[t])
        assert acc[t] <= best[t] + 3 * _sampling_error(best[t], n), (t, acc[t], best[t])


@pytest.mark.parametrize("relatedness", [0.0, 0.3, 0.8, 1.0])
def test_best_accuracy_matches_the_latent_oracle(relatedness):
    """Predicting from the planted latents as the documented process implies reaches the
    stated best accuracy (to sampling error)."""
    n = 20000
    ds = make_synthetic(samples=n, seq_len=5, features=1, relatedness=relatedness,
                        label_noise=0.2, seed=11)
    z, w, v = ds.latents["interest"], ds.latents["ad"], ds.latents["viewed"]
    affinity = np.array(ds.meta["affinity"], dtype=bool)
    oracle = {
        "user": np.mean(z == ds.targets["user"]),
        "goods": np.mean((affinity[z] | v) == (ds.targets["goods"] > 0.5)),
        "ads": np.mean((z if relatedness >= 0.5 else w) == ds.targets["ads"]),
    }
    for t in TASKS:
        best = ds.meta["best_accuracy"][t]
        assert abs(oracle[t] - best) < 4 * _sampling_error(best, n), (t, oracle[t], best)


def test_best_accuracy_closed_forms_at_the_extremes():
    clean = make_synthetic(samples=10, seq_len=5, features=1, relatedness=1.0,
                           label_noise=0.0).meta["best_accuracy"]
    assert clean == pytest.approx({"user": 1.0, "goods": 1.0, "ads": 1.0})
    # r = 1/2, ε = 0: a coin between z and w; right half the time unless z = w (1/K).
    coin = make_synthetic(samples=10, seq_len=5, features=1, relatedness=0.5,
                          label_noise=0.0).meta["best_accuracy"]
    assert coin["ads"] == pytest.approx(1 / K + (1 - 1 / K) * 0.5)


def test_relatedness_sets_how_often_the_ad_class_is_the_user_interest():
    n, eps = 20000, 0.1
    rates = []
    for r in (0.0, 0.5, 1.0):
        ds = make_synthetic(samples=n, seq_len=5, features=1, relatedness=r,
                            label_noise=eps, seed=4)
        rate = float(np.mean(ds.targets["ads"] == ds.latents["interest"]))
        # clean click = z with prob r, else w (= z with prob 1/K); then replaced with prob ε
        expected = (1 - eps) * (r + (1 - r) / K) + eps / K
        assert abs(rate - expected) < 4 * _sampling_error(expected, n), (r, rate, expected)
        rates.append(rate)
    assert rates[0] < rates[1] < rates[2]


def test_latents_drive_the_goods_labels_and_views():
    n = 20000
    ds = make_synthetic(samples=n, seq_len=5, features=1, label_noise=0.0, seed=6)
    z, v = ds.latents["interest"], ds.latents["viewed"]
    affinity = np.array(ds.meta["affinity"], dtype=bool)
    np.testing.assert_array_equal(ds.targets["goods"] > 0.5, affinity[z] | v)
    liked = affinity[z]
    # documented view rates: 0.6 for liked goods, 0.25 for the others
    for mask, rate in ((liked, 0.6), (~liked, 0.25)):
        assert abs(v[mask].mean() - rate) < 4 * _sampling_error(rate, int(mask.sum()))
    # each class likes round(0.3 · G) = 3 goods
    np.testing.assert_array_equal(affinity.sum(axis=1), 3)


def test_chance_accuracy_matches_predicting_the_majority_without_inputs():
    n = 20000
    ds = make_synthetic(samples=n, seq_len=5, features=1, seed=14)
    chance = ds.meta["chance_accuracy"]
    assert chance["user"] == pytest.approx(1 / K) and chance["ads"] == pytest.approx(1 / K)
    goods = ds.targets["goods"] > 0.5
    majority = goods.mean(axis=0) > 0.5
    empirical = float(np.mean(goods == majority))
    assert abs(empirical - chance["goods"]) < 4 * _sampling_error(chance["goods"], n)


# ----------------------------------------------------------------------------- split, batches


def test_split_is_disjoint_complete_and_sized():
    ds = _ids_dataset(103)
    train, val, test = train_val_test_split(ds, val_fraction=0.1, test_fraction=0.2, seed=1)
    ids = [s.targets["user"] for s in (train, val, test)]
    assert (len(ids[1]), len(ids[2])) == (10, 21)  # round(10.3), round(20.6)
    assert len(ids[0]) == 103 - 10 - 21
    joined = np.concatenate(ids)
    assert len(np.unique(joined)) == 103 and set(joined.tolist()) == set(range(103))
    # every array of an example moved together
    for s in (train, val, test):
        np.testing.assert_array_equal(s.inputs["goods"][:, 0, 0], s.targets["user"])


def test_split_is_deterministic_and_shuffled():
    ds = _ids_dataset(100)
    a = train_val_test_split(ds, seed=3)
    b = train_val_test_split(ds, seed=3)
    c = train_val_test_split(ds, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.targets["user"], y.targets["user"])
    assert not np.array_equal(a[0].targets["user"], c[0].targets["user"])
    assert not np.array_equal(a[0].targets["user"], np.arange(80))


@pytest.mark.parametrize("val, test", [(-0.1, 0.1), (1.0, 0.0), (0.1, 1.2), (0.6, 0.4),
                                       (0.5, 0.6)])
def test_split_rejects_bad_fractions(val, test):
    with pytest.raises(ValueError, match="fraction"):
        train_val_test_split(_ids_dataset(10), val_fraction=val, test_fraction=test)


def test_subset_copies_and_keeps_meta():
    ds = _ids_dataset(6)
    sub = ds.subset([4, 1])
    np.testing.assert_array_equal(sub.targets["ads"], [4, 1])
    sub.inputs["user"][:] = -1
    assert ds.inputs["user"].min() == 0
    assert sub.meta["note"] == "ids" and len(sub) == 2


def test_dataset_rejects_mismatched_lengths():
    ds = _ids_dataset(4)
    targets = dict(ds.targets, ads=ds.targets["ads"][:3])
    with pytest.raises(ValueError, match="ads"):
        Dataset(ds.inputs, targets, {})


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 7, 32, 50])
def test_batches_cover_every_sample_exactly_once(shuffle, batch_size):
    ds = _ids_dataset(50)
    seen = []
    for inputs, targets in iterate_batches(ds, batch_size, shuffle=shuffle, rng=0):
        assert set(inputs) == set(TASKS) and set(targets) == set(TASKS)
        np.testing.assert_array_equal(inputs["ads"][:, 0, 0], targets["user"])
        assert len(targets["user"]) <= batch_size
        seen.append(targets["user"])
    joined = np.concatenate(seen)
    assert sorted(joined.tolist()) == list(range(50))
    assert len(seen) == math.ceil(50 / batch_size)
    if not shuffle:
        np.testing.assert_array_equal(joined, np.arange(50))


def test_batches_drop_last_keeps_only_full_batches():
    sizes = [len(t["user"]) for _, t in iterate_batches(_ids_dataset(50), 16, drop_last=True,
                                                         rng=0)]
    assert sizes == [16, 16, 16]


def test_batches_are_deterministic_given_the_rng():
    ds = _ids_dataset(40)

    def order(rng):
        return np.concatenate([t["user"] for _, t in iterate_batches(ds, 8, rng=rng)])

    np.testing.assert_array_equal(order(np.random.default_rng(9)),
                                  order(np.random.default_rng(9)))
    np.testing.assert_array_equal(order(9), order(9))
    assert not np.array_equal(order(9), order(10))
    # one generator across epochs gives a new order each epoch
    g = np.random.default_rng(9)
    assert not np.array_equal(order(g), order(g))


def test_batches_reject_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        list(iterate_batches(_ids_dataset(4), 0))


# ----------------------------------------------------------------------------- preprocessing


def _features_with_scales(seed: int, shape=(30, 20, 4)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 10.0, 0.01, 3.0])
    shift = np.array([5.0, -100.0, 0.0, 2.0])
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def test_standardizer_gives_mean_zero_std_one_per_feature():
    x = _features_with_scales(0)
    y = Standardizer().fit_transform(x)
    assert y.shape == x.shape and y.dtype == np.float32
    y = y.astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=(0, 1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1)), 1.0, atol=1e-5)


def test_standardizer_constant_feature_maps_to_zero_without_nan():
    x = _features_with_scales(1)
    x[..., 2] = 7.0
    y = Standardizer().fit_transform(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[..., 2], 0.0)
    # std 0 is replaced by 1: new data is only shifted by the fitted mean
    s = Standardizer().fit(np.full((2, 3, 1), 7.0))
    np.testing.assert_allclose(s.transform(np.array([[[9.0], [6.5]]])), [[[2.0], [-0.5]]])


def test_minmax_maps_train_to_unit_interval_per_feature():
    x = _features_with_scales(2)
    x[..., 3] = -4.0
    y = MinMaxScaler().fit_transform(x).astype(np.float64)
    assert y.min() >= 0.0 and y.max() <= 1.0
    np.testing.assert_allclose(y[..., :3].min(axis=(0, 1)), 0.0, atol=1e-6)
    np.testing.assert_allclose(y[..., :3].max(axis=(0, 1)), 1.0, atol=1e-6)
    np.testing.assert_array_equal(y[..., 3], 0.0)


def test_minmax_uses_fitted_range_on_new_data():
    s = MinMaxScaler().fit(np.array([[[0.0], [4.0]]]))
    np.testing.assert_allclose(s.transform(np.array([[[2.0], [8.0], [-4.0]]])),
                               [[[0.5], [2.0], [-1.0]]])


def test_moving_average_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])[None, :, None]
    np.testing.assert_allclose(MovingAverage(3).transform(x)[0, :, 0],
                               [1.5, 2.0, 3.0, 4.0, 4.5])
    # even window: one step back, two ahead
    np.testing.assert_allclose(MovingAverage(4).transform(x)[0, :, 0],
                               [2.0, 2.5, 3.5, 4.0, 4.5])
    np.testing.assert_allclose(MovingAverage(1).transform(x), x)
    # a window longer than the sequence averages everything available
    np.testing.assert_allclose(MovingAverage(99).transform(x)[0, :, 0], [3.0] * 5)


def test_moving_average_of_a_constant_is_the_constant():
    x = np.full((2, 11, 3), 2.5, dtype=np.float32)
    for window in (1, 2, 3, 5, 20):
        y = MovingAverage(window).fit_transform(x)
        assert y.shape == x.shape and y.dtype == np.float32
        np.testing.assert_allclose(y, 2.5, rtol=1e-6)


@given(
    x=st.tuples(st.integers(1, 3), st.integers(1, 16), st.integers(1, 3)).flatmap(
        lambda shape: arrays(np.float64, shape, elements=st.floats(
            -10, 10, width=64, allow_subnormal=False))),
    window=st.integers(1, 8),
)
def test_moving_average_equals_the_windowed_mean_of_available_samples(x, window):
    length = x.shape[1]
    back = (window - 1) // 2
    expected = np.empty_like(x)
    for t in range(length):
        lo, hi = max(0, t - back), min(length, t - back + window)
        expected[:, t] = x[:, lo:hi].mean(axis=1)
    np.testing.assert_allclose(MovingAverage(window).transform(x), expected, atol=1e-12)


@pytest.mark.parametrize("window", [3, 5])
def test_moving_average_divides_white_noise_variance_by_window(window):
    x = np.random.default_rng(0).standard_normal((400, 64, 8))
    y = MovingAverage(window).transform(x)
    interior = y[:, window:-window]
    assert interior.var() == pytest.approx(1.0 / window, rel=0.05)


def test_moving_average_rejects_bad_window():
    for window in (0, -1, 2.5):
        with pytest.raises(ValueError, match="window"):
            MovingAverage(window)


def test_transform_before_fit_raises():
    x = np.zeros((2, 3, 1))
    for step in (Standardizer(), MinMaxScaler()):
        with pytest.raises(NotFittedError, match="before fit"):
            step.transform(x)
    with pytest.raises(NotFittedError, match="before fit"):
        Preprocessor().transform(_ids_dataset(3))


@pytest.mark.parametrize("cls, kwargs", [(Standardizer, {}), (MinMaxScaler, {}),
                                         (MovingAverage, {"window": 4})])
def test_step_state_round_trips_through_npz(tmp_path, cls, kwargs):
    x = _features_with_scales(3)
    step = cls(**kwargs).fit(x)
    state = step.state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    np.savez(tmp_path / "s.npz", **state)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        again = cls.from_state({k: f[k] for k in f.files})
    x_new = _features_with_scales(4)
    np.testing.assert_array_equal(again.transform(x_new), step.transform(x_new))


def test_preprocessor_statistics_come_from_the_train_split_only():
    ds = make_synthetic(samples=300, seq_len=16, features=4, seed=8)
    train, val, test = train_val_test_split(ds, seed=0)
    val.inputs["user"] += 50.0  # very different from train: must not leak into the stats
    pre = Preprocessor(("denoise", "standardize"), window=3).fit(train)
    before = {k: v.copy() for k, v in pre.state().items()}
    out_val = pre.transform(val)
    after = pre.state()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    # the statistics are those of the denoised training sequences
    smooth = MovingAverage(3).transform(train.inputs["user"]).astype(np.float64)
    np.testing.assert_allclose(after["user/1/mean"], smooth.mean(axis=(0, 1)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(after["user/1/std"], smooth.std(axis=(0, 1)), rtol=1e-5)
    # so train is standardised, and the shifted validation set is visibly not
    out_train = pre.transform(train)
    for t in TASKS:
        y = out_train.inputs[t].astype(np.float64)
        np.testing.assert_allclose(y.mean(axis=(0, 1)), 0.0, atol=1e-4)
        np.testing.assert_allclose(y.std(axis=(0, 1)), 1.0, atol=1e-4)
    assert out_val.inputs["user"].mean() > 5.0


def test_preprocessor_returns_a_new_dataset_and_leaves_input_alone():
    ds = make_synthetic(samples=40, seq_len=10, features=3, seed=9)
    copies = {t: ds.inputs[t].copy() for t in TASKS}
    out = Preprocessor(("denoise", "minmax"), window=5).fit(ds).transform(ds)
    assert out is not ds
    for t in TASKS:
        np.testing.assert_array_equal(ds.inputs[t], copies[t])
        assert out.inputs[t].shape == ds.inputs[t].shape
        assert out.inputs[t].dtype == np.float32
        assert out.inputs[t].min() >= 0.0 and out.inputs[t].max() <= 1.0
        np.testing.assert_array_equal(out.targets[t], ds.targets[t])


def test_preprocessor_state_round_trips(tmp_path):
    ds = make_synthetic(samples=60, seq_len=10, features=3, seed=10)
    pre = Preprocessor(("standardize", "denoise", "minmax"), window=2).fit(ds)
    np.savez(tmp_path / "p.npz", **pre.state())
    with np.load(tmp_path / "p.npz", allow_pickle=False) as f:
        again = Preprocessor.from_state({k: f[k] for k in f.files})
    assert again.steps == pre.steps and again.window == 2
    other = make_synthetic(samples=20, seq_len=10, features=3, seed=12)
    for t in TASKS:
        np.testing.assert_array_equal(again.transform(other).inputs[t],
                                      pre.transform(other).inputs[t])


def test_preprocessor_rejects_unknown_step():
    with pytest.raises(ValueError, match="normalise"):
        Preprocessor(("normalise",))


# ----------------------------------------------------------------------------- .npz files


def test_npz_round_trip(tmp_path):
    ds = make_synthetic(samples=30, seq_len=8, features=3, seed=13)
    path = tmp_path / "ds.npz"
    save_npz(ds, path)
    back = load_npz(path)
    for t in TASKS:
        np.testing.assert_array_equal(back.inputs[t], ds.inputs[t])
        np.testing.assert_array_equal(back.targets[t], ds.targets[t])
        assert back.inputs[t].dtype == np.float32
        assert back.targets[t].dtype == ds.targets[t].dtype
    for key in ds.latents:
        np.testing.assert_array_equal(back.latents[key], ds.latents[key])
    assert back.meta["best_accuracy"] == ds.meta["best_accuracy"]
    assert back.meta["classes"] == K


def _valid_arrays(n: int = 6, seq_len: int = 5, features: int = 2, goods: int = 3) -> dict:
    rng = np.random.default_rng(0)
    return {
        "user": rng.standard_normal((n, seq_len, features)),
        "goods": rng.standard_normal((n, seq_len, features)),
        "ads": rng.standard_normal((n, seq_len, features)),
        "user_labels": np.arange(n) % 4,
        "goods_labels": rng.integers(0, 2, size=(n, goods)),
        "ads_labels": (np.arange(n) + 1) % 4,
    }


def test_load_npz_accepts_plain_user_data(tmp_path):
    arrays = _valid_arrays()
    np.savez(tmp_path / "u.npz", **arrays)
    ds = load_npz(tmp_path / "u.npz")
    assert len(ds) == 6 and ds.seq_len == 5 and ds.features == 2
    assert ds.inputs["user"].dtype == np.float32
    assert ds.targets["user"].dtype == np.int64 and ds.targets["goods"].dtype == np.float32
    np.testing.assert_array_equal(ds.targets["goods"], arrays["goods_labels"])
    assert ds.meta["classes"] == 4  # 1 + the largest label


def _with(**changes) -> dict:
    arrays = _valid_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


def _nan_at(key: str, count: int, value: float = np.nan) -> np.ndarray:
    a = _valid_arrays()[key].astype(np.float64)
    a.reshape(-1)[:count] = value
    return a


LOAD_ERRORS = [
    # (arrays written, extra load_npz kwargs, fragments the message must contain)
    (_with(ads_labels=None), {}, ["missing", "ads_labels", "user_labels"]),
    (_with(goods=None, user_labels=None), {}, ["missing", "'goods'", "'user_labels'", "found"]),
    (_with(goods=np.zeros((6, 5, 3))), {}, ["'goods'", "(6, 5, 3)", "(6, 5, 2)"]),
    (_with(ads=np.zeros((6, 4, 2))), {}, ["'ads'", "(6, 4, 2)", "(6, 5, 2)"]),
    (_with(user=np.zeros((6, 10))), {}, ["'user'", "(6, 10)", "(N, L, F)"]),
    (_with(goods_labels=np.zeros(6)), {}, ["'goods_labels'", "(6,)", "(N, G)"]),
    (_with(user_labels=np.zeros((6, 1), dtype=int)), {}, ["'user_labels'", "(6, 1)"]),
    (_with(ads_labels=np.zeros(5, dtype=int)), {}, ["mismatched N", "'ads_labels'", "5", "6"]),
    (_with(goods=np.zeros((7, 5, 2))), {}, ["mismatched N", "'goods'", "7", "6"]),
    (_with(user=_nan_at("user", 3)), {}, ["'user'", "3 NaN/inf"]),
    (_with(ads=_nan_at("ads", 2, np.inf)), {}, ["'ads'", "2 NaN/inf"]),
    (_with(user_labels=np.array([0, 1, 2, -1, 0, 1])), {}, ["'user_labels'", "out of range"]),
    (_with(ads_labels=np.array([0, 1, 2, 3, 0, 9])), {"classes": 4},
     ["'ads_labels'", "out of range", "[0, 4)", "9"]),
    (_with(user_labels=np.array([0.0, 1.5, 2, 3, 0, 1])), {}, ["'user_labels'", "integer"]),
    (_with(goods_labels=np.full((6, 3), 2)), {}, ["'goods_labels'", "0 or 1", "18"]),
    (_with(user=np.full((6, 5, 2), "a")), {}, ["'user'", "numeric"]),
]


@pytest.mark.parametrize("arrays, kwargs, fragments", LOAD_ERRORS,
                         ids=[f"case{i}" for i in range(len(LOAD_ERRORS))])
def test_load_npz_errors_name_the_problem(tmp_path, arrays, kwargs, fragments):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as err:
        load_npz(path, **kwargs)
    msg = str(err.value)
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)


def test_load_npz_refuses_pickled_objects(tmp_path):
    arrays = _valid_arrays()
    arrays["user_labels"] = np.array([{"x": 1}] * 6, dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="'user_labels' holds Python objects") as e:
        load_npz(path)
    assert "allow_pickle" not in str(e.value)      # never the advice to unpickle


@pytest.mark.parametrize("n,val_fraction,test_fraction,sizes", [
    (17, 0.1, 0.1, (13, 2, 2)),     # 1.7 rounds up: a floor would give (15, 1, 1)
    (19, 0.2, 0.1, (13, 4, 2)),     # 3.8 -> 4, 1.9 -> 2
    (10, 0.1, 0.1, (8, 1, 1)),
    (24, 0.25, 0.0, (18, 6, 0)),
])
def test_split_sizes_round_to_the_nearest_sample(n, val_fraction, test_fraction, sizes):
    ds = make_synthetic(samples=n, seq_len=8, features=2, seed=0)
    parts = train_val_test_split(ds, val_fraction=val_fraction, test_fraction=test_fraction)
    assert tuple(len(p) for p in parts) == sizes
