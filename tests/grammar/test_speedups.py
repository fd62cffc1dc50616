"""The compiled grammar modules: when they are used, and that they change nothing."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import starwrs.grammar
from starwrs.grammar import MessageError, _speedups, parse
from starwrs.grammar.catalogue import validate
from starwrs.grammar.jsonform import to_json
from starwrs.grammar.seed import seed_text

from .catalogue_helpers import seed_index

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _folder(tmp_path: Path, *, built: dict[str, str | None]) -> Path:
    """A made-up package folder: every hot source, binaries and a manifest for *built*.

    *built* maps a module to the hash the manifest records (None: the real one).
    """
    for name in _speedups.HOT:
        (tmp_path / f"{name}.py").write_text(f"# {name}\n")
    recorded = {}
    for name, digest in built.items():
        (tmp_path / f"{name}{SUFFIX}").write_bytes(b"\x7fELF")
        recorded[name] = digest or _speedups.source_digest(tmp_path, name)
    (tmp_path / _speedups.MANIFEST).write_text(json.dumps({"compiled": recorded}))
    return tmp_path


def test_a_module_built_from_its_current_source_runs_compiled(tmp_path: Path) -> None:
    folder = _folder(tmp_path, built={name: None for name in _speedups.HOT})
    assert _speedups.decide(folder, {}) == {name: None for name in _speedups.HOT}


def test_an_edited_source_runs_from_source(tmp_path: Path) -> None:
    folder = _folder(tmp_path, built={name: None for name in _speedups.HOT})
    (folder / "codecs.py").write_text("# edited after the build\n")
    decided = _speedups.decide(folder, {})
    assert "source changed" in str(decided["codecs"])
    assert decided["typed"] is None


def test_an_edited_or_added_type_declaration_runs_from_source(tmp_path: Path) -> None:
    (tmp_path / "_scanner.pxd").write_text("cdef class _Scan:\n    pass\n")
    folder = _folder(tmp_path, built={name: None for name in _speedups.HOT})
    assert _speedups.decide(folder, {})["_scanner"] is None
    (folder / "_scanner.pxd").write_text("cdef class _Scan:\n    cdef list texts\n")
    (folder / "codecs.pxd").write_text("# declarations the build never saw\n")
    decided = _speedups.decide(folder, {})
    assert "source changed" in str(decided["_scanner"])
    assert "source changed" in str(decided["codecs"])
    assert decided["typed"] is None


def test_the_digest_covers_the_source_and_its_declarations(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    alone = _speedups.source_digest(tmp_path, "m")
    assert alone == hashlib.sha256(b"x = 1\n").hexdigest()
    (tmp_path / "m.pxd").write_text("")
    assert _speedups.source_digest(tmp_path, "m") != alone


def test_no_binary_or_no_manifest_entry_runs_from_source(tmp_path: Path) -> None:
    folder = _folder(tmp_path, built={"model": None, "typed": "0" * 64})
    (folder / f"codecs{SUFFIX}").write_bytes(b"")  # a binary the manifest does not name
    decided = _speedups.decide(folder, {})
    assert decided["model"] is None
    assert "source changed" in str(decided["typed"])
    assert "not in the build's manifest" in str(decided["codecs"])
    assert "not compiled" in str(decided["_scanner"])


def test_a_broken_manifest_means_nothing_is_trusted(tmp_path: Path) -> None:
    folder = _folder(tmp_path, built={name: None for name in _speedups.HOT})
    (folder / _speedups.MANIFEST).write_text("{not json")
    assert all(reason is not None for reason in _speedups.decide(folder, {}).values())


def test_starwrs_pure_turns_every_module_to_source(tmp_path: Path) -> None:
    folder = _folder(tmp_path, built={name: None for name in _speedups.HOT})
    decided = _speedups.decide(folder, {"STARWRS_PURE": "1"})
    assert set(decided.values()) == {"STARWRS_PURE is set"}


def test_this_install_runs_what_the_guard_decided() -> None:
    folder = Path(next(iter(starwrs.grammar.__path__)))
    decided = _speedups.decide(folder, os.environ)
    forms = _speedups.status()
    for name, reason in decided.items():
        assert forms[name] == ("compiled" if reason is None else f"pure: {reason}")
    if os.environ.get("CI") and not os.environ.get("STARWRS_PURE"):
        # CI installs with a C compiler: a build that silently fell back is a bug
        assert set(forms.values()) == {"compiled"}, forms


# -- both forms give the same answers --------------------------------------------------

_PROBES = [
    "GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>",
    "ARD<USERID=u,ENTPID=0002292,STDRPTID=90>",
    "GRTL<PRODUCT=V,<>",
    "URS<USERRPTID=5,ACTIVE=1,ACTIVE=0>",
    "A<\\<x\x01y>",
    "NRL<>",
]


def _outcomes() -> list[object]:
    """Parse (and validate, RM first) every seed fixture and probe: tree or error."""
    texts = [seed_text(str(e["file"])) for e in seed_index()] + _PROBES
    out: list[object] = []
    for text in texts:
        try:
            message = parse(text)
        except MessageError as err:
            out.append(["parse", int(err.code), err.offset])
            continue
        try:
            typed = validate(message)
        except MessageError as err:
            out.append([to_json(message), int(err.code), err.message])
            continue
        out.append([to_json(message), repr(typed)])
    return out


@pytest.mark.slow
def test_pure_python_gives_the_same_answers_as_this_install() -> None:
    code = (
        "import json, tests.grammar.test_speedups as t; "
        "from starwrs.grammar import _speedups; "
        "print(json.dumps([_speedups.status(), t._outcomes()]))"
    )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, STARWRS_PURE="1")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    forms, outcomes = json.loads(done.stdout)
    assert set(forms.values()) == {"pure: STARWRS_PURE is set"}
    assert outcomes == json.loads(json.dumps(_outcomes()))


@pytest.mark.slow
def test_the_tree_classes_behave_the_same_in_pure_python() -> None:
    # CI runs the compiled form; this runs tests/grammar/test_model.py on the other
    # (the plain-Python dataclasses of starwrs.grammar._cython) in a child process.
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, STARWRS_PURE="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            "tests/grammar/test_model.py",
        ],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout
