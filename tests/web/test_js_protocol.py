"""The browser's protocol modules (web/client/js/protocol/) held to the Python ones.

Theory of operation
-------------------
One ``node web/client/test/harness.mjs --stdio`` runs for the whole module and
answers JSON-lines requests (its header comment lists them).  Every test asks the
JavaScript side and the Python side the same question and requires the same answer:

* metadata messages: every seed fixture parses to its golden JSON (or its golden
  error, message and all); trees drawn by ``starwrs.grammar.strategies`` give the same
  tree and canonical text; mutated and random strings end in the same tree or the same
  Appendix E code at the same (code-point) offset -- and the same message wherever
  the input is ASCII (for other text Python's ``repr`` follows its own Unicode
  version, so only code and offset are compared);
* headers: the same bytes, the same text form, the same decoded fields, and for any
  bytes, text or field values the same 70xx code;
* frames: the same events from any chunking of a stream, truncated or corrupted;
* the error-code table, the limits, and ``node --test`` over web/client/test/.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starwrs.grammar import (
    Group,
    Member,
    Message,
    MessageError,
    Seq,
    Tagged,
    TList,
    Value,
    parse,
    serialize,
)
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.jsonform import from_json, to_json
from starwrs.grammar.strategies import messages
from starwrs.protocol.errors import ProtocolError
from starwrs.protocol.events import ConnectionClosed, Frame
from starwrs.protocol.frames import FrameReader, encode_frame
from starwrs.protocol.header import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    Header,
    Mechanism,
    header_from_dict,
    header_from_text,
    header_to_dict,
    header_to_text,
    make_header,
    pack_header,
    parse_header,
)

from ..conftest import scaled
from ..protocol.helpers import feed, split_at

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "web" / "client"
HARNESS = CLIENT / "test" / "harness.mjs"
SEED = ROOT / "fixtures" / "seed"
#: no answer within this many seconds is a hang in the JavaScript code
ANSWER_TIMEOUT = 60.0

SEED_ARD = (
    "ARD<USERID=jeanvnet2,ENTPID=00022924,STDRPTID=90,NAME=City Summary Outbound,"
    "PRODUCT=S,CATEGORY=Analyze Traffic,THRESHOLD=<RECCOUNT=20>,"
    "SCHEDULE=A<START=199806020000,END=199807151200>,RANGETYPE=1,SCHEDTYPE=A,TIMEZONE=45,"
    "BILLING=INBOUND<<90000003,90000003><NA,NA><NA,NA>>INBOUND<<90000004,90000004><NA,NA>"
    "<NA,NA>>,CARDNO=<654654*~5465465465465465>,IDAC=<46546546*~1246>,"
    "GEO=GEO<<001,001 USA/WORLDZONE1><NA,NA><NA,NA><NA,NA><NA,NA>>GEO<<001,001 "
    "USA/WORLDZONE1><CO,CO><NA,NA><NA,NA><NA,NA>>,OACCESS=<4~1>,ODISTRANGE=<A~F>,"
    "OUSAGE=<5~4>,SORTBY=<54D>,DESCRIPTION=This report summarizes call detail.,"
    "COLUMNS=<54~55~67~62~36~61~58~63~64~66~65>,ACTIVE=1,TOTALMODE=0,EMAIL=0,PAGE=0,"
    "LANG=1234, CURR=2345>"
)
FIXTURES = sorted(SEED.glob("*.txt"))
SEED_TEXTS = [path.read_text(encoding="utf-8") for path in FIXTURES]


# -- the node process -------------------------------------------------------------------


class Harness:
    """One node process answering JSON lines; ``ask`` sends a request, returns the answer."""

    def __init__(self, node: str, harness: Path = HARNESS) -> None:
        # kept open for the process's life, closed by close()
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            [node, str(harness), "--stdio"],
            cwd=CLIENT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._buffer = b""

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps(request).encode("ascii") + b"\n")
        stdin.flush()
        while b"\n" not in self._buffer:
            # poll, not select: a worker that has run many tests may hold fds >= 1024
            poller = select.poll()
            poller.register(stdout.fileno(), select.POLLIN)
            if not poller.poll(ANSWER_TIMEOUT * 1000):
                pytest.fail(f"node gave no answer in {ANSWER_TIMEOUT:.0f} s to {request!r:.200}")
            chunk = os.read(stdout.fileno(), 1 << 20)
            if not chunk:
                pytest.fail(f"node exited: {self.stderr()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        assert "crash" not in answer, f"{request!r:.300}\n{answer['crash']}"
        return answer

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-2000:]

    def close(self) -> None:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
        self._stderr.close()


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("the browser client's tests need Node.js 20 or later on PATH (`node`)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(re.match(r"v(\d+)", version.stdout.strip()).group(1))  # type: ignore[union-attr]
    if major < 20:
        pytest.fail(f"the browser client's tests need Node.js 20 or later, not {version.stdout}")
    return node


@pytest.fixture(scope="module")
def js() -> Iterator[Harness]:
    harness = Harness(_node())
    yield harness
    harness.close()


# -- metadata messages -------------------------------------------------------------------


def py_parse(text: str, **limits: int) -> dict[str, Any]:
    """Python's answer in the harness's shape."""
    try:
        message = parse(text, **limits)
    except MessageError as err:
        return {"error": err.to_json()}
    return {"tree": to_json(message), "canonical": serialize(message)}


def js_parse(js: Harness, text: str, **limits: int) -> dict[str, Any]:
    return js.ask({"op": "parse", "text": text, **limits})


def assert_same_outcome(js: Harness, text: str) -> None:
    ours, theirs = py_parse(text), js_parse(js, text)
    if "error" in ours and "error" in theirs and not text.isascii():
        ours["error"].pop("message")
        theirs["error"].pop("message")
    assert theirs == ours, repr(text)


def test_error_code_table_is_python_s(js: Harness) -> None:
    answer = js.ask({"op": "codes"})
    assert answer["codes"] == {code.name: int(code) for code in ErrorCode}
    assert all(answer["meanings"][str(int(code))] for code in ErrorCode)


def test_every_seed_fixture_is_a_file_with_a_golden_parse() -> None:
    assert len(FIXTURES) >= 12
    for path in FIXTURES:
        assert path.with_name(path.name.removesuffix(".txt") + ".golden.json").is_file()


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_seed_fixture_parses_to_its_golden_json(js: Harness, path: Path) -> None:
    golden = json.loads(path.with_name(path.name.removesuffix(".txt") + ".golden.json").read_text())
    answer = js_parse(js, path.read_text(encoding="utf-8"))
    if "error" in golden:
        assert answer == {"error": golden["error"]}
    else:
        assert answer == {"tree": golden["tree"], "canonical": golden["canonical"]}
        assert js.ask({"op": "serialize", "tree": golden["tree"]}) == {"text": golden["canonical"]}


_STRUCTURAL = re.compile(r"\\[\s\S]|[,<>=~\x01]")
_INSERTS = [*"<>=,~\\\x01 \t\n\x00\x02\x7f\x1f\u00e9=a", "\U0001f600", "A<", "=<", "\\\\"]


def _mutate(data: st.DataObject, text: str) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate"]))
        pos = data.draw(st.integers(0, len(chars)))
        if op == "insert":
            chars.insert(pos, data.draw(st.sampled_from(_INSERTS)))
        elif op == "delete" and pos < len(chars):
            del chars[pos]
        elif op == "replace" and pos < len(chars):
            chars[pos] = data.draw(st.sampled_from(_INSERTS))
        elif op == "truncate":
            del chars[pos:]
        elif op == "duplicate" and pos < len(chars):
            end = data.draw(st.integers(pos, len(chars)))
            chars[pos:pos] = chars[pos:end]
    return "".join(chars)


def _check_message(js: Harness, message: Message, data: st.DataObject) -> None:
    """Same tree and text; white space around tokens ignored alike; mutants alike."""
    text = serialize(message)
    tree = to_json(message)
    assert js_parse(js, text) == {"tree": tree, "canonical": text}
    assert js.ask({"op": "serialize", "tree": tree}) == {"text": text}
    ws = data.draw(st.sampled_from([" ", "\n", "\t ", "\r\n"]), label="white space")
    spaced = ws + _STRUCTURAL.sub(lambda m: m[0] if m[0][0] == "\\" else ws + m[0] + ws, text) + ws
    assert js_parse(js, spaced) == {"tree": tree, "canonical": text}
    for _ in range(3):
        assert_same_outcome(js, _mutate(data, text))


@settings(max_examples=scaled(300))
@given(messages(), st.data())
def test_messages_of_the_grammar_strategies_agree(
    js: Harness, message: Message, data: st.DataObject
) -> None:
    _check_message(js, message, data)


# Hypothesis spends milliseconds on every draw (starwrs.grammar.strategies draws its
# text one character at a time from all of Unicode: ~0.1 s a message), so the bulk of
# the differential fuzzing is a seeded generator of the same tree shapes over the
# characters that matter, checked in batches: one draw, one round trip to node, many
# messages and mutants.  A failure names the seed and the text.
_RANDOM_CHARS = [*"<>=,~\\\x01 \t\r\nAbz09\u00e9\u00a0\u2028\x7f", "\U0001f600"]
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _random_text(rng: random.Random, nonempty: bool = False) -> str:
    n = rng.randint(1 if nonempty else 0, 6)
    return "".join(rng.choice(_RANDOM_CHARS) for _ in range(n))


def random_message(rng: random.Random) -> Message:
    """A tree keeping the invariants of starwrs.grammar.model, nested up to 4 levels."""

    def members(depth: int) -> tuple[Member, ...]:
        out = tuple(
            Member(_random_text(rng, True) if rng.random() < 0.6 else None, value(depth))
            for _ in range(rng.randint(0, 3))
        )
        return () if out == (Member(None, ""),) else out

    def piece(depth: int) -> Group | Tagged:
        group = Group(members(depth + 1))
        return Tagged(_random_text(rng, True), group) if rng.random() < 0.4 else group

    def scalar(depth: int) -> str | Group | Tagged | Seq:
        kind = rng.randint(0, 2) if depth < 4 else 0
        if kind == 0:
            return _random_text(rng)
        if kind == 1:
            return piece(depth)
        parts: list[Group | Tagged | str] = [piece(depth) for _ in range(rng.randint(1, 2))]
        tail = _random_text(rng)
        parts.append(tail if tail else piece(depth))
        return Seq(tuple(parts))

    def value(depth: int) -> Value:
        if depth < 4 and rng.random() < 0.2:
            return TList(tuple(scalar(depth) for _ in range(rng.randint(2, 3))))
        return scalar(depth)

    acronym = "".join(rng.choice(_LETTERS) for _ in range(rng.randint(1, 4)))
    return Message(acronym if rng.random() < 0.8 else None, members(0))


def random_mutant(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["insert", "delete", "replace", "truncate", "duplicate"])
        pos = rng.randint(0, len(chars))
        if op == "insert":
            chars.insert(pos, rng.choice(_INSERTS))
        elif op == "delete" and pos < len(chars):
            del chars[pos]
        elif op == "replace" and pos < len(chars):
            chars[pos] = rng.choice(_INSERTS)
        elif op == "truncate":
            del chars[pos:]
        elif op == "duplicate" and pos < len(chars):
            end = rng.randint(pos, len(chars))
            chars[pos:pos] = chars[pos:end]
    return "".join(chars)


@settings(max_examples=scaled(400))
@given(st.integers(0, 2**64 - 1))
def test_seeded_random_messages_and_mutants_agree(js: Harness, seed: int) -> None:
    rng = random.Random(seed)
    trees = [random_message(rng) for _ in range(10)]
    texts = [serialize(tree) for tree in trees]
    mutants = [random_mutant(rng, text) for text in texts for _ in range(4)]
    requests = [{"op": "parse", "text": text} for text in texts + mutants]
    requests += [{"op": "serialize", "tree": to_json(tree)} for tree in trees]
    answers = js.ask({"op": "batch", "requests": requests})["answers"]
    expected = [py_parse(text) for text in texts + mutants]
    expected += [{"text": text} for text in texts]
    for text, answer, ours in zip(texts + mutants + texts, answers, expected, strict=True):
        if "error" in answer and "error" in ours and not text.isascii():
            answer["error"].pop("message")
            ours["error"].pop("message")
        assert answer == ours, f"seed {seed}: {text!r}"


@settings(max_examples=scaled(400))
@given(st.data(), st.sampled_from([SEED_ARD, *SEED_TEXTS]))
def test_mutated_seed_messages_give_the_same_tree_or_error(
    js: Harness, data: st.DataObject, text: str
) -> None:
    assert_same_outcome(js, _mutate(data, text))


@settings(max_examples=scaled(800))
@given(
    st.text(
        alphabet=st.one_of(st.sampled_from("<>=,~\\\x01 \t\r\nAb"), st.characters()), max_size=60
    )
)
@example("")
@example("   ")
@example("<")
@example(">")
@example("\\")
@example("A<\\")
@example("ABCDE<>")
@example("A<b> c")
@example("A<b> =")
@example("A<K=v w=z>")
@example("<a> B=1>")
@example("\U0001f600<>")
@example("A<K=\U0001f600\x02>")
@example("A<K=\\\U0001f600>x")
def test_random_strings_give_the_same_tree_or_error(js: Harness, text: str) -> None:
    assert_same_outcome(js, text)


@pytest.mark.parametrize(
    ("text", "code", "offset"),
    [
        ("\U0001f600\U0001f600<", 6612, 3),  # at the end: three code points, five UTF-16 units
        ("A<K=\U0001f600\x02>", 6610, 5),
        ("A<K=\U0001f600 \U0001f600=x=>", 6611, 7),  # text after KEY=, then a stray =
        ("\U0001f600<\U0001f600>>", 6612, 3),
    ],
)
def test_offsets_count_code_points(js: Harness, text: str, code: int, offset: int) -> None:
    answer = js_parse(js, text)
    assert answer == py_parse(text)
    assert (answer["error"]["error"], answer["error"]["offset"]) == (code, offset)


def test_nesting_limit_is_64_and_goes_up_to_100(js: Harness) -> None:
    for depth in (64, 65):
        text = "A" + "<" * depth + ">" * depth
        assert js_parse(js, text) == py_parse(text)
    assert js_parse(js, "A" + "<" * 65 + ">" * 65)["error"]["offset"] == 65
    deep = "<" * 100 + ">" * 100
    assert js_parse(js, deep, max_depth=100) == py_parse(deep, max_depth=100)
    with pytest.raises(ValueError, match="max_depth"):
        parse(deep, max_depth=101)
    assert "range_error" in js_parse(js, deep, max_depth=101)


def test_length_limit_is_4_mib_counted_in_code_points(js: Harness) -> None:
    body = "X" * (4 * 1024 * 1024 - 5)
    text = f"A<B={body}>"  # exactly the limit
    assert len(text) == 4 * 1024 * 1024
    answer = js_parse(js, text)
    assert answer["canonical"] == text
    too_long = text + " "
    assert js_parse(js, too_long) == py_parse(too_long)
    assert js_parse(js, too_long)["error"]["offset"] == 4 * 1024 * 1024
    astral = "A<B=" + "\U0001f600" * 10 + ">"  # 15 code points, 25 UTF-16 units
    assert js_parse(js, astral, max_length=15) == py_parse(astral, max_length=15)
    assert js_parse(js, astral, max_length=14) == py_parse(astral, max_length=14)


def test_bad_json_trees_are_refused_as_python_does(js: Harness) -> None:
    for bad in (
        [],
        {"acronym": 1, "members": []},
        {"acronym": None, "members": {}},
        {"acronym": None, "members": [{"key": 1, "value": ""}]},
        {"acronym": None, "members": [{"key": None, "value": {"seq": [{"list": ["a", "b"]}]}}]},
        {"acronym": None, "members": [{"key": None, "value": {"list": [{"list": ["a", "b"]}]}}]},
        {"acronym": None, "members": [{"key": None, "value": 5}]},
    ):
        assert js.ask({"op": "serialize", "tree": bad})["error"]["error"] == 6611
        with pytest.raises(MessageError):
            from_json(bad)


# -- headers -----------------------------------------------------------------------------

visible = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
#: the example of PROTOCOL.md section 2
EXAMPLE = bytes.fromhex("01000004000000570000000100000001" + "00000000" + "524d2020" + "39663263")


@st.composite
def headers(draw: st.DrawFn) -> Header:
    """Any legal header, every field over its whole range."""
    key = draw(st.text(visible, max_size=255))
    return make_header(
        draw(st.sampled_from(Mechanism)),
        draw(st.text(visible, max_size=4)),
        key=key,
        payload_length=draw(st.integers(0, 0xFFFFFFFF - HEADER_SIZE - len(key))),
        serial=draw(st.integers(0, 2**64 - 1)),
        status=draw(st.integers(0, 2**32 - 1)),
        echo=draw(st.integers(0, 255)),
    )


def wire(value: Any) -> Any:
    """A field value as the harness takes it (large integers as {"$int": text})."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return {"$int": str(value)}
    return value


