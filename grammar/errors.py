"""Wire status codes and the exceptions that carry them.

Theory of operation
-------------------
Every rejection anywhere in starwrs is a :class:`StarwrsError` carrying one
:class:`ErrorCode` -- the number that goes on the wire, both in a response
message's ``ERROR=`` and in the common header's ``status``.  The codes are the
seed's Appendix E (Report Manager 6050-6842, Inbox 5005-5185) plus the transport
codes 7001-7011 of PROTOCOL.md section 4.  Nothing else is raised across a module
boundary, so a server can always answer a bad request with its code.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ErrorCode", "MessageError", "StarwrsError", "describe"]


class ErrorCode(IntEnum):
    """Every status code starwrs puts on the wire.  Each member cites its source."""

    #: 0 OK -- request processed -- Appendix E
    OK = 0
    #: 1 pending: asynchronous work not finished yet -- PROTOCOL.md section 3
    PENDING = 1

    # -- Inbox proxy codes, Appendix E ------------------------------------------
    #: 5005 item had already been added to the inbox and will not be added again
    INBOX_DUPLICATE = 5005
    #: 5100 no records found (status code)
    INBOX_NO_RECORDS = 5100
    #: 5101 failure in parser building parameter list, unknown or invalid token
    INBOX_PARSER = 5101
    #: 5102 required parameter missing
    INBOX_MISSING = 5102
    #: 5103 request is invalid or unknown
    INBOX_INVALID_REQUEST = 5103
    #: 5104 during Fetch, the file in the Inbox database could not be opened
    INBOX_FETCH_OPEN = 5104
    #: 5105 could not make an SQL connection to the Inbox database
    INBOX_SQL_CONNECT = 5105
    #: 5106 error executing the stored procedure
    INBOX_STORED_PROCEDURE = 5106
    #: 5107 error during an SQL open cursor call
    INBOX_OPEN_CURSOR = 5107
    #: 5108 error constructing the filename for a Fetch metadata request
    INBOX_FETCH_FILENAME = 5108
    #: 5111 parameter (Inboxid or Userid) missing on update command
    INBOX_UPDATE_ID_MISSING = 5111
    #: 5112 TTL missing or invalid on Update
    INBOX_UPDATE_TTL = 5112
    #: 5113 category missing on Update
    INBOX_UPDATE_CATEGORY = 5113
    #: 5121 InboxID parameter missing in Fetch
    INBOX_FETCH_ID_MISSING = 5121
    #: 5125 no records found for deletion
    INBOX_DELETE_NONE = 5125
    #: 5131 UserID parameter missing in List
    INBOX_LIST_USER_MISSING = 5131
    #: 5132 Category missing in List
    INBOX_LIST_CATEGORY_MISSING = 5132
    #: 5141 UserID parameter missing in Delete
    INBOX_DELETE_USER_MISSING = 5141
    #: 5151 Category parameter invalid in Add
    INBOX_ADD_CATEGORY = 5151
    #: 5152 Type parameter invalid in Add
    INBOX_ADD_TYPE = 5152
    #: 5153 EntpID+UserID parameter missing or invalid in Add
    INBOX_ADD_ENTP_USER = 5153
    #: 5154 RptID parameter missing in Add
    INBOX_ADD_RPTID = 5154
    #: 5155 Compress parameter missing in Add
    INBOX_ADD_COMPRESS = 5155
    #: 5156 Sev parameter missing when Unotify specified in Add
    INBOX_ADD_SEV = 5156
    #: 5157 RptCategory (report name) parameter missing in Add
    INBOX_ADD_RPTCATEGORY = 5157
    #: 5158 Loc parameter missing in Add
    INBOX_ADD_LOC = 5158
    #: 5159 Requested date parameter missing in Add
    INBOX_ADD_RQSTDT = 5159
    #: 5160 Fsize parameter missing in Add
    INBOX_ADD_FSIZE = 5160
    #: 5161 RptTitle parameter missing in Add
    INBOX_ADD_RPTTITLE = 5161
    #: 5162 Msize parameter missing in Add for Report or Data
    INBOX_ADD_MSIZE = 5162
    #: 5163 file as specified in Loc parameter does not exist
    INBOX_ADD_NO_FILE = 5163
    #: 5164 EntpID parameter missing when Unotify specified
    INBOX_ADD_ENTP_NOTIFY = 5164
    #: 5165 COMP and LOC parameters conflict (compressed but no _zip extension)
    INBOX_ADD_COMPRESS_LOC = 5165
    #: 5166 metadata file does not exist
    INBOX_NO_METADATA = 5166
    #: 5170 user notification error (with 5171, 5172, 5174)
    INBOX_NOTIFY = 5170
    #: 5171 no user or enterprise ID in user notification
    INBOX_NOTIFY_NO_USER = 5171
    #: 5172 notification level is null
    INBOX_NOTIFY_LEVEL_NULL = 5172
    #: 5174 unknown notification level
    INBOX_NOTIFY_LEVEL_UNKNOWN = 5174
    #: 5178 invalid constructor call in user notification
    INBOX_NOTIFY_CONSTRUCTOR = 5178
    #: 5179 invalid email address (no @ symbol) in user notification
    INBOX_NOTIFY_EMAIL = 5179
    #: 5180 no address or text exists in user notification for email
    INBOX_NOTIFY_NO_TEXT = 5180
    #: 5182 page could not be sent -- required fields missing
    INBOX_NOTIFY_PAGE = 5182
    #: 5183 comm failure obtaining default email/paging info
    INBOX_NOTIFY_COMM = 5183
    #: 5184 StarOE returned an error obtaining default email/paging info
    INBOX_NOTIFY_OE = 5184
    #: 5185 error forking a child process in email/paging
    INBOX_NOTIFY_FORK = 5185

    # -- Report Manager proxy codes, Appendix E ---------------------------------
    #: 6050 retransmission on NRLA
    RM_NRLA_RETRANSMISSION = 6050
    #: 6101 general failure
    RM_GENERAL_FAILURE = 6101
    #: 6102 failure with parser building parameters
    RM_PARSER_PARAMETERS = 6102
    #: 6103 parameter error -- missing, etc.
    RM_PARAMETER_ERROR = 6103
    #: 6104 no valid request
    NO_VALID_REQUEST = 6104
    #: 6105 database connectivity error
    RM_DB_CONNECT = 6105
    #: 6106 database command error
    RM_DB_COMMAND = 6106
    #: 6107 Report Manager ID error
    RM_ID_ERROR = 6107
    #: 6108 error opening file
    RM_FILE_OPEN = 6108
    #: 6109 no records found meeting criteria (also printed as 7000)
    RM_NO_RECORDS = 6109
    #: 6110 SQL cannot connect
    RM_SQL_CONNECT = 6110
    #: 6111 cannot execute stored procedure
    RM_STORED_PROCEDURE = 6111
    #: 6112 SQL open cursor
    RM_OPEN_CURSOR = 6112
    #: 6113 enterprise ID or user report title empty
    RM_ENTP_OR_TITLE_EMPTY = 6113
    #: 6114 required parameters are missing
    REQUIRED_PARAMETERS_MISSING = 6114
    #: 6115 IDs are not correct
    IDS_NOT_CORRECT = 6115
    #: 6116 FF not correct
    RM_FF_NOT_CORRECT = 6116
    #: 6600 report title is null
    REPORT_TITLE_NULL = 6600
    #: 6601 number dialed is null
    NUMBER_DIALED_NULL = 6601
    #: 6602 start date is null
    START_DATE_NULL = 6602
    #: 6603 end date is null
    END_DATE_NULL = 6603
    #: 6610 token is unknown
    UNKNOWN_TOKEN = 6610
    #: 6611 empty or incorrect input string
    INCORRECT_INPUT = 6611
    #: 6612 unbalanced brackets
    UNBALANCED_BRACKETS = 6612
    #: 6701 required tokens missing
    REQUIRED_TOKENS_MISSING = 6701
    #: 6702 missing parameter value
    MISSING_PARAMETER_VALUE = 6702
    #: 6703 required tag in message has no value
    REQUIRED_TAG_NO_VALUE = 6703
    #: 6704 category cannot be empty
    CATEGORY_EMPTY = 6704
    #: 6705 range type cannot be empty (for an ad hoc schedule)
    RANGE_TYPE_EMPTY = 6705
    #: 6706 enterprise id length is invalid
    ENTPID_LENGTH = 6706
    #: 6707 fulfilling server returned a response that appears to be incorrect
    FULFILLING_RESPONSE_INCORRECT = 6707
    #: 6801 missing ACTIVE parameter
    MISSING_ACTIVE = 6801
    #: 6802 ACTIVE parameter missing value
    EMPTY_ACTIVE = 6802
    #: 6803 missing CATEGORY parameter
    MISSING_CATEGORY = 6803
    #: 6804 CATEGORY parameter missing value
    EMPTY_CATEGORY = 6804
    #: 6805 missing COMPRESS parameter
    MISSING_COMPRESS = 6805
    #: 6806 COMPRESS parameter missing value
    EMPTY_COMPRESS = 6806
    #: 6807 missing DATACAT parameter
    MISSING_DATACAT = 6807
    #: 6808 DATACAT parameter missing value
    EMPTY_DATACAT = 6808
    #: 6809 missing DATATYPE parameter
    MISSING_DATATYPE = 6809
    #: 6810 DATATYPE parameter missing value
    EMPTY_DATATYPE = 6810
    #: 6811 missing DESCRIPTION parameter
    MISSING_DESCRIPTION = 6811
    #: 6812 DESCRIPTION parameter missing value
    EMPTY_DESCRIPTION = 6812
    #: 6813 missing EMAIL parameter
    MISSING_EMAIL = 6813
    #: 6814 EMAIL parameter missing value
    EMPTY_EMAIL = 6814
    #: 6815 missing ENTPID parameter
    MISSING_ENTPID = 6815
    #: 6816 ENTPID parameter missing value
    EMPTY_ENTPID = 6816
    #: 6817 missing FSIZE parameter
    MISSING_FSIZE = 6817
    #: 6818 FSIZE parameter missing value
    EMPTY_FSIZE = 6818
    #: 6819 missing FULSERVER parameter
    MISSING_FULSERVER = 6819
    #: 6820 FULSERVER parameter missing value
    EMPTY_FULSERVER = 6820
    #: 6821 missing LOC parameter
    MISSING_LOC = 6821
    #: 6822 LOC parameter missing value
    EMPTY_LOC = 6822
    #: 6823 missing NAME parameter
    MISSING_NAME = 6823
    #: 6824 NAME parameter missing value
    EMPTY_NAME = 6824
    #: 6825 missing PAGE parameter
    MISSING_PAGE = 6825
    #: 6826 PAGE parameter missing value
    EMPTY_PAGE = 6826
    #: 6827 missing PRODUCT parameter
    MISSING_PRODUCT = 6827
    #: 6828 PRODUCT parameter missing value
    EMPTY_PRODUCT = 6828
    #: 6829 missing REPORTID parameter
    MISSING_REPORTID = 6829
    #: 6830 REPORTID parameter missing value
    EMPTY_REPORTID = 6830
    #: 6831 missing RPTTMPLID parameter
    MISSING_RPTTMPLID = 6831
    #: 6832 RPTTMPLID parameter missing value
    EMPTY_RPTTMPLID = 6832
    #: 6833 missing SCHEDTYPE parameter
    MISSING_SCHEDTYPE = 6833
    #: 6834 SCHEDTYPE parameter missing value
    EMPTY_SCHEDTYPE = 6834
    #: 6835 missing STDRPTID parameter
    MISSING_STDRPTID = 6835
    #: 6836 STDRPTID parameter missing value
    EMPTY_STDRPTID = 6836
    #: 6837 missing TYPE parameter
    MISSING_TYPE = 6837
    #: 6838 TYPE parameter missing value
    EMPTY_TYPE = 6838
    #: 6839 missing USERID parameter
    MISSING_USERID = 6839
    #: 6840 USERID parameter missing value
    EMPTY_USERID = 6840
    #: 6841 missing USERRPTID parameter
    MISSING_USERRPTID = 6841
    #: 6842 USERRPTID parameter missing value
    EMPTY_USERRPTID = 6842

    # -- dispatcher and transport, PROTOCOL.md section 4 -------------------------
    #: 7001 version mismatch
    VERSION_MISMATCH = 7001
    #: 7002 unknown target
    UNKNOWN_TARGET = 7002
    #: 7003 not entitled (or not your ticket)
    NOT_ENTITLED = 7003
    #: 7004 no session, expired or logged off
    NO_SESSION = 7004
    #: 7005 frame too large
    FRAME_TOO_LARGE = 7005
    #: 7006 proxy unavailable
    PROXY_UNAVAILABLE = 7006
    #: 7007 proxy timeout
    PROXY_TIMEOUT = 7007
    #: 7008 unknown mechanism
    UNKNOWN_MECHANISM = 7008
    #: 7009 malformed or truncated frame
    MALFORMED_FRAME = 7009
    #: 7010 unknown or expired ticket
    UNKNOWN_TICKET = 7010
    #: 7011 transfer checksum mismatch
    CHECKSUM_MISMATCH = 7011
    #: 7012 too many failed logons for this account; try again later
    #: (starwrs extension, docs/runtime.md)
    LOGON_THROTTLED = 7012


class StarwrsError(Exception):
    """Root of every error starwrs raises on purpose; always carries a wire code.

    Attributes:
        code: the :class:`ErrorCode` to answer with.
        message: a human-readable explanation (no secrets, no stack trace).
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{int(code)}: {message}")
        self.code = code
        self.message = message


