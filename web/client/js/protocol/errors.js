// The wire status codes and the exceptions that carry them (starwrs.grammar.errors).
//
// Theory of operation
// -------------------
// Every rejection is a StarwrsError carrying one code: the number that goes on the
// wire, in a response message's ERROR= and in the common header's status.  The codes
// are the seed's Appendix E (Report Manager 6050-6842, Inbox 5005-5185) plus the
// transport codes 7001-7012 of PROTOCOL.md section 4, with the names and meanings of
// the Python ErrorCode enum (tests/web/test_js_protocol.py holds the two tables
// equal).  As in starwrs.protocol.errors, the direction of a frame fault is part of
// the type: RemoteProtocolError (the peer sent it) or LocalProtocolError (we tried to
// send it).  Nothing else is thrown on purpose by these modules.

/** [name, code, meaning] for every code starwrs puts on the wire. */
const TABLE = [
  ["OK", 0, "OK, request processed"],
  ["PENDING", 1, "pending: asynchronous work not finished yet (PROTOCOL.md section 3)"],
  // Inbox proxy codes, Appendix E
  ["INBOX_DUPLICATE", 5005, "item had already been added to the inbox and will not be added again"],
  ["INBOX_NO_RECORDS", 5100, "no records found (status code)"],
  ["INBOX_PARSER", 5101, "failure in parser building parameter list, unknown or invalid token"],
  ["INBOX_MISSING", 5102, "required parameter missing"],
  ["INBOX_INVALID_REQUEST", 5103, "request is invalid or unknown"],
  ["INBOX_FETCH_OPEN", 5104, "during Fetch, the file in the Inbox database could not be opened"],
  ["INBOX_SQL_CONNECT", 5105, "could not make an SQL connection to the Inbox database"],
  ["INBOX_STORED_PROCEDURE", 5106, "error executing the stored procedure"],
  ["INBOX_OPEN_CURSOR", 5107, "error during an SQL open cursor call"],
  ["INBOX_FETCH_FILENAME", 5108, "error constructing the filename for a Fetch metadata request"],
  ["INBOX_UPDATE_ID_MISSING", 5111, "parameter (Inboxid or Userid) missing on update command"],
  ["INBOX_UPDATE_TTL", 5112, "TTL missing or invalid on Update"],
  ["INBOX_UPDATE_CATEGORY", 5113, "category missing on Update"],
  ["INBOX_FETCH_ID_MISSING", 5121, "InboxID parameter missing in Fetch"],
  ["INBOX_DELETE_NONE", 5125, "no records found for deletion"],
  ["INBOX_LIST_USER_MISSING", 5131, "UserID parameter missing in List"],
  ["INBOX_LIST_CATEGORY_MISSING", 5132, "Category missing in List"],
  ["INBOX_DELETE_USER_MISSING", 5141, "UserID parameter missing in Delete"],
  ["INBOX_ADD_CATEGORY", 5151, "Category parameter invalid in Add"],
  ["INBOX_ADD_TYPE", 5152, "Type parameter invalid in Add"],
  ["INBOX_ADD_ENTP_USER", 5153, "EntpID+UserID parameter missing or invalid in Add"],
  ["INBOX_ADD_RPTID", 5154, "RptID parameter missing in Add"],
  ["INBOX_ADD_COMPRESS", 5155, "Compress parameter missing in Add"],
  ["INBOX_ADD_SEV", 5156, "Sev parameter missing when Unotify specified in Add"],
  ["INBOX_ADD_RPTCATEGORY", 5157, "RptCategory (report name) parameter missing in Add"],
  ["INBOX_ADD_LOC", 5158, "Loc parameter missing in Add"],
  ["INBOX_ADD_RQSTDT", 5159, "Requested date parameter missing in Add"],
  ["INBOX_ADD_FSIZE", 5160, "Fsize parameter missing in Add"],
  ["INBOX_ADD_RPTTITLE", 5161, "RptTitle parameter missing in Add"],
  ["INBOX_ADD_MSIZE", 5162, "Msize parameter missing in Add for Report or Data"],
  ["INBOX_ADD_NO_FILE", 5163, "file as specified in Loc parameter does not exist"],
  ["INBOX_ADD_ENTP_NOTIFY", 5164, "EntpID parameter missing when Unotify specified"],
  ["INBOX_ADD_COMPRESS_LOC", 5165, "COMP and LOC parameters conflict (compressed but no _zip extension)"],
  ["INBOX_NO_METADATA", 5166, "metadata file does not exist"],
  ["INBOX_NOTIFY", 5170, "user notification error (with 5171, 5172, 5174)"],
  ["INBOX_NOTIFY_NO_USER", 5171, "no user or enterprise ID in user notification"],
  ["INBOX_NOTIFY_LEVEL_NULL", 5172, "notification level is null"],
  ["INBOX_NOTIFY_LEVEL_UNKNOWN", 5174, "unknown notification level"],
  ["INBOX_NOTIFY_CONSTRUCTOR", 5178, "invalid constructor call in user notification"],
  ["INBOX_NOTIFY_EMAIL", 5179, "invalid email address (no @ symbol) in user notification"],
  ["INBOX_NOTIFY_NO_TEXT", 5180, "no address or text exists in user notification for email"],
  ["INBOX_NOTIFY_PAGE", 5182, "page could not be sent -- required fields missing"],
  ["INBOX_NOTIFY_COMM", 5183, "comm failure obtaining default email/paging info"],
  ["INBOX_NOTIFY_OE", 5184, "StarOE returned an error obtaining default email/paging info"],
  ["INBOX_NOTIFY_FORK", 5185, "error forking a child process in email/paging"],
  // Report Manager proxy codes, Appendix E
  ["RM_NRLA_RETRANSMISSION", 6050, "retransmission on NRLA"],
  ["RM_GENERAL_FAILURE", 6101, "general failure"],
  ["RM_PARSER_PARAMETERS", 6102, "failure with parser building parameters"],
  ["RM_PARAMETER_ERROR", 6103, "parameter error -- missing, etc."],
  ["NO_VALID_REQUEST", 6104, "no valid request"],
  ["RM_DB_CONNECT", 6105, "database connectivity error"],
  ["RM_DB_COMMAND", 6106, "database command error"],
  ["RM_ID_ERROR", 6107, "Report Manager ID error"],
  ["RM_FILE_OPEN", 6108, "error opening file"],
  ["RM_NO_RECORDS", 6109, "no records found meeting criteria (also printed as 7000)"],
  ["RM_SQL_CONNECT", 6110, "SQL cannot connect"],
  ["RM_STORED_PROCEDURE", 6111, "cannot execute stored procedure"],
  ["RM_OPEN_CURSOR", 6112, "SQL open cursor"],
  ["RM_ENTP_OR_TITLE_EMPTY", 6113, "enterprise ID or user report title empty"],
  ["REQUIRED_PARAMETERS_MISSING", 6114, "required parameters are missing"],
  ["IDS_NOT_CORRECT", 6115, "IDs are not correct"],
  ["RM_FF_NOT_CORRECT", 6116, "FF not correct"],
  ["REPORT_TITLE_NULL", 6600, "report title is null"],
  ["NUMBER_DIALED_NULL", 6601, "number dialed is null"],
  ["START_DATE_NULL", 6602, "start date is null"],
  ["END_DATE_NULL", 6603, "end date is null"],
  ["UNKNOWN_TOKEN", 6610, "token is unknown"],
  ["INCORRECT_INPUT", 6611, "empty or incorrect input string"],
  ["UNBALANCED_BRACKETS", 6612, "unbalanced brackets"],
  ["REQUIRED_TOKENS_MISSING", 6701, "required tokens missing"],
  ["MISSING_PARAMETER_VALUE", 6702, "missing parameter value"],
  ["REQUIRED_TAG_NO_VALUE", 6703, "required tag in message has no value"],
  ["CATEGORY_EMPTY", 6704, "category cannot be empty"],
  ["RANGE_TYPE_EMPTY", 6705, "range type cannot be empty (for an ad hoc schedule)"],
  ["ENTPID_LENGTH", 6706, "enterprise id length is invalid"],
  ["FULFILLING_RESPONSE_INCORRECT", 6707, "fulfilling server returned a response that appears to be incorrect"],
  ["MISSING_ACTIVE", 6801, "missing ACTIVE parameter"],
  ["EMPTY_ACTIVE", 6802, "ACTIVE parameter missing value"],
  ["MISSING_CATEGORY", 6803, "missing CATEGORY parameter"],
  ["EMPTY_CATEGORY", 6804, "CATEGORY parameter missing value"],
  ["MISSING_COMPRESS", 6805, "missing COMPRESS parameter"],
  ["EMPTY_COMPRESS", 6806, "COMPRESS parameter missing value"],
  ["MISSING_DATACAT", 6807, "missing DATACAT parameter"],
  ["EMPTY_DATACAT", 6808, "DATACAT parameter missing value"],
  ["MISSING_DATATYPE", 6809, "missing DATATYPE parameter"],
  ["EMPTY_DATATYPE", 6810, "DATATYPE parameter missing value"],
  ["MISSING_DESCRIPTION", 6811, "missing DESCRIPTION parameter"],
  ["EMPTY_DESCRIPTION", 6812, "DESCRIPTION parameter missing value"],
  ["MISSING_EMAIL", 6813, "missing EMAIL parameter"],
  ["EMPTY_EMAIL", 6814, "EMAIL parameter missing value"],
  ["MISSING_ENTPID", 6815, "missing ENTPID parameter"],
  ["EMPTY_ENTPID", 6816, "ENTPID parameter missing value"],
  ["MISSING_FSIZE", 6817, "missing FSIZE parameter"],
  ["EMPTY_FSIZE", 6818, "FSIZE parameter missing value"],
  ["MISSING_FULSERVER", 6819, "missing FULSERVER parameter"],
  ["EMPTY_FULSERVER", 6820, "FULSERVER parameter missing value"],
  ["MISSING_LOC", 6821, "missing LOC parameter"],
  ["EMPTY_LOC", 6822, "LOC parameter missing value"],
  ["MISSING_NAME", 6823, "missing NAME parameter"],
  ["EMPTY_NAME", 6824, "NAME parameter missing value"],
  ["MISSING_PAGE", 6825, "missing PAGE parameter"],
  ["EMPTY_PAGE", 6826, "PAGE parameter missing value"],
  ["MISSING_PRODUCT", 6827, "missing PRODUCT parameter"],
  ["EMPTY_PRODUCT", 6828, "PRODUCT parameter missing value"],
  ["MISSING_REPORTID", 6829, "missing REPORTID parameter"],
  ["EMPTY_REPORTID", 6830, "REPORTID parameter missing value"],
  ["MISSING_RPTTMPLID", 6831, "missing RPTTMPLID parameter"],
  ["EMPTY_RPTTMPLID", 6832, "RPTTMPLID parameter missing value"],
  ["MISSING_SCHEDTYPE", 6833, "missing SCHEDTYPE parameter"],
  ["EMPTY_SCHEDTYPE", 6834, "SCHEDTYPE parameter missing value"],
  ["MISSING_STDRPTID", 6835, "missing STDRPTID parameter"],
  ["EMPTY_STDRPTID", 6836, "STDRPTID parameter missing value"],
  ["MISSING_TYPE", 6837, "missing TYPE parameter"],
  ["EMPTY_TYPE", 6838, "TYPE parameter missing value"],
  ["MISSING_USERID", 6839, "missing USERID parameter"],
  ["EMPTY_USERID", 6840, "USERID parameter missing value"],
  ["MISSING_USERRPTID", 6841, "missing USERRPTID parameter"],
  ["EMPTY_USERRPTID", 6842, "USERRPTID parameter missing value"],
  // Dispatcher and transport, PROTOCOL.md section 4
  ["VERSION_MISMATCH", 7001, "version mismatch"],
  ["UNKNOWN_TARGET", 7002, "unknown target"],
  ["NOT_ENTITLED", 7003, "not entitled (or not your ticket)"],
  ["NO_SESSION", 7004, "no session, expired or logged off"],
  ["FRAME_TOO_LARGE", 7005, "frame too large"],
  ["PROXY_UNAVAILABLE", 7006, "proxy unavailable"],
  ["PROXY_TIMEOUT", 7007, "proxy timeout"],
  ["UNKNOWN_MECHANISM", 7008, "unknown mechanism"],
  ["MALFORMED_FRAME", 7009, "malformed or truncated frame"],
  ["UNKNOWN_TICKET", 7010, "unknown or expired ticket"],
  ["CHECKSUM_MISMATCH", 7011, "transfer checksum mismatch"],
  ["LOGON_THROTTLED", 7012, "too many failed logons for this account; try again later (starwrs extension, docs/runtime.md)"],
];