def fields(header: Header) -> dict[str, Any]:
    return {name: wire(value) for name, value in header._asdict().items()}


def py_dict(header: Header) -> dict[str, Any]:
    return {**header_to_dict(header), "serial": str(header.serial)}


def py_header_answer(fn: Any, *args: Any) -> dict[str, Any]:
    try:
        header = fn(*args)
    except ProtocolError as err:
        return {"code": int(err.code)}
    return {"header": py_dict(header), "hex": pack_header(header).hex()}


def code_only(answer: dict[str, Any]) -> dict[str, Any]:
    return {"code": answer["code"]} if "code" in answer else answer


def test_the_example_of_section_2(js: Harness) -> None:
    answer = js.ask({"op": "header_decode", "hex": EXAMPLE.hex()})
    assert answer["header"] == {
        "version": 1,
        "echo": 0,
        "mech": "SYNC",
        "length": 87,
        "serial": "4294967297",
        "status": 0,
        "target": "RM",
        "key": "9f2c",
    }
    assert answer["text"] == (
        "HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=87,SERIAL=4294967297,STATUS=0,TARGET=RM,KEY=9f2c>"
    )
    assert answer["hex"] == EXAMPLE.hex()


@settings(max_examples=scaled(400))
@given(headers())
def test_headers_give_the_same_bytes_fields_and_text(js: Harness, header: Header) -> None:
    data = pack_header(header)
    assert js.ask({"op": "header_encode", "header": fields(header)}) == {"hex": data.hex()}
    text = header_to_text(header)
    assert js.ask({"op": "header_text", "header": fields(header)}) == {"text": text}
    decoded = js.ask({"op": "header_decode", "hex": data.hex(), "max_frame_size": 0xFFFFFFFF})
    assert decoded == {"header": py_dict(header), "hex": data.hex(), "text": text}
    from_text = js.ask({"op": "header_text", "text": text, "max_frame_size": None})
    assert from_text == {"header": py_dict(header), "hex": data.hex()}
    as_dict = {**py_dict(header), "serial": wire(header.serial)}
    from_dict = js.ask({"op": "header_dict", "header": as_dict, "max_frame_size": None})
    assert from_dict == {"header": py_dict(header), "hex": data.hex()}


