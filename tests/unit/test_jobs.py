"""Job files of ``dredux run``: keys, messages for bad files, inputs and recipes.

Every bad-file case checks that the message names the job file, the key and
what was expected. Random inputs are checked against the documented recipe
(``numpy.random.default_rng([seed, chunk])``), drawn again here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dredux.jobs import GEN_ROWS, JobError, Recipe, load_inputs, load_job, make_random

REPO = Path(__file__).resolve().parents[2]

GOOD = """
formula = "Exp(-g * SqDist(x, y)) * b"
aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
reduction = "Sum"
axis = 1

[inputs]
x = { path = "in/x.npy", random = { rows = 33, seed = 1 } }
y = { path = "in/y.npy", random = { rows = 17, seed = 2, dtype = "float64" } }
b = { path = "in/b.npy", random = { rows = 17, seed = 3, distribution = "normal" } }
g = { value = [0.5] }

[output]
path = "out/result.npy"

[options]
backend = "numpy"
block_size = [8, 8]
split_every = 3

[check]
rows = 5
"""


def write(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


def draw(recipe: Recipe, shape) -> np.ndarray:
    """The documented recipe, written independently of dredux.jobs."""
    out = []
    for chunk, start in enumerate(range(0, shape[0], GEN_ROWS)):
        gen = np.random.default_rng([recipe.seed, chunk])
        size = (min(shape[0], start + GEN_ROWS) - start,) + tuple(shape[1:])
        out.append(gen.random(size) if recipe.distribution == "uniform"
                   else gen.standard_normal(size))
    return np.concatenate(out).astype(recipe.dtype)


def test_good_job_is_read(tmp_path):
    job = load_job(write(tmp_path, GOOD))
    assert job.formula == "Exp(-g * SqDist(x, y)) * b" and job.axis == 1
    assert job.output == (tmp_path / "out" / "result.npy").resolve()
    assert job.inputs["x"].path == (tmp_path / "in" / "x.npy").resolve()
    assert job.inputs["x"].random == Recipe(33, 1, "float64", "uniform")
    assert job.inputs["g"].value == (0.5,)
    assert job.block_size == (8, 8) and job.split_every == 3 and job.check_rows == 5
    assert job.call_options() == {"backend": "numpy", "block_size": (8, 8), "split_every": 3}


def test_paths_may_be_given_as_plain_strings(tmp_path):
    text = replace(GOOD, '[output]\npath = "out/result.npy"\n', "")
    text = replace(text, "axis = 1\n", 'axis = 1\noutput = "out/result.npy"\n')
    text = replace(text, 'x = { path = "in/x.npy", random = { rows = 33, seed = 1 } }',
                   'x = "in/x.npy"')
    job = load_job(write(tmp_path, text))
    assert job.output == (tmp_path / "out" / "result.npy").resolve()
    assert job.inputs["x"].path == (tmp_path / "in" / "x.npy").resolve()
    assert job.inputs["x"].random is None


def test_command_line_overrides(tmp_path):
    job = load_job(write(tmp_path, GOOD), output="elsewhere.npz", backend="cpu",
                   scheduler="local", check_rows=0)
    assert job.output == Path("elsewhere.npz").resolve()  # relative to the current folder
    assert (job.backend, job.scheduler, job.check_rows) == ("cpu", "local", 0)


def test_random_inputs_are_created_once_and_follow_the_recipe(tmp_path):
    job = load_job(write(tmp_path, GOOD))
    routine = job.routine()
    logged = []
    x, y, b, g = load_inputs(job, routine, log=logged.append)
    assert len(logged) == 3 and "created" in logged[0]
    np.testing.assert_array_equal(x, draw(Recipe(33, 1, "float64", "uniform"), (33, 3)))
    np.testing.assert_array_equal(b, draw(Recipe(17, 3, "float64", "normal"), (17, 1)))
    assert g.dtype == np.float64 and g.tolist() == [0.5]
    assert not np.array_equal(x[:17], y)  # distinct seeds, distinct values
    stamp = os.stat(job.inputs["x"].path).st_mtime_ns
    again = load_inputs(job, routine, log=logged.append)
    assert len(logged) == 3  # nothing created the second time
    assert os.stat(job.inputs["x"].path).st_mtime_ns == stamp
    np.testing.assert_array_equal(again[0], x)
    leftovers = [p.name for p in (tmp_path / "in").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_inline_parameter_takes_the_dtype_of_the_files(tmp_path):
    text = GOOD.replace('rows = 33, seed = 1 }', 'rows = 33, seed = 1, dtype = "float32" }')
    text = text.replace('dtype = "float64" }', 'dtype = "float32" }')
    text = text.replace('distribution = "normal" }', 'distribution = "normal", '
                        'dtype = "float32" }')
    job = load_job(write(tmp_path, text))
    args = load_inputs(job, job.routine(), log=lambda _: None)
    assert {a.dtype for a in args} == {np.dtype(np.float32)}


def test_zarr_recipe_matches_the_npy_recipe(tmp_path):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    recipe = Recipe(rows=70, seed=9, dtype="float32", distribution="uniform")
    make_random(tmp_path / "a.npy", (70, 2), recipe)
    make_random(tmp_path / "a.zarr", (70, 2), recipe)
    from_npy = np.load(tmp_path / "a.npy")
    from_zarr = da.from_zarr(str(tmp_path / "a.zarr")).compute()
    np.testing.assert_array_equal(from_npy, draw(recipe, (70, 2)))
    np.testing.assert_array_equal(from_zarr, from_npy)


def test_recipe_spanning_several_chunks(tmp_path, monkeypatch):
    import dredux.jobs as jobs

    monkeypatch.setattr(jobs, "GEN_ROWS", 16)  # 3 chunks: 16 + 16 + 1 rows
    recipe = Recipe(rows=33, seed=4, dtype="float64", distribution="normal")
    make_random(tmp_path / "c.npy", (33, 2), recipe)
    expected = np.concatenate([
        np.random.default_rng([4, k]).standard_normal((n, 2)) for k, n in enumerate((16, 16, 1))])
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), expected)


def test_interrupted_generation_leaves_no_file(tmp_path, monkeypatch):
    import dredux.jobs as jobs

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        make_random(tmp_path / "x.npy", (10, 3), Recipe(10, 1, "float64", "uniform"))
    assert list(tmp_path.iterdir()) == []


def test_existing_file_must_match_its_recipe(tmp_path):
    job_path = write(tmp_path, GOOD)
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "x.npy", np.random.default_rng(0).random((32, 3)))
    job = load_job(job_path)
    with pytest.raises(JobError) as err:
        load_inputs(job, job.routine(), log=lambda _: None)
    message = str(err.value)
    for part in ("inputs.x", "(32, 3)", "(33, 3)", "delete the file"):
        assert part in message, message


def test_input_files_are_checked(tmp_path):
    text = replace(GOOD, 'x = { path = "in/x.npy", random = { rows = 33, seed = 1 } }',
                   'x = { path = "mine.npy" }')
    job_path = write(tmp_path, text)
    job = load_job(job_path)
    with pytest.raises(JobError, match=r"key 'inputs.x.path'.*does not exist.*random"):
        load_inputs(job, job.routine(), log=lambda _: None)
    np.save(tmp_path / "mine.npy", np.random.default_rng(0).random((33, 2)))
    with pytest.raises(JobError, match=r"inputs.x.*\(33, 2\); expected \(M, 3\)"):
        load_inputs(job, job.routine(), log=lambda _: None)
    (tmp_path / "mine.npy").write_bytes(b"not numpy")
    with pytest.raises(JobError, match=r"inputs.x.path.*cannot be read as a .npy file"):
        load_inputs(job, job.routine(), log=lambda _: None)


BAD = [
    # (old text, new text, words the message must contain)
    ('formula = "Exp(-g * SqDist(x, y)) * b"\n', "", ["missing key 'formula'", "formula string"]),
    ("axis = 1", "axis = 2", ["key 'axis' is 2", "1 (reduce over j"]),
    ("axis = 1", 'axis = "1"', ["key 'axis' is '1'", "0 (reduce over i)"]),
    ('reduction = "Sum"', 'reduction_op = "Sum"',
     ["unknown key 'reduction_op'", "did you mean 'reduction'"]),
    ('reduction = "Sum"', 'reduction = "Summ"', ["'reduction'", "Summ"]),
    ('aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]', 'aliases = "x = Vi(3)"',
     ["key 'aliases' is 'x = Vi(3)'", "a list of alias strings"]),
    ("Exp(-g * SqDist(x, y)) * b", "Exp(-g * SqDist(x, z)) * b", ["formula", "z", "^"]),
    ('g = { value = [0.5] }\n', "", ["missing input(s) 'g'", "[inputs]"]),
    ('g = { value = [0.5] }', 'g = { value = [0.5, 1.0] }',
     ["inputs.g.value", "a list of 1 number(s)"]),
    ('g = { value = [0.5] }', 'g = { value = [0.5], path = "g.npy" }',
     ["inputs.g", "exactly one of 'path'"]),
    ('g = { value = [0.5] }', 'g = { value = [0.5] }\nz = { value = [1.0] }',
     ["unknown key 'inputs.z'", "inputs.x"]),
    ('path = "in/x.npy", random = { rows = 33, seed = 1 }', 'value = [1.0, 2.0, 3.0]',
     ["inputs.x.value", "only for Pm parameters"]),
    ('path = "in/x.npy"', 'path = "in/x.csv"', ["inputs.x.path", ".npy file or a .zarr"]),
    ("rows = 33, seed = 1", "rows = 33", ["missing key 'inputs.x.random.seed'"]),
    ("rows = 33, seed = 1", "seed = 1", ["missing key 'inputs.x.random.rows'"]),
    ("rows = 33, seed = 1", "rows = -3, seed = 1", ["inputs.x.random.rows", "an integer >= 0"]),
    ("rows = 33, seed = 1", "rows = 33, seed = 1, dtype = \"float128\"",
     ["inputs.x.random.dtype", "float128", '"float32"']),
    ("rows = 33, seed = 1", "rows = 33, seed = 1, distribution = \"gauss\"",
     ["inputs.x.random.distribution", "normal"]),
    ("rows = 33, seed = 1", "rows = 33, seed = 1, size = 4",
     ["unknown key 'inputs.x.random.size'"]),
    ('path = "out/result.npy"', 'path = "out/result.csv"',
     ["output.path", ".npy, .npz or .zarr"]),
    ('path = "out/result.npy"', 'file = "out/result.npy"',
     ["unknown key 'output.file'", "output.path"]),
    ('backend = "numpy"', 'backend = "cuda"', ["options.backend", "'cuda'", '"gpu"']),
    ("block_size = [8, 8]", "block_size = [0, 8]", ["options.block_size", "a pair"]),
    ("split_every = 3", "split_every = 1", ["options.split_every", ">= 2"]),
    ("rows = 5", "rows = -1", ["check.rows", "non-negative"]),
    ("rows = 5", "rtol = 0", ["check.rtol", "positive"]),
    ("[check]", "[checks]", ["unknown key 'checks'", "did you mean 'check'"]),
    ("axis = 1", "axis = 1\naxis = 0", ["not valid TOML"]),
    ('g = { value = [0.5] }', 'g = 0.5', ["key 'inputs.g' is 0.5", "a path or a table"]),
    # (run on the job without its [options] table: TOML keys before the first table)
    ('reduction = "Sum"\n', 'reduction = "Sum"\noptions = "fast"\n',
     ["key 'options' is 'fast'", "backend, scheduler"]),
]


GOOD_NO_OPTIONS = GOOD.replace('[options]\nbackend = "numpy"\nblock_size = [8, 8]\n'
                               'split_every = 3\n', "")


@pytest.mark.parametrize("old,new,words", BAD, ids=[b[2][0][:40] for b in BAD])
def test_bad_job_files_name_the_key_and_the_expected_value(tmp_path, old, new, words):
    base = GOOD_NO_OPTIONS if "options = " in new else GOOD
    path = write(tmp_path, replace(base, old, new))
    with pytest.raises(JobError) as err:
        load_job(path)
    message = str(err.value)
    assert f"job file '{path}'" in message, message
    for word in words:
        assert word in message, f"{word!r} not in:\n{message}"


def test_tuple_reductions_need_npz_or_zarr(tmp_path):
    text = replace(GOOD, 'reduction = "Sum"', 'reduction = "Min_ArgMin"')
    with pytest.raises(JobError) as err:
        load_job(write(tmp_path, text))
    for word in ("output.path", "'Min_ArgMin' returns 2 arrays", "values, indices", ".npz"):
        assert word in str(err.value), str(err.value)
    for suffix in (".npz", ".zarr"):
        job = load_job(write(tmp_path, replace(text, "result.npy", f"result{suffix}")))
        assert job.output.suffix == suffix


def test_missing_or_unreadable_job_file(tmp_path):
    with pytest.raises(JobError, match="does not exist"):
        load_job(tmp_path / "nope.toml")


def test_example_jobs_are_valid():
    examples = sorted((REPO / "examples").glob("*.toml"))
    assert examples, "no example job files"
    for path in examples:
        job = load_job(path)
        assert job.check_rows > 0, f"{path.name}: the examples check their result"
        assert all(inp.value is not None or inp.random is not None
                   for inp in job.inputs.values()), f"{path.name}: inputs must be generated"
