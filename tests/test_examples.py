"""Every script in examples/ runs to completion (plots on the Agg backend), and so
does the README's usage code."""

import re
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.chdir(script.parent)
    runpy.run_path(str(script), run_name="__main__")


def test_the_demo_compares_both_models(capsys):
    from sklearn_gd.__main__ import main

    assert main([]) == 0
    table = capsys.readouterr().out.splitlines()[-2:]
    for line, name in zip(table, ["MLPBackpropClassifier", "MLPClassifier"]):
        model, accuracy, seconds, epochs = line.split()
        assert model == name and float(accuracy) > 0.9 and int(epochs) == 40


def test_the_demo_has_a_help_and_refuses_unknown_options(capsys):
    from sklearn_gd.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0 and "digits" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["--epochs", "3"])
    assert stop.value.code == 2


def test_the_readme_usage_code_runs_and_prints_what_it_says(capsys):
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    run_python_blocks("README.md")
    accuracy, r2 = map(float, capsys.readouterr().out.split())
    assert accuracy > 0.9
    # "the same minimiser as Ridge(alpha=1.0)", to L-BFGS's default tolerance
    X, y = load_diabetes(return_X_y=True)
    assert r2 == pytest.approx(Ridge(alpha=1.0).fit(X, y).score(X, y), abs=1e-5)


def test_the_quickstart_page_code_runs(capsys):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    run_python_blocks("docs/quickstart.md")
    accuracy, table_predictions = capsys.readouterr().out.splitlines()
    assert float(accuracy) > 0.9
    assert table_predictions == "[0 1]"  # the raw table's rows, a city never seen included


def run_python_blocks(relative_path):
    """Run the ```python blocks of a page of the repository, in order, in one namespace."""
    text = (Path(__file__).parent.parent / relative_path).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"no python code in {relative_path}"
    namespace = {}
    for block in blocks:
        exec(compile(block, relative_path, "exec"), namespace)