@st.composite
def header_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, or a legal header with a few bytes changed or cut."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    data = bytearray(pack_header(draw(headers())))
    for _ in range(draw(st.integers(0, 3))):
        data[draw(st.integers(0, len(data) - 1))] = draw(
            st.sampled_from([0, 1, 2, 3, 4, 0x20, 0x7F, 0xFF, 0x41, 0x18])
        )
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=scaled(400))
@given(header_bytes(), st.sampled_from([DEFAULT_MAX_FRAME_SIZE, 0xFFFFFFFF, 100]))
@example(EXAMPLE, DEFAULT_MAX_FRAME_SIZE)
@example(b"\x02" + EXAMPLE[1:], DEFAULT_MAX_FRAME_SIZE)
def test_any_bytes_decode_to_the_same_header_or_code(js: Harness, data: bytes, limit: int) -> None:
    ours = py_header_answer(parse_header, data, limit)
    theirs = js.ask({"op": "header_decode", "hex": data.hex(), "max_frame_size": limit})
    theirs.pop("text", None)
    assert code_only(theirs) == ours


_ANY_INT = st.one_of(
    st.integers(-2, 300), st.integers(-1, 2**33), st.integers(2**64 - 2, 2**64 + 1)
)
_ANY_TEXT = st.one_of(st.text(visible, max_size=6), st.text(max_size=5), st.integers(0, 9))


