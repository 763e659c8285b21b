"""``.npz`` files that declare their tasks: a round trip keeps every array and task, widths
come from the data, and each broken file is one ``ValueError`` naming the key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minimtl import data as D

N = 30


def _arrays(rng=None) -> dict:
    rng = np.random.default_rng(0) if rng is None else rng
    return dict(
        tasks=json.dumps([{"name": "click", "kind": "binary"},
                          {"name": "genre", "kind": "multiclass"},
                          {"name": "tags", "kind": "multilabel", "weight": 0.5},
                          {"name": "rating", "kind": "regression"}]),
        x_seq=rng.standard_normal((N, 12, 3)), x_num=rng.standard_normal((N, 4)),
        x_cat=rng.integers(0, 5, (N, 2)),
        y_click=(rng.random(N) > 0.5).astype(float), y_genre=rng.integers(0, 15, N),
        y_tags=(rng.random((N, 5)) > 0.5).astype(np.int8), y_rating=rng.standard_normal(N))


def _save(tmp_path, **arrays):
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays)
    return path


def test_a_declared_file_loads_with_widths_from_its_data_and_round_trips(tmp_path):
    ds = D.load_npz(_save(tmp_path, **_arrays()))
    assert ds.meta["tasks"] == [
        {"name": "click", "kind": "binary", "outputs": 1, "weight": 1.0},
        {"name": "genre", "kind": "multiclass", "outputs": 15, "weight": 1.0},
        {"name": "tags", "kind": "multilabel", "outputs": 5, "weight": 0.5},
        {"name": "rating", "kind": "regression", "outputs": 1, "weight": 1.0}]
    assert ds.meta["inputs"] == {"cat": "categorical", "num": "continuous", "seq": "sequence"}
    assert ds.inputs["cat"].dtype == np.int64 and ds.inputs["seq"].dtype == np.float32
    assert ds.targets["genre"].dtype == np.int64 and ds.targets["tags"].dtype == np.float32
    again = tmp_path / "again.npz"
    D.save_npz(ds, again)
    back = D.load_npz(again)
    assert back.meta["tasks"] == ds.meta["tasks"]
    for k in ds.inputs:
        np.testing.assert_array_equal(back.inputs[k], ds.inputs[k])
    for k in ds.targets:
        np.testing.assert_array_equal(back.targets[k], ds.targets[k])


def _broken(**change):
    arrays = _arrays()
    for k, v in change.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    return arrays


def _tasks(*items) -> str:
    return json.dumps(list(items))


@pytest.mark.parametrize("change,match", [
    (dict(tasks="not json"), "key 'tasks' is not a JSON string"),
    (dict(tasks=json.dumps({"name": "a"})), "non-empty JSON list"),
    (dict(tasks=_tasks({"name": "click"})), "entry 0: expected"),
    (dict(tasks=_tasks({"name": "click", "kind": "binary", "units": 2})), "entry 0"),
    (dict(tasks=_tasks({"name": "click", "kind": "tanh"}), y_genre=None, y_tags=None,
          y_rating=None), "entry 0: unknown task kind 'tanh'"),
    (dict(tasks=_tasks({"name": "click", "kind": "binary"}, {"name": "click",
                                                             "kind": "binary"})), "repeat"),
    (dict(y_rating=None), r"task\(s\) \['rating'\] are declared but have no"),
    (dict(y_other=np.zeros(N)), r"targets \['y_other'\] belong to no declared task"),
    (dict(x_seq=None, x_num=None, x_cat=None), "no inputs"),
    (dict(y_genre=np.arange(N - 1)), "mismatched N: key 'y_genre'"),
    (dict(tasks=_tasks({"name": "click", "kind": "binary"},
                       {"name": "genre", "kind": "multiclass", "outputs": 10},
                       {"name": "tags", "kind": "multilabel"},
                       {"name": "rating", "kind": "regression"})),
     r"key 'y_genre': the genre task has 10 classes, but its labels range 0\.\.14"),
    (dict(y_genre=np.full(N, 0.5)), "not integers"),
    (dict(y_click=np.full((N, 2), 1.0)), "key 'y_click'.*one label per sample"),
    (dict(y_tags=np.full((N, 5), 3)), r"key 'y_tags'.*not all in \[0, 1\]"),
    (dict(y_rating=np.full(N, np.nan)), "key 'y_rating'.*NaN or inf"),
    (dict(x_num=np.full((N, 4), np.inf)), "key 'x_num' contains 120 NaN/inf"),
    (dict(x_cat=np.full((N, 2), -1)), "key 'x_cat' has negative codes"),
    (dict(x_cat=np.zeros((N, 2, 2), dtype=np.int64)), "categorical codes"),
    (dict(x_seq=np.zeros((N, 2, 2, 2))), "must be"),
    (dict(y_click=np.array(["a"] * N)), "key 'y_click' must be a real numeric array"),
])
def test_a_broken_declared_file_is_one_line_naming_the_key(tmp_path, change, match):
    with pytest.raises(ValueError, match=match) as e:
        D.load_npz(_save(tmp_path, **_broken(**change)))
    assert "\n" not in str(e.value) and "mine.npz" in str(e.value)
