"""runtime/logs.py: one record is one physical line, whatever a user put in it."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.runtime import logs
from starwrs.runtime.config import Address, Deployment

#: a user id, an acronym and a target as an attacker would like them
HOSTILE = "jean\nFAKE 2024-01-01 INFO starwrs.dispatcher: serial=1 user=admin\r\x00\x1b[2J"


def unescape(text: str) -> str:
    """The inverse of logs.escape (what a log reader does)."""
    named = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}

    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if body in named:
            return named[body]
        return chr(int(body[1:], 16))

    return re.sub(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[nrt\\])", one, text)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain text=1 ok", "plain text=1 ok"),
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("a\tb", "a\\tb"),
        ("a\x00b", "a\\x00b"),
        ("\x1b[31m", "\\x1b[31m"),
        ("\x7f\x85\x9f", "\\x7f\\x85\\x9f"),
        ("a\u2028b\u2029", "a\\u2028b\\u2029"),
        ("C:\\new", "C:\\\\new"),  # a lone backslash is doubled: \\n is not a newline
        ("é ü 日本", "é ü 日本"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert logs.escape(raw) == escaped
    assert unescape(escaped) == raw


@given(st.text())
def test_escaping_is_one_line_and_reversible(text: str) -> None:
    escaped = logs.escape(text)
    assert len(escaped.splitlines()) <= 1
    assert not re.search("[\x00-\x1f\x7f-\x9f]", escaped)
    assert unescape(escaped) == text


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (None, "-"),
        ("", "-"),
        ("jeanvnet2", "jeanvnet2"),
        (42, "42"),
        ("jean status=0", '"jean status=0"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a\nb", '"a\nb"'),  # the formatter escapes the newline itself
    ],
)
def test_token(value: object, rendered: str) -> None:
    assert logs.token(value) == rendered


def capture(level: str = "INFO") -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logs.configure("rm", level, stream=stream)
    return stream, handler


@pytest.fixture(autouse=True)
def _restore_root() -> object:
    root = logging.getLogger()
    level = root.level
    yield
    if logs._installed is not None:
        root.removeHandler(logs._installed)
        logs._installed = None
    root.setLevel(level)


@pytest.mark.parametrize("what", ["user", "acronym", "target"])
def test_a_hostile_value_is_one_escaped_line(what: str) -> None:
    stream, _ = capture()
    logging.getLogger("starwrs.test").info(
        "serial=%d %s=%s status=%d", 7, what, logs.token(HOSTILE), 0
    )
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    [line] = lines
    assert " rm[0] INFO starwrs.test: serial=7 " in line
    assert "\\nFAKE 2024" in line
    assert "\\r\\x00\\x1b[2J" in line
    assert line.endswith(" status=0")


def test_a_traceback_follows_as_marked_continuation_lines() -> None:
    stream, _ = capture()

    def fail() -> None:
        raise ValueError(HOSTILE)

    try:
        fail()
    except ValueError:
        logging.getLogger("starwrs.test").exception("handler for %s failed", "GRTL\n")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR starwrs.test: handler for GRTL\\n failed")
    assert rest
    assert all(line.startswith(logs.CONTINUATION) for line in rest)
    assert any(line.startswith(logs.CONTINUATION + "FAKE 2024") for line in rest)
    assert "\x00" not in stream.getvalue()


def test_configure_sets_the_level_and_replaces_its_own_handler() -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    try:
        stream, first = capture("WARNING")
        logging.getLogger("starwrs.test").info("quiet")
        logging.getLogger("starwrs.test").warning("loud")
        assert stream.getvalue().count("\n") == 1
        second_stream, second = capture("DEBUG")
        assert first not in root.handlers
        assert second in root.handlers
        assert other in root.handlers  # not ours: left alone
        assert root.level == logging.DEBUG
        logging.getLogger("starwrs.test").debug("now")
        assert "now" in second_stream.getvalue()
        assert "now" not in stream.getvalue()
    finally:
        root.removeHandler(other)
    with pytest.raises(ValueError, match="not a log level"):
        logs.configure("rm", "CHATTY")


def test_level_for_and_the_option() -> None:
    assert logs.level_for({}, "rm") == "INFO"
    assert logs.level_for({"rm": "DEBUG"}, "rm") == "DEBUG"
    assert logs.level_for({"rm": "DEBUG"}, "oe") == "INFO"
    assert logs.parse_level_option("rm=debug") == ("rm", "DEBUG")
    assert logs.parse_level_option(" dispatcher = warning ") == ("dispatcher", "WARNING")
    for bad in ("rm", "=DEBUG", "rm=CHATTY", "rm="):
        with pytest.raises(ValueError) as info:
            logs.parse_level_option(bad)
        assert "\n" not in str(info.value)


def test_deployment_log_levels_round_trip(tmp_path: Path) -> None:
    deployment = Deployment(
        state_dir=tmp_path,
        web=Address("127.0.0.1", 1),
        dispatchers=(Address("127.0.0.1", 2),),
        log_levels={"rm": "DEBUG", "web": "warning"},
    )
    deployment.save()
    loaded = Deployment.load(tmp_path)
    assert loaded.log_levels == {"rm": "DEBUG", "web": "WARNING"}
    assert logs.level_for(loaded.log_levels, "oe") == "INFO"
    bare = Deployment(tmp_path, Address("127.0.0.1", 1), (Address("127.0.0.1", 2),))
    bare.save()
    assert Deployment.load(tmp_path).log_levels == {}
    deployment.save()
    text = deployment.path.read_text().replace('"DEBUG"', '"CHATTY"')
    deployment.path.write_text(text)
    with pytest.raises(ValueError, match="not a log level"):
        Deployment.load(tmp_path)
