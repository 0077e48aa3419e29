"""The torchkata CLI as a learner uses it."""
import subprocess
import sys

import pytest

from torchkata import cli
from torchkata.pipeline.catalog import ROOT, load_catalog


def test_readme_progress_table_is_current():
    text = cli.README.read_text(encoding="utf-8")
    assert cli.readme_with_table(text) == text, "run `torchkata readme`"


def test_list_and_show(capsys):
    assert cli.main(["list", "--status", "done"]) == 0
    out = capsys.readouterr().out
    planned = next(e.id for e in load_catalog().exercises.values() if not e.done)
    assert "a01" in out and planned not in out
    assert cli.main(["show", "a01"]) == 0
    assert "Softmax by hand" in capsys.readouterr().out


def test_unknown_id_is_a_clear_error(capsys):
    assert cli.main(["show", "a1"]) == 2
    assert "unknown exercise id 'a1'" in capsys.readouterr().err


def test_check_grades_the_unsolved_starter(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "PROGRESS", tmp_path / "progress.json")
    assert cli.main(["check", "a01"]) == 1  # the starter raises NotImplementedError: not solved
    assert "a01: not yet (0 passed, 10 failed)" in capsys.readouterr().out  # its 10 checks
    assert cli.main(["status"]) == 0
    assert "a01        0 passed" in capsys.readouterr().out


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "torchkata.cli", "list"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "181 exercises" in result.stdout
