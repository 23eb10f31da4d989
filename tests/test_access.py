"""Which local paths the served page may read (pruning_core.storage.access)."""

import os
from pathlib import Path

import pytest

from pruning_core import PrunescopeError
from pruning_core.storage.access import allowed_roots, check_page_path, names_local_path, uploads_dir
from pruning_core.core.paths import ASSETS_DIR


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """One allowed root (tmp_path/allowed) and a folder outside it (tmp_path/outside) holding a secret."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_text("text,label\nTOP-SECRET-LINE,1\n")
    monkeypatch.setenv("PRUNESCOPE_DATA_ROOTS", str(allowed))
    return allowed, outside


def test_default_roots_are_assets_data_folder_and_uploads(monkeypatch):
    from platformdirs import user_data_dir

    monkeypatch.delenv("PRUNESCOPE_DATA_ROOTS", raising=False)
    got = allowed_roots()
    assert got[:2] == [ASSETS_DIR.resolve(), Path(user_data_dir("prunescope")).resolve()]
    assert uploads_dir() in got  # the page's own uploads (beside the store; a temporary folder in tests)
    assert uploads_dir() == Path(os.environ["PRUNESCOPE_DB"]).resolve().parent / "uploads"


def test_env_roots_replace_the_defaults(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("PRUNESCOPE_DATA_ROOTS", f"{a}{os.pathsep}{b}{os.pathsep}")
    assert allowed_roots() == [a.resolve(), b.resolve(), uploads_dir()]


@pytest.mark.parametrize("name", ["default", "rotten_tomatoes", "bbc_news", "glue/sst2", "imdb", "ag_news",
                                  "bert-base-uncased", "textattack/bert-base-uncased-SST-2", "org/name"])
def test_names_and_hub_ids_pass(name, roots):
    assert not names_local_path(name)
    assert check_page_path(name) == name


def test_paths_under_a_root_pass(roots):
    allowed, _ = roots
    (allowed / "tasks").mkdir()
    (allowed / "tasks" / "mine.csv").write_text("text,label\na,0\n")
    assert check_page_path(str(allowed / "tasks" / "mine.csv")) == str(allowed / "tasks" / "mine.csv")
    assert check_page_path(str(allowed / "not-yet-there")) == str(allowed / "not-yet-there")  # the loader says so


def test_paths_outside_the_roots_are_refused_without_their_contents(roots, monkeypatch):
    allowed, outside = roots
    secret = outside / "secret.csv"
    (allowed / "link.csv").symlink_to(secret)  # a symlink inside a root that leads outside
    monkeypatch.chdir(outside)
    for text in (str(secret), str(allowed / ".." / "outside" / "secret.csv"), str(allowed / "link.csv"),
                 "secret.csv", "./secret.csv", str(outside / "missing.csv"), "/etc/passwd", "~/.bashrc"):
        with pytest.raises(PrunescopeError) as err:
            check_page_path(text)
        msg = str(err.value)
        assert "outside the folders this page may read" in msg and "PRUNESCOPE_DATA_ROOTS" in msg, text
        assert str(allowed.resolve()) in msg and "\n" not in msg
        assert "TOP-SECRET-LINE" not in msg and "root:" not in msg


def test_an_existing_relative_folder_is_a_path_not_a_hub_id(roots, monkeypatch):
    _, outside = roots
    (outside / "org").mkdir()
    (outside / "org" / "name").mkdir()
    monkeypatch.chdir(outside)
    assert names_local_path("org/name")
    with pytest.raises(PrunescopeError):
        check_page_path("org/name")
