import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from plots.cli import COMMANDS, build_parser, main
from tests.cli_runner import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[2]
PIXEL_OPTIONS = {"--tile-size", "--overlap", "--min-diameter", "--max-diameter"}


def subparsers():
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_the_four_commands_are_wired():
    assert set(subparsers()) == {"tiles", "train", "predict", "evaluate"} == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_every_option_with_its_default(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in subparsers()[command]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.option_strings[0] in text
        assert action.required or "(default" in action.help, action.option_strings
        if action.option_strings[0] in PIXEL_OPTIONS:
            assert "[px]" in action.help, action.option_strings


def test_train_help_lists_the_run_file_keys(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "run file keys" in out
    assert (
        "max_minutes_per_trial  guard only: a trial still training after this stops, marked "
        "truncated (null: none) [minutes] (default: 60.0)" in out
    )


def test_usage_errors_are_one_line_with_exit_code_2(capsys):
    assert_one_line_error(
        *run_cli(capsys, "predict"), "the following arguments are required: --checkpoint"
    )
    assert_one_line_error(*run_cli(capsys, "fly"), "argument command: invalid choice: 'fly'")
    assert_one_line_error(
        *run_cli(capsys, "tiles", "--tile-sise", "3"), "unrecognized arguments: --tile-sise 3"
    )


def test_the_module_runs_from_another_folder(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "plots.cli", "predict", "--batch-size", "0"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(
        "error: argument --batch-size: '0' is not a positive whole number"
    )
