"""Issue 13 item 8 (bounded work): ``mesh.smiFiles`` reads SMI policy, never a whole project tree.
An empty path would name the project folder (``.venv``, ``.git`` and every YAML file under it: the
battery's ``smiFiles: ['']`` took 18 s), hidden files and folders are never policy, and the number of
files read is bounded (:data:`mesh_components.spec.smi.MAX_SMI_FILES`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from mesh_components.spec import smi

SPLIT = """apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: s, namespace: shop}
spec:
  service: web.shop
  backends: [{service: web-v1, weight: 100}]
"""


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "split.yaml").write_text(SPLIT)
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "junk.yaml").write_text("not: [smi")
    (tmp_path / "policies" / ".draft.yaml").write_text("not: [smi")
    return tmp_path


@pytest.mark.parametrize("raw", ["", "  "])
def test_an_empty_path_is_refused(tmp_path, raw):
    docs, problems = smi.read_files([raw], _tree(tmp_path))
    assert docs == [] and problems == [("mesh.smiFiles[0]", "an empty path would read the whole project folder: "
                                        "name the file or folder that holds the SMI documents (e.g. policies/smi)")]


def test_hidden_files_and_folders_are_not_read(tmp_path):
    docs, problems = smi.read_files(["."], _tree(tmp_path))
    assert problems == [] and [d.name for d in docs] == ["s"]


def test_a_folder_with_more_files_than_the_bound_is_refused_without_reading_them(tmp_path, monkeypatch):
    monkeypatch.setattr(smi, "MAX_SMI_FILES", 3)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.yaml").write_text(SPLIT.replace("name: s,", f"name: s{i},"))
    read = []
    real = smi.parse_document
    monkeypatch.setattr(smi, "parse_document", lambda d, p: (read.append(p), real(d, p))[1])
    docs, problems = smi.read_files(["many"], tmp_path)
    assert read == [] and docs == []
    assert problems == [("mesh.smiFiles[0]", "'many' holds more than 3 YAML files in all with the entries before "
                                             "it: name the folder that holds the SMI documents, not a folder above it")]
    # within the bound: read in name order
    monkeypatch.setattr(smi, "MAX_SMI_FILES", 5)
    docs, problems = smi.read_files(["many"], tmp_path)
    assert problems == [] and [d.name for d in docs] == [f"s{i}" for i in range(5)]