@st.composite
def wild_headers(draw: st.DrawFn) -> Header:
    """A legal header with some fields replaced by anything of a similar kind."""
    header = draw(headers())
    changes: dict[str, Any] = {}
    for name in draw(st.sets(st.sampled_from(Header._fields), max_size=3)):
        if name in ("target", "key"):
            changes[name] = draw(_ANY_TEXT | st.text(visible, min_size=250, max_size=260))
        elif name == "mech":
            changes[name] = draw(st.integers(-1, 5))
        else:
            changes[name] = draw(_ANY_INT)
    return header._replace(**changes)


@settings(max_examples=scaled(400))
@given(wild_headers())
def test_any_fields_pack_and_render_to_the_same_bytes_or_code(js: Harness, header: Header) -> None:
    def packed() -> dict[str, Any]:
        try:
            return {"hex": pack_header(header).hex()}
        except ProtocolError as err:
            return {"code": int(err.code)}

    def rendered() -> dict[str, Any]:
        try:
            return {"text": header_to_text(header)}
        except ProtocolError as err:
            return {"code": int(err.code)}

    assert code_only(js.ask({"op": "header_encode", "header": fields(header)})) == packed()
    assert code_only(js.ask({"op": "header_text", "header": fields(header)})) == rendered()


@settings(max_examples=scaled(400))
@given(st.data(), headers())
def test_mutated_header_text_gives_the_same_header_or_code(
    js: Harness, data: st.DataObject, header: Header
) -> None:
    text = _mutate(data, header_to_text(header))
    if data.draw(st.booleans()):  # numbers and names the text form must refuse or accept
        text = text.replace(
            data.draw(st.sampled_from(["=1,", "=SYNC", "=0,", "MECH=", "KEY="])),
            data.draw(st.sampled_from(["=2,", "=3", "=003", "=sync", "=-1,", "=9" * 21, "X="])),
            1,
        )
    ours = py_header_answer(header_from_text, text, DEFAULT_MAX_FRAME_SIZE)
    theirs = js.ask({"op": "header_text", "text": text})
    assert code_only(theirs) == ours, text


