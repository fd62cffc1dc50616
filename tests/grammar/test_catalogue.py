"""The typed catalogue on the seed's own examples, and the registry."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

import pytest
from starwrs.grammar import Group, Member, Message, MessageError, parse, serialize
from starwrs.grammar import catalogue_inbox as inbox
from starwrs.grammar import catalogue_picklist as picklist
from starwrs.grammar import catalogue_rm as rm
from starwrs.grammar.catalogue import SERVICES, entries, lookup, resolve, validate
from starwrs.grammar.catalogue_fulfil import FulfilAddReportDefinition, NotifyReportLocation
from starwrs.grammar.catalogue_metadata import ReportMetadata
from starwrs.grammar.catalogue_oe import ValidateUser
from starwrs.grammar.codecs import DateRange, Schedule, SortKey
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.typed import TypedMessage
from starwrs.grammar.vocab import (
    DataCategory,
    Direction,
    ItemCategory,
    PickList,
    Product,
    RangeType,
    SchedType,
    ScheduleKind,
    TotalMode,
)

from .catalogue_helpers import seed_index, seed_text

INDEX = seed_index()
OK = [e for e in INDEX if e["expect"] == "ok"]


def _ids(entries: list[dict[str, object]]) -> list[str]:
    return [str(e["file"]) for e in entries]


# -- the seed fixtures ---------------------------------------------------------------


@pytest.mark.parametrize("entry", INDEX, ids=_ids(INDEX))
def test_seed_fixture_outcome(entry: dict[str, object]) -> None:
    text = seed_text(str(entry["file"]))
    expect = entry["expect"]
    if expect == "ok":
        typed = validate(parse(text), str(entry["service"]))
        assert type(typed).__name__ == entry["class"]
        return
    with pytest.raises(MessageError) as info:
        validate(parse(text), str(entry["service"]))
    assert info.value.code == expect
    if entry["stage"] == "validate":
        parse(text)  # the parser accepts it; the catalogue does not


@pytest.mark.parametrize("entry", OK, ids=_ids(OK))
def test_seed_fixture_round_trips(entry: dict[str, object]) -> None:
    service = str(entry["service"])
    typed = validate(parse(seed_text(str(entry["file"]))), service)
    canonical = serialize(typed.to_message())
    again = validate(parse(canonical), service)
    assert again == typed
    assert serialize(again.to_message()) == canonical
    assert type(typed).from_message(typed.to_message()) == typed


def test_every_fixture_is_indexed() -> None:
    files = {str(e["file"]) for e in INDEX}
    on_disk = {p.name for p in seed_text.__globals__["SEED_DIR"].glob("*.txt")}
    assert files == on_disk
    for name in on_disk:
        note = name.replace(".as_printed.txt", ".txt").replace(".txt", ".notes.md")
        assert (seed_text.__globals__["SEED_DIR"] / note).exists(), note


def test_seed_metadata_keeps_soh_and_is_typed() -> None:
    text = seed_text("09_metadata_priced_tvs.txt")
    assert "\x01" in text
    meta = validate(parse(text))
    assert isinstance(meta, ReportMetadata)
    assert meta.criteria.name == "UsageSummary292"
    assert meta.criteria.options == ""  # an empty line is kept: the viewer prints it
    assert meta.criteria.one_time == ""
    assert meta.criteria.time_zone == "EST"  # read from `Timezone=`
    assert meta.column_display_order == (105, 114, 67, 62, 36, 61, 58, 63, 64, 66, 65)
    assert meta.sort_columns == (SortKey(105, "A"),)
    assert [c.column_id for c in meta.columns] == list(meta.column_display_order)
    assert meta.columns[3].label == "% Calls"
    assert meta.subtotal_columns is None
    assert meta.total_mode is TotalMode.NONE


def test_seed_ard_is_typed() -> None:
    ard = validate(parse(seed_text("07_ard.txt")))
    assert isinstance(ard, rm.AddReportDefinition)
    assert ard.entp_id == "00022924"
    assert ard.std_report_id == 90
    assert ard.product is Product.VISION
    assert ard.sched_type is SchedType.ADHOC
    assert ard.range_type is RangeType.RANGE
    assert ard.schedule == Schedule(
        ScheduleKind.ADHOC, (DateRange(datetime(1998, 6, 2), datetime(1998, 7, 15, 12)),)
    )
    assert ard.threshold == rm.Threshold(reccount=20)
    assert ard.sort_by == (SortKey(54, "D"),)
    assert ard.columns == (54, 55, 67, 62, 36, 61, 58, 63, 64, 66, 65)
    assert ard.card_no == ("654654*", "5465465465465465")
    assert ard.oaccess == ("4", "1")
    assert ard.active is True
    assert ard.total_mode is TotalMode.NONE
    assert ard.email is False
    assert ard.page is False
    assert ard.curr == "2345"


def test_seed_request_table_ard_is_the_fulfilling_servers() -> None:
    text = seed_text("12_ard_request_table.txt")
    ard = validate(parse(text), "DSS")
    assert isinstance(ard, FulfilAddReportDefinition)
    assert ard.columns == (44, 36, 58, 67, 61, 63, 62, 64, 65, 66)  # from COLUMNS<...>
    assert ard.timezone.label == "MDT"
    assert ard.timezone.offset == 6
    assert ard.filters is not None
    assert ard.filters.billing is not None
    assert ard.subtotal_columns is None
    assert ard.total_mode is TotalMode.TOTAL
    assert "COLUMNS=<44~36" in serialize(ard.to_message())
    # Without a service, ARD is the Report Manager's, which needs NAME etc.
    with pytest.raises(MessageError) as info:
        validate(parse(text))
    assert info.value.code == ErrorCode.UNKNOWN_TOKEN  # USERRPTID is not an App. A key


def test_seed_nrl_and_add_are_typed() -> None:
    nrl = validate(parse(seed_text("08_nrl.txt")))
    assert isinstance(nrl, NotifyReportLocation)
    assert nrl.type == "Sim Msg 40"
    assert nrl.request_id == 20341
    assert nrl.fsize == 389
    add = validate(parse(seed_text("11_a_add.txt")), "INBX")
    assert isinstance(add, inbox.AddItem)
    assert add.category is ItemCategory.REPORT
    assert add.request_id == 32197
    assert add.requested == datetime(1998, 1, 2, 15, 18)
    assert add.mm_addr is None
    assert add.priority is None


def test_seed_grtl_and_gurl_are_typed() -> None:
    grtl = validate(parse(seed_text("01_grtl.txt")))
    assert grtl == rm.GetReportTemplateList(
        product=Product.VNET,
        data_type=rm.DataType.REPORTS,
        data_cat=DataCategory.PRICED,
        io=Direction.OUTBOUND,
    )
    assert serialize(grtl.to_message()) == "GRTL<PRODUCT=V,DATATYPE=R,DATACAT=P,IO=O>"
    gurl = validate(parse(seed_text("04_gurl.txt")))
    assert isinstance(gurl, rm.GetUserReportList)
    assert gurl.template_id == 1


# -- concrete forms of the seed's generic SRTL / SURL / SRTD ------------------------------

SRTL = (
    "SRTL<ERROR=0, REPORTS = <Analyze Traffic =<City Summary, 44, R>, <Longest Calls, 2, R>>,"
    " <Call Detail =<All Calls, 90, D>>>"
)


def test_srtl_categories_as_printed() -> None:
    srtl = validate(parse(SRTL))
    assert isinstance(srtl, rm.SendReportTemplateList)
    assert [c.description for c in srtl.reports] == ["Analyze Traffic", "Call Detail"]
    assert srtl.reports[0].templates[1] == rm.TemplateEntry("Longest Calls", 2, "R")
    canonical = serialize(srtl.to_message())
    assert canonical == (
        "SRTL<ERROR=0,REPORTS=<Analyze Traffic=<City Summary,44,R>,<Longest Calls,2,R>>,"
        "<Call Detail=<All Calls,90,D>>>"
    )
    nested = "SRTL<ERROR=0,REPORTS=<<Analyze Traffic=<City Summary,44,R>,<Longest Calls,2,R>>,"
    nested += "<Call Detail=<All Calls,90,D>>>>"
    assert validate(parse(nested)) == srtl


def test_surl_categories() -> None:
    text = "SURL<ERROR=0,REPORTS=<Mine=<My Calls,245,1,R,19980602>,<Old,246,0,R,19980101>>>"
    surl = validate(parse(text))
    assert isinstance(surl, rm.SendUserReportList)
    assert surl.reports[0].reports[0] == rm.UserReportEntry("My Calls", 245, True, "R", "19980602")
    assert serialize(surl.to_message()) == text


def test_srtd_nodes() -> None:
    text = (
        "SRTD<ERROR=0,ID=44,NODE1=<1,General,GEN01,>,"
        "NODE2=<2,Report Name,RN01,<TXT1,,NAME>,<TXT2,My Calls,DESC>>>"
    )
    srtd = validate(parse(text))
    assert isinstance(srtd, rm.SendReportTemplateDetail)
    assert srtd.template_id == 44
    assert srtd.nodes[0] == rm.Node(1, "General", "GEN01")
    assert srtd.nodes[1].controls[1] == rm.Control("TXT2", "My Calls", "DESC")
    assert validate(parse(serialize(srtd.to_message()))) == srtd
    generic = parse(seed_text("03_srtd_generic.txt"))
    with pytest.raises(MessageError) as info:
        rm.SendReportTemplateDetail.from_message(Message("SRTD", generic.members))
    assert info.value.code in (ErrorCode.UNKNOWN_TOKEN, ErrorCode.RM_PARAMETER_ERROR)


# -- the registry ------------------------------------------------------------------------


def test_registry_covers_every_message() -> None:
    table = {(service, acronym) for service, acronym, _ in entries()}
    rm_acronyms = "GRTL SRTL GRTD SRTD GURL SURL GURD SURD ARD ARDA DRD DRDA CRD CRDA"
    rm_acronyms += " URS URSA GPL GPLA NRL NRLA"
    for acronym in rm_acronyms.split():
        assert ("RM", acronym) in table
    for acronym in ["A", "D", "L", "F", "U", "Z"]:
        assert ("INBX", acronym) in table
    assert {("DSS", "ARD"), ("DSS", "ARDA"), ("RM", None), ("INBX", None)} <= table
    assert {("OE", a) for a in ("VU", "VUA", "GUA", "GUAA", "GPL", "GPLA")} <= table
    assert len(lookup("GPL")) == len(PickList)
    assert lookup("D", "INBX") == (inbox.DeleteItem, inbox.DeleteAllItems)
    assert lookup("NOPE") == ()
    assert SERVICES[:4] == ("RM", "DSS", "INBX", "OE")


def test_acronyms_are_wire_legal() -> None:
    # PROTOCOL.md section 5: an acronym is 1-4 letters; anything longer cannot be parsed.
    for service, acronym, classes in entries():
        if acronym is not None:
            assert re.fullmatch(r"[A-Za-z]{1,4}", acronym), (service, acronym, classes)


def test_every_class_declares_wire_keys_once() -> None:
    for _service, _acronym, classes in entries():
        for cls in classes:
            wires = [b.spec.wire.upper() for b in cls.params()]
            assert len(wires) == len(set(wires)), cls
            assert dataclasses.is_dataclass(cls)
            assert issubclass(cls, TypedMessage)


def test_ard_defaults_to_report_manager() -> None:
    assert lookup("ARD") == (rm.AddReportDefinition,)
    assert lookup("ARD", "DSS") == (FulfilAddReportDefinition,)
    assert lookup("ARD", " dss ") == (FulfilAddReportDefinition,)  # header padding, case


@pytest.mark.parametrize(
    ("service", "code"),
    [
        ("RM", ErrorCode.NO_VALID_REQUEST),
        ("DSS", ErrorCode.NO_VALID_REQUEST),
        ("OE", ErrorCode.NO_VALID_REQUEST),
        ("INBX", ErrorCode.INBOX_INVALID_REQUEST),
        (None, ErrorCode.NO_VALID_REQUEST),
    ],
)
def test_unknown_acronym_is_echoed(service: str | None, code: ErrorCode) -> None:
    with pytest.raises(MessageError) as info:
        validate(parse("XYZQ<A=1>"), service)
    assert info.value.code == code
    assert "XYZQ" in info.value.message
    assert info.value.key == "XYZQ"
    assert info.value.offset == 0


def test_known_acronym_in_the_wrong_service() -> None:
    with pytest.raises(MessageError) as info:
        validate(parse("A<CATEGORY=R>"), "RM")
    assert info.value.code == ErrorCode.NO_VALID_REQUEST
    with pytest.raises(MessageError) as info:
        validate(parse("GRTL<PRODUCT=V>"), "INBX")
    assert info.value.code == ErrorCode.INBOX_INVALID_REQUEST
    with pytest.raises(MessageError) as info:
        validate(parse("<METADATA=<>>"), "DSS")
    assert info.value.code == ErrorCode.NO_VALID_REQUEST


def test_unknown_service_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        validate(parse("GRTL<PRODUCT=V>"), "XX")


def test_from_message_checks_the_acronym() -> None:
    msg = parse("GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>")
    with pytest.raises(MessageError) as info:
        rm.GetUserReportDetail.from_message(msg)
    assert info.value.code == ErrorCode.NO_VALID_REQUEST
    with pytest.raises(MessageError) as info:
        inbox.FetchItem.from_message(msg)
    assert info.value.code == ErrorCode.INBOX_INVALID_REQUEST


def test_resolve_chooses_forms() -> None:
    assert resolve(parse("D<INBOXID=5>")) is inbox.DeleteItem
    assert resolve(parse("D<USERID=u,ENTPID=00022924>")) is inbox.DeleteAllItems
    assert resolve(parse("GPL<PL_GEO,USERRPTID=5>")) is picklist.GetPickListGeo
    assert resolve(parse("<METADATA=<>>")) is ReportMetadata


def test_typed_fields_are_real_dataclass_fields() -> None:
    names = [f.name for f in dataclasses.fields(rm.GetReportTemplateList)]
    assert names == ["product", "data_type", "data_cat", "io"]
    grtl = rm.GetReportTemplateList(
        product=Product.VNET,
        data_type=rm.DataType.ALL,
        data_cat=DataCategory.UNPRICED,
        io=Direction.BOTH,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        grtl.product = Product.CVNS  # type: ignore[misc]
    assert hash(grtl) == hash(dataclasses.replace(grtl))


def test_password_is_not_in_repr() -> None:
    vu = validate(parse("VU<USERID=jeanvnet2,PASSWORD=s3cr\\,et>"), "OE")
    assert isinstance(vu, ValidateUser)
    assert vu.password == "s3cr,et"
    assert "s3cr" not in repr(vu)


def test_keys_are_case_insensitive_and_aliases_canonical() -> None:
    text = (
        "ARD<userid=u,ENTPID=00022924,STDRPTID=1,NAME=n,PRODUCT=H,CATEGORY=c,SCHEDTYPE=R,"
        "TIMEZONE=EST,EMAIL=1,PAGE=1,PGPin=1234,PGTxl=hello,SUBTOTALCOLUMNS=<5~6>,TOTALMODE=3>"
    )
    ard = validate(parse(text))
    assert isinstance(ard, rm.AddReportDefinition)
    assert ard.pager_pin == "1234"
    assert ard.pager_text == "hello"
    assert ard.subtotal_columns == (5, 6)
    out = serialize(ard.to_message())
    assert "USERID=u" in out
    assert "PGPIN=1234" in out
    assert "PGTXT=hello" in out
    assert "SUBTOTCOL=<5~6>" in out


def test_defaults_are_left_out_of_canonical_form() -> None:
    text = "U<ENTPID=00022924,USERID=u,INBOXID=7,ACK=1>"
    update = validate(parse(text), "INBX")
    assert isinstance(update, inbox.UpdateItem)
    assert update.ack is True
    assert serialize(update.to_message()) == "U<ENTPID=00022924,USERID=u,INBOXID=7>"


def test_error_responses_need_no_data() -> None:
    for text in ("SRTD<ERROR=6104>", "NRLA<ERROR=6109>", "GPLA<ERROR=6105>", "VUA<ERROR=7003>"):
        typed = validate(parse(text), "OE" if text.startswith("VUA") else None)
        assert typed.to_message() == parse(text)


def test_pick_list_token_forms() -> None:
    forms = [
        "GPL<PL_ACCESS,IO=I,PRODUCT=T,DATA CAT=B>",
        "GPL<PL_ACCESS=,IO=I,PRODUCT=T,DATACAT=B>",
        "GPL<IO=I,PL_ACCESS=PL_ACCESS,PRODUCT=T,DATACAT=B>",
    ]
    typed = [validate(parse(f)) for f in forms]
    assert typed[0] == typed[1] == typed[2]
    assert serialize(typed[0].to_message()) == "GPL<PL_ACCESS,IO=I,PRODUCT=T,DATACAT=B>"
    for kind in PickList:
        text = f"GPL<{kind.value},IO=O,PRODUCT=V,DATACAT=P,RPTTMPLID=3,USERRPTID=4>"
        cls = resolve(parse(text))
        assert cls.PICK_LIST is kind  # type: ignore[attr-defined]


def test_pick_list_ack() -> None:
    text = "GPLA<ERROR=0,PL_ACCESS=<<1,DIAL-1><2,CARD>>>"
    ack = validate(parse(text))
    assert isinstance(ack, picklist.GetPickListAck)
    assert ack.lists() == {PickList.ACCESS: (("1", "DIAL-1"), ("2", "CARD"))}
    assert serialize(ack.to_message()) == text
    empty = validate(parse("GPLA<ERROR=0,PL_HIER=<>>"))
    assert isinstance(empty, picklist.GetPickListAck)
    assert empty.lists() == {PickList.HIER: ()}
    assert serialize(empty.to_message()) == "GPLA<ERROR=0,PL_HIER=<>>"


def test_list_acknowledgement_rows() -> None:
    text = "Z<REQ=L,ERROR=0,INBOXID=40,TTL=45,<41,R,My Calls>,<42,R,Other>>"
    ack = validate(parse(text), "INBX")
    assert isinstance(ack, inbox.Acknowledgment)
    assert ack.ok
    assert ack.ttl == 45
    assert len(ack.rows) == 2
    assert ack.rows[0] == Group(tuple(Member(None, v) for v in ("41", "R", "My Calls")))
    assert serialize(ack.to_message()) == text
