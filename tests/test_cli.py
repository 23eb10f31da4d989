"""The command line: bad input gives one line and a non-zero exit, never a traceback."""

import subprocess
import sys

import pytest

from pruning_core.cli import main

from conftest import tiny_model

BAD = [
    (["prune", "--sparsity", "1.0"], r"sparsity must be in \[0, 1\)"),
    (["prune", "--sparsity", "-0.2"], r"sparsity must be in \[0, 1\)"),
    (["prune", "--sparsity", "half"], "invalid float value"),
    (["prune", "--method", "lottery"], "unknown method 'lottery'"),
    (["prune", "--pattern", "3:2"], "unknown pattern '3:2'"),
    (["prune", "--pattern", "2:4", "--sparsity", "0.7"], "gives sparsity 0.5"),
    (["prune", "--task", "sst-3"], "unknown task 'sst-3'"),
    (["prune", "--task", "missing.csv"], "does not exist"),
    (["prune", "--model", "./no-such-model"], "does not exist"),
    (["prune", "--method", "wanda", "--option", "scope=global"], "no option"),
    (["prune", "--calib-size", "0"], "calib_size must be"),
    (["prune", "--repeats", "0"], "--repeats takes a whole number of at least 1"),
    (["frobnicate"], "invalid choice"),
    (["prune", "--pattern", "2:4", "--option", "blocksize=6"], "multiple of 4"),
    (["prune", "--option", "percdamp=0"], "0 < percdamp"),
    (["prune", "--option", "blocksize=abc"], "must be an integer"),
    (["prune", "--method", "magnitude", "--pattern", "2:4", "--option", "scope=global"], "unstructured pattern only"),
    (["eval", "--eval-size", "-5"], "eval_size must be"),
    (["eval", "--task", "typo"], "unknown task 'typo'"),
    (["finetune", "--task", "rotten_tomatoes", "--epochs", "0"], "--epochs must be"),
    (["eval", "--task", "glue/sst2"], "no shipped default model"),
]


@pytest.mark.parametrize("argv,message", BAD)
def test_bad_input_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("prunescope: error:")
    assert __import__("re").search(message, err), err


def test_nm_with_indivisible_dimension(tmp_path, tokenizer, capsys):
    model = tiny_model("bert", hidden=64, inter=130)
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    csv = tmp_path / "t.csv"
    csv.write_text("text,label\ngood movie,1\nbad movie,0\nfine,1\nawful,0\n")
    code = main(["prune", "--model", str(tmp_path / "m"), "--task", str(csv), "--pattern", "2:4",
                 "--calib-size", "2", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("prunescope: error:") and "divisible by 4" in err[-1]
    assert not any("Traceback" in line for line in err), "\n".join(err)


def test_process_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "pruning_core.cli", "prune", "--sparsity", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("rotten_tomatoes", "bbc_news", "imdb_sample", "magnitude", "wanda", "sparsegpt", "2:4", "4:8"):
        assert word in out