@pytest.mark.parametrize(
    "obj",
    [
        {"mech": "BULK", "target": "INBX"},
        {"mech": 3, "target": "INBX", "key": "ab"},
        {"mech": "2", "target": "RS"},
        [],
        {"target": "RM"},
        {"mech": "SYNC"},
        {"mech": "SYNC", "target": "RM", "klen": 0},
        {"mech": True, "target": "RM"},
        {"mech": "SYNC", "target": "RM", "serial": True},
        {"mech": "SYNC", "target": "RM", "serial": 1.5},
        {"mech": "SYNC", "target": "RM", "serial": "1"},
        {"mech": "SYNC", "target": "RM", "version": 3},
        {"mech": "SYNC", "target": "RM", "length": 99_999_999},
        {"mech": "SYNC", "target": "RM", "key": 7},
        {"mech": 4, "target": "RM"},
        {"mech": "sync", "target": "RM"},
    ],
)
def test_header_dicts_give_the_same_header_or_code(js: Harness, obj: Any) -> None:
    ours = py_header_answer(header_from_dict, obj, DEFAULT_MAX_FRAME_SIZE)
    assert code_only(js.ask({"op": "header_dict", "header": obj})) == ours


# -- frames ------------------------------------------------------------------------------


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    payload = draw(st.binary(max_size=300))
    header = make_header(
        draw(st.sampled_from(Mechanism)),
        draw(st.text(visible, max_size=4)),
        key=draw(st.text(visible, max_size=40)),
        payload_length=len(payload),
        serial=draw(st.integers(0, 2**64 - 1)),
        status=draw(st.integers(0, 2**32 - 1)),
        echo=draw(st.integers(0, 255)),
    )
    return Frame(header, payload)