/** ErrorCode.NAME -> number, e.g. ErrorCode.UNBALANCED_BRACKETS === 6612. */
export const ErrorCode = Object.freeze(Object.fromEntries(TABLE.map(([name, code]) => [name, code])));

const NAMES = new Map(TABLE.map(([name, code]) => [code, name]));
const MEANINGS = new Map(TABLE.map(([, code, meaning]) => [code, meaning]));

/**
 * The name of a code (``"UNBALANCED_BRACKETS"`` for 6612), or null if unknown.
 * @param {number} code
 * @returns {string | null}
 */
export function codeName(code) {
  return NAMES.get(code) ?? null;
}

/**
 * What a code means, in the words of Appendix E / PROTOCOL.md, or null if unknown.
 * @param {number} code
 * @returns {string | null}
 */
export function codeMeaning(code) {
  return MEANINGS.get(code) ?? null;
}

/** Root of every error these modules throw on purpose; always carries a wire code. */
export class StarwrsError extends Error {
  /**
   * ``message`` is the explanation alone, as in Python (``String(err)`` adds the name).
   * @param {number} code the code to answer with
   * @param {string} message a human-readable explanation (no secrets)
   */
  constructor(code, message) {
    super(message);
    this.name = new.target.name;
    /** the wire code (ErrorCode) */
    this.code = code;
  }
}

/** A metadata message that does not parse: code 6610, 6611 or 6612 and an offset. */
export class MessageError extends StarwrsError {
  /**
   * @param {number} code
   * @param {string} message
   * @param {number} [offset] code-point offset in the input where it went wrong
   * @param {string | null} [key] the parameter concerned, when there is one
   */
  constructor(code, message, offset = 0, key = null) {
    super(code, message);
    this.offset = offset;
    this.key = key;
  }

  /** The CLI's one-line error shape: {error, message, offset}. */
  toJSON() {
    return { error: this.code, message: this.message, offset: this.offset };
  }
}

/** A frame or header that breaks PROTOCOL.md section 2 (7001, 7005, 7008, 7009). */
export class ProtocolError extends StarwrsError {}

/** The peer sent something PROTOCOL.md does not allow; answer with ``code``. */
export class RemoteProtocolError extends ProtocolError {}

/** We tried to send something PROTOCOL.md does not allow (a caller bug). */
export class LocalProtocolError extends ProtocolError {}