class MessageError(StarwrsError):
    """A metadata message that does not parse or does not validate.

    Attributes:
        offset: character offset in the input where it went wrong (0-based);
            for a validation error, the offset of the offending member when known,
            else 0.
        key: the parameter concerned, when there is one.
    """

    def __init__(
        self, code: ErrorCode, message: str, offset: int = 0, key: str | None = None
    ) -> None:
        super().__init__(code, message)
        self.offset = offset
        self.key = key

    def to_json(self) -> dict[str, object]:
        """The CLI's one-line error shape: ``{"error", "message", "offset"}``."""
        return {"error": int(self.code), "message": self.message, "offset": self.offset}


_MEANINGS: dict[int, str] | None = None


def describe(code: int) -> str:
    """What wire status *code* means, in the words of the spec (``""`` if unknown).

    The text is the ``#:`` comment that documents the code's :class:`ErrorCode`
    member, read once from this module's own source, so the enum stays the one
    place a code's meaning is written.
    """
    global _MEANINGS
    if _MEANINGS is None:
        import re
        from pathlib import Path

        meanings: dict[int, str] = {}
        lines = Path(__file__).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            found = re.match(r"\s*#: (\d+) (.*)", line)
            if not found:
                continue
            text = found.group(2)
            following = number + 1
            while following < len(lines) and lines[following].strip().startswith("#: "):
                text += " " + lines[following].strip()[3:]
                following += 1
            text = re.split(r" -- | \((?:starwrs|PROTOCOL|Appendix)", text)[0]
            meanings.setdefault(int(found.group(1)), text.strip().rstrip("."))
        _MEANINGS = meanings
    return _MEANINGS.get(int(code), "")