def py_events(events: list[object]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        if isinstance(event, Frame):
            out.append({"header": py_dict(event.header), "payload": event.payload.hex()})
        elif isinstance(event, ConnectionClosed):
            out.append("closed")
        else:
            out.append(list(event))  # type: ignore[call-overload]
    return out


@settings(max_examples=scaled(400))
@given(
    st.lists(frames(), max_size=5),
    st.lists(st.integers(0, 2000), max_size=20),
    st.data(),
)
def test_any_chunking_of_any_stream_gives_the_same_events(
    js: Harness, items: list[Frame], cuts: list[int], data: st.DataObject
) -> None:
    stream = bytearray(b"".join(encode_frame(f.header, f.payload) for f in items))
    if stream and data.draw(st.booleans(), label="damage"):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    stream = stream[: data.draw(st.integers(0, len(stream)), label="cut")]
    eof = data.draw(st.booleans(), label="eof")
    limit = data.draw(st.sampled_from([DEFAULT_MAX_FRAME_SIZE, 200]), label="max_frame_size")
    chunks = split_at(bytes(stream), cuts)
    ours = py_events(feed(FrameReader(limit), chunks, eof=eof))
    request = {"op": "frames", "chunks": [c.hex() for c in chunks], "eof": eof}
    theirs = js.ask({**request, "max_frame_size": limit})
    assert theirs == {"events": ours}


# -- node's own tests ----------------------------------------------------------------------


def test_node_test_runner_passes() -> None:
    done = subprocess.run(
        [_node(), "--test", "web/client/test/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"^# fail 0$", done.stdout, re.MULTILINE), done.stdout[-2000:]
