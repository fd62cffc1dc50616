"""Log lines of a real dispatcher (through the formatter ``starwrs run`` installs):
a user id holding a newline, a CR or a NUL stays one escaped physical line."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starwrs.runtime import logs

from .helpers import running_stack, text

#: how every record's line starts (runtime/logs.py configure)
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} dispatcher\[0\] [A-Z]+ starwrs\.")


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = logs.configure("dispatcher", "INFO", stream=stream)
    yield stream
    root.removeHandler(handler)
    logs._installed = None
    root.setLevel(level)


@pytest.mark.parametrize("char", ["\n", "\r", "\x00"])
async def test_a_hostile_user_id_is_one_escaped_line(
    tmp_path: Path, output: io.StringIO, char: str
) -> None:
    user = f"ev{char}il user=root"
    async with running_stack(tmp_path) as stack:
        wire = "".join("\\" + c if c in "\n\r\x00=" else c for c in user)  # escaped
        answer = await stack.call("DSP", f"LON<USERID={wire},PASSWORD=x>")
        assert (answer.status, text(answer)) == (6115, "LONA<ERROR=6115>")
        key = await stack.logon()
        assert (await stack.call("RM", "GRTL<>", key)).status == 0
    lines = output.getvalue().split("\n")
    assert lines.pop() == ""
    assert lines
    assert all(RECORD.match(line) for line in lines), lines
    escaped = logs.escape(char)
    [logon] = [line for line in lines if "user=" in line and "LON" in line and "ev" in line]
    assert f' user="ev{escaped}il user=root" ' in logon
    assert " status=6115 " in logon
    assert all(char not in line for line in lines)
    [served] = [line for line in lines if "target=RM" in line]
    assert " user=jean target=RM mech=SYNC status=0 " in served
