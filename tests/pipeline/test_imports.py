"""An exercise's runs and DVC stages depend on every project module they execute, found from the imports."""
import ast
from pathlib import Path

from torchkata.pipeline.catalog import ROOT, load_catalog
from torchkata.pipeline.imports import source_files
from torchkata.pipeline.workflow import RUNNER_CODE, code_files, module_file


def write(root: Path, module: str, text: str) -> str:
    path = root / "src" / Path(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path.relative_to(root))


def test_imports_are_followed_transitively_once_and_not_into_the_machinery(tmp_path):
    start = write(tmp_path, "torchkata.experiments.x", "from torchkata.training import loop\nimport numpy\n")
    write(tmp_path, "torchkata.training.__init__", '"""doc"""\n')
    write(tmp_path, "torchkata.training.loop",
          "import torchkata.data.reader\n\ndef fit():\n    from torchkata.nn import layer\n")
    write(tmp_path, "torchkata.data.reader", "from torchkata.training.loop import fit\n")  # a cycle
    write(tmp_path, "torchkata.nn.layer", "from torchkata.pipeline.runner import RunContext\n")
    write(tmp_path, "torchkata.pipeline.runner", "from torchkata.nn import unused\n")
    write(tmp_path, "torchkata.nn.unused", "")
    files = source_files(tmp_path, start)
    assert files == (start, "src/torchkata/data/reader.py", "src/torchkata/nn/layer.py",
                     "src/torchkata/training/__init__.py", "src/torchkata/training/loop.py")


def test_a_training_depends_on_the_shared_loop_and_data_reader():
    catalog = load_catalog()
    a08 = catalog.get("a08")
    files = code_files(a08, module_file(a08.reference))
    assert files[:1] == [module_file(a08.experiment_module)] and module_file(a08.reference) in files
    assert {"src/torchkata/training/loop.py", "src/torchkata/data/digits.py"} <= set(files)
    assert not set(files) & set(RUNNER_CODE)
    starter = code_files(a08, "problems/a08/starter.py")
    assert "problems/a08/starter.py" in starter


def test_the_import_reader_sees_every_import_there_is():
    """No relative imports (they are not followed), and a package's __init__.py holds only a docstring and
    constants (the modules below it do not count it as a dependency)."""
    for path in sorted((ROOT / "src" / "torchkata").rglob("*.py")):
        tree = ast.parse(path.read_text())
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level], f"{path}: relative import"
        if path.name == "__init__.py":
            assert all(isinstance(getattr(n, "value", None), ast.Constant) for n in tree.body), path


def test_the_files_that_share_the_smoke_dag_are_scheduled_together():
    from tests.conftest import SHARED_DAG_FILES

    users = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
             if "smoke_project" in p.read_text() and p != Path(__file__)}
    assert users == set(SHARED_DAG_FILES)
