"""Typed metadata messages: declare a message once, validate and write it from that.

Theory of operation
-------------------
A message class is a frozen, slotted dataclass made by :func:`typed`.  Each field is
declared with :func:`param`, which records the wire metadata beside the Python type::

    @typed
    class GetUserReportDetail(TypedMessage):
        ACRONYM = "GURD"
        report_id: int = param("REPORTID", Id(), required=True)

``from_message(msg)`` checks the acronym, then walks the members in passes, so
the first violation reported is always the same one:

1. **keys**, in message order: each keyed member is matched to a parameter by its
   wire key or an alias, compared case-insensitively with runs of white space
   folded (``DATA CAT`` = ``data  cat``; ``PGPin`` = ``PGPIN``).  A keyless
   ``COLUMNS<44,36>`` counts as ``COLUMNS=<44,36>``.  An unknown key or a repeated
   one is rejected here; other keyless members are set aside as *extras*.
2. **values**, in declaration order: a missing or empty required value is
   rejected, and every present value is converted by the parameter's codec
   (:mod:`starwrs.grammar.codecs`) or rejected.  Nested groups (THRESHOLD,
   FILTERS, METACOLUMN, ...) are :class:`TypedGroup` classes decoded the same way,
   with dotted keys (``THRESHOLD.RANKING``, ``METACOLUMN[2].WIDTH``).
3. **conditions**, in declaration order: an optional parameter whose
   :class:`When` condition holds (SUBTOTCOL when TOTALMODE is 1 or 3) must be there.
4. **extras**: the class's ``_decode_extras`` hook takes the keyless members (most
   classes have none and reject them).
5. **rules**: the instance is built and its :meth:`TypedGroup.check` runs the
   remaining cross-parameter rules.

A class may override ``_decode_members`` to pre-process the members (a GPL takes
its pick-list token out) and then call :func:`decode_members`.

``to_message()`` writes the canonical form: declared parameters in declaration
order under their canonical spelling, then the extras.  A parameter whose value is
``None`` (absent) or equal to its stated default (``ACTIVE=0``, ``TOTALMODE=0``) is
left out: reading it back gives the same value.  A present-but-empty optional value
(``PGT=``, ``THRESHOLD=<>``) means absent: ``None`` in the instance, not written
back (unless the parameter says ``keep_empty``); so does a nested group that holds
nothing once read (``THRESHOLD=<RECCOUNT=>``).  So
``from_message(parse(serialize(x.to_message()))) == x`` for every instance that
validation produces; hand-built instances should use ``None``, never an empty
nested group, for "absent".

Code-assignment rules
---------------------
Every violation raises :class:`~starwrs.grammar.errors.MessageError` with
``offset=0`` (trees carry no offsets), ``key=`` the dotted parameter key (or the
offending token), and a message ``"<ACRONYM>: <key>: <what is wrong>"``.  The code
is chosen by the message's :class:`Family`:

============================  ===========================  =====================
situation                     Report Manager family         Inbox family
                              (RM, DSS, OE, METADATA)       (A, D, L, F, U, Z)
============================  ===========================  =====================
wrong / unknown acronym       6104                          5103
unknown key, stray token      6610                          5101
key given twice               6103                          5101
required parameter missing    the param's own code, else    the param's own code,
                              its 68xx "Missing X" code,    else 5102
                              else 6114
required parameter empty      the param's own code, else    the param's own code,
                              its 68xx "X missing value",   else its "missing"
                              else 6703                     code, else 5102
malformed / too long / not    the param's own code, else    the param's own code,
an acceptable value           6103 (6115 for an id)         else 5101
dependent rule                as the class's ``check`` says (see each catalogue)
============================  ===========================  =====================

A response (:class:`TypedResponse`) whose ``ERROR`` is not 0 need not carry its
other required parameters: an error answer has no data.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

from starwrs.grammar.codecs import NO_CTX, Bad, Codec, Ctx, Int, is_empty
from starwrs.grammar.errors import ErrorCode, MessageError
from starwrs.grammar.model import Group, Member, Message, Tagged, Value
from starwrs.grammar.serializer import serialize_value

__all__ = [
    "INBOX",
    "REPORT_MANAGER",
    "BoundParam",
    "Family",
    "Nested",
    "ParamSpec",
    "TypedGroup",
    "TypedMessage",
    "TypedResponse",
    "When",
    "decode_members",
    "norm_key",
    "param",
    "typed",
]

_META = "starwrs.param"


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """The wire description of one parameter (what :func:`param` records).

    Attributes:
        wire: canonical wire key, as written by ``to_message``.
        codec: converts the value (see :mod:`starwrs.grammar.codecs`).
        aliases: other spellings accepted on input (``DATA CAT`` for ``DATACAT``).
        required: the seed's "Required: Yes".
        missing / empty / invalid: codes for this parameter that override the
            family's defaults (``None``: use the defaults).
        repeated: the key may occur many times; the value is a tuple.
        numbered: repeated keys carry a number (``NODE1``, ``NODE2``, ...).
        required_if: conditions making an optional parameter required.
        nonempty: present-but-empty is an error even when the parameter is optional.
        keep_empty: present-but-empty is kept as the empty value (``""`` / ``<>``),
            not read as absent (METADATA's ``Options=`` line).
    """

    wire: str
    codec: Codec[Any]
    aliases: tuple[str, ...] = ()
    required: bool = False
    missing: ErrorCode | None = None
    empty: ErrorCode | None = None
    invalid: ErrorCode | None = None
    repeated: bool = False
    numbered: bool = False
    required_if: tuple[When, ...] = ()
    nonempty: bool = False
    keep_empty: bool = False


@dataclass(frozen=True, slots=True)
class When:
    """A condition under which an optional parameter becomes required.

    Attributes:
        description: the condition in the seed's words (``TOTALMODE is 1 or 3``).
        predicate: takes the decoded values by field name (absent ones hold their
            default) and says whether the condition holds.
        missing / empty: codes for this condition (``None``: the parameter's own).
    """

    description: str
    predicate: Callable[[Mapping[str, Any]], bool]
    missing: ErrorCode | None = None
    empty: ErrorCode | None = None


def param(
    wire: str,
    codec: Codec[Any],
    *,
    aliases: tuple[str, ...] = (),
    required: bool = False,
    missing: ErrorCode | None = None,
    empty: ErrorCode | None = None,
    invalid: ErrorCode | None = None,
    repeated: bool = False,
    numbered: bool = False,
    required_if: tuple[When, ...] = (),
    nonempty: bool = False,
    keep_empty: bool = False,
    secret: bool = False,
    default: Any = dataclasses.MISSING,
) -> Any:
    """Declare a message field and its wire metadata (a dataclass field specifier).

    Args:
        wire: canonical wire key.
        codec: the value codec.
        aliases: other accepted spellings of the key.
        required: the parameter must be present and non-empty.
        missing: code when it is absent (overrides the family's choice).
        empty: code when it is present with no value.
        invalid: code when its value is malformed or not acceptable.
        repeated: the key may repeat; the field is a tuple (give ``default=()``).
        numbered: repeated keys are numbered on output (``NODE1``, ``NODE2``).
        required_if: conditions that make an optional parameter required; the
            first that holds decides the codes.
        nonempty: reject ``KEY=`` (with the "empty" code) even when optional.
        keep_empty: keep ``KEY=`` as the empty value instead of reading it as absent
            (for :class:`~starwrs.grammar.codecs.Raw` values).
        secret: keep the value out of ``repr()`` (passwords).
        default: the Python default for an absent or empty optional parameter
            (``None``, or the seed's stated default such as ``ACTIVE=0``).

    Returns:
        A :func:`dataclasses.field` carrying a :class:`ParamSpec`.
    """
    spec = ParamSpec(
        wire,
        codec,
        aliases,
        required,
        missing,
        empty,
        invalid,
        repeated,
        numbered,
        required_if,
        nonempty,
        keep_empty,
    )
    if default is dataclasses.MISSING:
        return field(metadata={_META: spec}, repr=not secret)
    return field(default=default, metadata={_META: spec}, repr=not secret)


@dataclass(frozen=True, slots=True)
class Family:
    """The code defaults of one group of services (see the module docstring)."""

    name: str
    missing: ErrorCode
    empty: ErrorCode
    invalid: ErrorCode
    bad_id: ErrorCode
    unknown: ErrorCode
    duplicate: ErrorCode
    no_request: ErrorCode
    #: wire key -> (missing code, empty code), Appendix E's 68xx pairs
    specific: Mapping[str, tuple[ErrorCode, ErrorCode]]
    #: Inbox: a present-but-empty parameter gets the parameter's "missing" code
    empty_is_missing: bool


#: Appendix E's 68xx pairs: wire key -> ("Missing X parameter", "X parameter missing value")
SPECIFIC_68XX: Mapping[str, tuple[ErrorCode, ErrorCode]] = {
    "ACTIVE": (ErrorCode.MISSING_ACTIVE, ErrorCode.EMPTY_ACTIVE),
    "CATEGORY": (ErrorCode.MISSING_CATEGORY, ErrorCode.EMPTY_CATEGORY),
    "COMPRESS": (ErrorCode.MISSING_COMPRESS, ErrorCode.EMPTY_COMPRESS),
    "DATACAT": (ErrorCode.MISSING_DATACAT, ErrorCode.EMPTY_DATACAT),
    "DATATYPE": (ErrorCode.MISSING_DATATYPE, ErrorCode.EMPTY_DATATYPE),
    "DESCRIPTION": (ErrorCode.MISSING_DESCRIPTION, ErrorCode.EMPTY_DESCRIPTION),
    "EMAIL": (ErrorCode.MISSING_EMAIL, ErrorCode.EMPTY_EMAIL),
    "ENTPID": (ErrorCode.MISSING_ENTPID, ErrorCode.EMPTY_ENTPID),
    "FSIZE": (ErrorCode.MISSING_FSIZE, ErrorCode.EMPTY_FSIZE),
    "FULSERVER": (ErrorCode.MISSING_FULSERVER, ErrorCode.EMPTY_FULSERVER),
    "LOC": (ErrorCode.MISSING_LOC, ErrorCode.EMPTY_LOC),
    "NAME": (ErrorCode.MISSING_NAME, ErrorCode.EMPTY_NAME),
    "PAGE": (ErrorCode.MISSING_PAGE, ErrorCode.EMPTY_PAGE),
    "PRODUCT": (ErrorCode.MISSING_PRODUCT, ErrorCode.EMPTY_PRODUCT),
    "REPORTID": (ErrorCode.MISSING_REPORTID, ErrorCode.EMPTY_REPORTID),
    "RPTTMPLID": (ErrorCode.MISSING_RPTTMPLID, ErrorCode.EMPTY_RPTTMPLID),
    "SCHEDTYPE": (ErrorCode.MISSING_SCHEDTYPE, ErrorCode.EMPTY_SCHEDTYPE),
    "STDRPTID": (ErrorCode.MISSING_STDRPTID, ErrorCode.EMPTY_STDRPTID),
    "TYPE": (ErrorCode.MISSING_TYPE, ErrorCode.EMPTY_TYPE),
    "USERID": (ErrorCode.MISSING_USERID, ErrorCode.EMPTY_USERID),
    "USERRPTID": (ErrorCode.MISSING_USERRPTID, ErrorCode.EMPTY_USERRPTID),
}


#: Report Manager proxy codes (Appendix E): RM, DSS (fulfilling server), OE, METADATA
REPORT_MANAGER = Family(
    name="RM",
    missing=ErrorCode.REQUIRED_PARAMETERS_MISSING,
    empty=ErrorCode.REQUIRED_TAG_NO_VALUE,
    invalid=ErrorCode.RM_PARAMETER_ERROR,
    bad_id=ErrorCode.IDS_NOT_CORRECT,
    unknown=ErrorCode.UNKNOWN_TOKEN,
    duplicate=ErrorCode.RM_PARAMETER_ERROR,
    no_request=ErrorCode.NO_VALID_REQUEST,
    specific=SPECIFIC_68XX,
    empty_is_missing=False,
)

#: Inbox proxy codes (Appendix E): A, D, L, F, U and the Z acknowledgement
INBOX = Family(
    name="INBX",
    missing=ErrorCode.INBOX_MISSING,
    empty=ErrorCode.INBOX_MISSING,
    invalid=ErrorCode.INBOX_PARSER,
    bad_id=ErrorCode.INBOX_PARSER,
    unknown=ErrorCode.INBOX_PARSER,
    duplicate=ErrorCode.INBOX_PARSER,
    no_request=ErrorCode.INBOX_INVALID_REQUEST,
    specific={},
    empty_is_missing=True,
)


def norm_key(key: str) -> str:
    """Key comparison form: upper case, white space runs folded to one space."""
    return " ".join(key.split()).upper()


@dataclass(frozen=True, slots=True)
class BoundParam:
    """A parameter of one class, with its codes resolved for the class's family.

    The decoder reads these on every value, so the hot flags of the spec are copied
    out flat (one slot load each instead of two).
    """

    name: str
    spec: ParamSpec
    missing: ErrorCode
    empty: ErrorCode
    invalid: ErrorCode | None
    pattern: re.Pattern[str] | None
    default: Any
    #: ``spec.codec``, ``spec.repeated``, ``spec.required``, ``spec.wire`` (hot copies)
    codec: Codec[Any] = field(init=False)
    repeated: bool = field(init=False)
    required: bool = field(init=False)
    wire: str = field(init=False)
    #: the codec reads its :class:`Ctx` (a :class:`Nested` group); others get a blank one
    contextual: bool = field(init=False)
    #: the codec can decode to a value that reads as absent (``is_void``)
    voidable: bool = field(init=False)

    def __post_init__(self) -> None:
        spec = self.spec
        codec = spec.codec
        for name, value in (
            ("codec", codec),
            ("repeated", spec.repeated),
            ("required", spec.required),
            ("wire", spec.wire),
            ("contextual", codec.contextual),
            ("voidable", type(codec).is_void is not Codec.is_void),
        ):
            object.__setattr__(self, name, value)


class TypedGroup:
    """Base of every typed group: a message body or a nested ``<...>`` group."""

    __slots__ = ()

    #: which code defaults apply (see :class:`Family`)
    FAMILY: ClassVar[Family] = REPORT_MANAGER
    _PARAMS: ClassVar[tuple[BoundParam, ...]] = ()
    _INDEX: ClassVar[Mapping[str, BoundParam]] = {}
    #: raw key spelling -> parameter, filled as keys are met (bounded; per class)
    _SEEN: ClassVar[dict[str, BoundParam]] = {}
    #: the parameters with a ``required_if`` condition, in declaration order
    _CONDITIONS: ClassVar[tuple[BoundParam, ...]] = ()
    #: field name -> default, what a condition sees for an absent parameter
    _DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: every dataclass field: (name, its slot's setter, its default or _NO_DEFAULT)
    _FIELDS: ClassVar[tuple[tuple[str, Callable[[Any, Any], None], Any], ...]] = ()
    #: the field names of the required parameters
    _REQUIRED: ClassVar[frozenset[str]] = frozenset()
    #: the class overrides :meth:`_decode_extras` (so it runs even with no extras)
    _HAS_EXTRAS_HOOK: ClassVar[bool] = False

    @classmethod
    def params(cls) -> tuple[BoundParam, ...]:
        """The declared parameters, in declaration (= canonical output) order."""
        return cls._PARAMS

    def check(self) -> None:
        """Dependent rules across parameters; raise :meth:`violation` errors.

        Called by ``from_message`` after every value is converted.  Override it;
        the default checks nothing.
        """

    @classmethod
    def violation(cls, code: ErrorCode, key: str, reason: str) -> MessageError:
        """Build the error for a broken rule on *key* (relative to this group).

        For :meth:`check`: ``from_message`` adds the acronym and key prefix.
        """
        return MessageError(code, f"{key}: {reason}", key=key)

    @classmethod
    def error_at(cls, code: ErrorCode, label: str, key: str, reason: str) -> MessageError:
        """Build a fully labelled error (for decoding hooks): ``"ARD: KEY: reason"``."""
        return _error(code, label, key, reason)

    # -- decoding ----------------------------------------------------------------

    @classmethod
    def _find(cls, key: str) -> BoundParam | None:
        seen = cls._SEEN.get(key)
        if seen is not None:  # the hot path: a spelling met before
            return seen
        normal = norm_key(key)
        found = cls._INDEX.get(normal)
        if found is None:
            for bound in cls._PARAMS:
                if bound.pattern is not None and bound.pattern.fullmatch(normal):
                    found = bound
                    break
        if found is not None and len(cls._SEEN) < 256:
            cls._SEEN[key] = found
        return found

    @classmethod
    def _decode_members(cls, members: tuple[Member, ...], label: str, prefix: str) -> Self:
        """Validate *members* against this class and build the instance (overridable)."""
        return decode_members(cls, members, label, prefix)

    @classmethod
    def _enforce_required(cls, raw: Mapping[str, Any]) -> bool:
        """Whether "required" applies (a response with a non-zero ERROR says no)."""
        return True

    @classmethod
    def _decode_extras(
        cls, extras: tuple[Member, ...], decoded: Mapping[str, Any], label: str, prefix: str
    ) -> dict[str, Any]:
        """Take the keyless members (*decoded*: the parameters so far, by field name).

        Returns extra constructor arguments.  The default rejects any extra as an
        unknown token.
        """
        if extras:
            raise cls._stray(extras[0], label, prefix)
        return {}

    @classmethod
    def _stray(cls, member: Member, label: str, prefix: str) -> MessageError:
        shown = serialize_value(member.value)[:40]
        return _error(cls.FAMILY.unknown, label, prefix + shown, "unexpected member without a key")

    # -- encoding ----------------------------------------------------------------

    def _encode_members(self) -> tuple[Member, ...]:
        """The canonical members: leading extras, declared parameters, trailing extras."""
        out = list(self._leading_members())
        for bound in self._PARAMS:
            value = getattr(self, bound.name)
            spec = bound.spec
            if spec.repeated:
                for number, item in enumerate(value, start=1):
                    key = f"{spec.wire}{number}" if spec.numbered else spec.wire
                    out.append(Member(key, spec.codec.encode(item)))
            elif value is not None and (bound.default is None or value != bound.default):
                out.append(Member(spec.wire, spec.codec.encode(value)))
        out.extend(self._trailing_members())
        return tuple(out)

    def _is_void(self) -> bool:
        """True when :meth:`_encode_members` would write nothing (without encoding)."""
        if self._leading_members() or self._trailing_members():
            return False
        for bound in self._PARAMS:
            value = getattr(self, bound.name)
            if bound.spec.repeated:
                if value:
                    return False
            elif value is not None and (bound.default is None or value != bound.default):
                return False
        return True

    def _leading_members(self) -> tuple[Member, ...]:
        return ()

    def _trailing_members(self) -> tuple[Member, ...]:
        return ()


T = TypeVar("T", bound=TypedGroup)


def decode_members(
    cls: type[T],
    members: tuple[Member, ...],
    label: str,
    prefix: str,
    extra: Mapping[str, Any] | None = None,
) -> T:
    """Validate *members* against *cls*: the passes of the module docstring.

    Args:
        cls: the typed class.
        members: the body (or nested group) to validate.
        label: the message acronym, for error texts.
        prefix: dotted key prefix for a nested group (``THRESHOLD.``) or "".
        extra: constructor arguments a class override has decoded itself.

    Returns:
        The validated instance.

    Raises:
        MessageError: the first violation, in the order of the passes.

    Every message the Report Manager receives comes through here, and nearly all
    of them are valid.  So a valid message is read in one pass over its members,
    each value decoded as its key is met (absent parameters cost nothing), and
    only when that pass meets anything it does not accept -- an error, an empty
    required value, a repeated key -- is the message read again by the ordered
    passes (:func:`_decode_ordered`), which decide what the first violation is.
    The one-pass reader is conservative by construction: it can only give up, never
    accept what the ordered passes reject (tests/grammar/test_catalogue_properties.py
    holds the two to the same outcome).
    """
    try:
        return _decode_one_pass(cls, members, label, prefix, extra)
    except (Bad, MessageError, _GiveUp):
        return _decode_ordered(cls, members, label, prefix, extra)


class _GiveUp(Exception):
    """The one-pass reader leaves the message to the ordered passes."""


def _decode_one_pass(
    cls: type[T],
    members: tuple[Member, ...],
    label: str,
    prefix: str,
    extra: Mapping[str, Any] | None,
) -> T:
    seen = cls._SEEN
    raw: dict[str, Any] = {}
    kwargs: dict[str, Any] = dict(extra) if extra else {}
    extras: list[Member] | None = None
    repeated: list[BoundParam] | None = None
    for member in members:
        key = member.key
        value = member.value
        if key is None:
            if type(value) is Tagged and cls._find(value.tag) is not None:
                key = value.tag
                value = value.group
            else:
                if extras is None:
                    extras = []
                extras.append(member)
                continue
        bound = seen.get(key) or cls._find(key)
        if bound is None:
            raise _GiveUp
        name = bound.name
        if bound.repeated:
            if name not in raw:
                raw[name] = []
                if repeated is None:
                    repeated = []
                repeated.append(bound)
            raw[name].append(value)
            continue
        if name in raw:
            raise _GiveUp
        raw[name] = value
        if type(value) is str:
            present = value != ""
        else:
            present = type(value) is not Group or bool(value.members)
        if present:
            codec = bound.codec
            ctx = Ctx(label, prefix + bound.wire) if bound.contextual else NO_CTX
            decoded = codec.decode(value, ctx)
            if not (bound.voidable and codec.is_void(decoded)):
                kwargs[name] = decoded
                continue
        # empty (or void): absent, kept empty, or an error the ordered passes name
        decoded = _decode_value(cls, bound, value, True, label, prefix)
        if decoded is not _ABSENT:
            kwargs[name] = decoded
    enforce = cls._enforce_required(raw)
    if enforce and not cls._REQUIRED.issubset(kwargs):
        raise _GiveUp
    if repeated is not None:
        for bound in repeated:
            kwargs[bound.name] = _decode_value(cls, bound, raw[bound.name], enforce, label, prefix)
    if enforce and cls._CONDITIONS:
        values = cls._DEFAULTS | kwargs
        for bound in cls._CONDITIONS:
            if bound.name not in kwargs:
                _check_required_if(bound, values, bound.name in raw, label, prefix)
    if extras is not None or cls._HAS_EXTRAS_HOOK:
        kwargs.update(cls._decode_extras(tuple(extras or ()), kwargs, label, prefix))
    instance = _instantiate(cls, kwargs)
    instance.check()
    return instance


def _decode_ordered(
    cls: type[T],
    members: tuple[Member, ...],
    label: str,
    prefix: str,
    extra: Mapping[str, Any] | None = None,
) -> T:
    """The passes of the module docstring, in order: the definition of validation.

    :func:`decode_members` tries a single pass first and comes here for any input
    that pass does not accept, so every error is the one these passes find first.
    """
    seen = cls._SEEN
    raw: dict[str, Any] = {}
    extras: list[Member] | None = None
    for member in members:
        key = member.key
        value = member.value
        if key is None:
            if type(value) is Tagged and cls._find(value.tag) is not None:
                key = value.tag
                value = value.group
            else:
                if extras is None:
                    extras = []
                extras.append(member)
                continue
        bound = seen.get(key) or cls._find(key)
        if bound is None:
            raise _error(cls.FAMILY.unknown, label, prefix + key, "unknown parameter")
        name = bound.name
        if bound.repeated:
            raw.setdefault(name, []).append(value)
        elif name in raw:
            raise _error(cls.FAMILY.duplicate, label, prefix + bound.wire, "given more than once")
        else:
            raw[name] = value
    enforce = cls._enforce_required(raw)
    kwargs: dict[str, Any] = dict(extra) if extra else {}
    for bound in cls._PARAMS:
        given = raw.get(bound.name)
        if given is None:  # absent: only a required one matters
            if enforce and bound.required:
                key = prefix + bound.wire
                raise _error(bound.missing, label, key, "required parameter is missing")
            continue
        if type(given) is str:
            present = given != ""
        else:
            present = type(given) is not Group or bool(given.members)
        if present and not bound.repeated:
            # the common case: one non-empty value
            ctx = Ctx(label, prefix + bound.wire) if bound.contextual else NO_CTX
            try:
                decoded = bound.codec.decode(given, ctx)
            except Bad as bad:
                raise _bad(cls, bound, bad, label, prefix + bound.wire) from None
            if not (bound.voidable and bound.codec.is_void(decoded)):
                kwargs[bound.name] = decoded
                continue
        decoded = _decode_value(cls, bound, given, enforce, label, prefix)
        if decoded is not _ABSENT:
            kwargs[bound.name] = decoded
    if enforce and cls._CONDITIONS:
        values = cls._DEFAULTS | kwargs
        for bound in cls._CONDITIONS:
            if bound.name not in kwargs:
                _check_required_if(bound, values, bound.name in raw, label, prefix)
    if extras is not None or cls._HAS_EXTRAS_HOOK:
        kwargs.update(cls._decode_extras(tuple(extras or ()), kwargs, label, prefix))
    instance = _instantiate(cls, kwargs)
    try:
        instance.check()
    except MessageError as err:
        raise MessageError(
            err.code, f"{label}: {prefix}{err.message}", key=f"{prefix}{err.key or ''}"
        ) from None
    return instance


def _instantiate(cls: type[T], kwargs: dict[str, Any]) -> T:
    """``cls(**kwargs)``, setting the slots directly (the decoders' constructor).

    The same as the dataclass ``__init__`` for the arguments the decoders pass --
    every field either given or defaulted -- without a keyword-argument call of up
    to 40 names; anything else goes to the real ``__init__`` to be refused there.
    """
    instance = _new_object(cls)
    given = 0
    for name, setter, default in cls._FIELDS:
        if name in kwargs:
            setter(instance, kwargs[name])
            given += 1
        elif default is _NO_DEFAULT:
            break
        else:
            setter(instance, default)
    else:
        if given == len(kwargs):
            return instance
    factory: Callable[..., T] = cls
    return factory(**kwargs)


_new_object = object.__new__
#: a field without a default (see :attr:`TypedGroup._FIELDS`)
_NO_DEFAULT: Any = object()


def _error(code: ErrorCode, label: str, key: str, reason: str) -> MessageError:
    return MessageError(code, f"{label}: {key}: {reason}", key=key)


def _bad(cls: type[TypedGroup], bound: BoundParam, bad: Bad, label: str, key: str) -> MessageError:
    """The error for a value its codec rejected (see "Code-assignment rules")."""
    family = cls.FAMILY
    code = bad.code or bound.invalid or (family.bad_id if bad.bad_id else family.invalid)
    return _error(code, label, key, bad.reason)


#: what _decode_value returns for an absent or empty optional parameter
_ABSENT: Any = object()


def _check_required_if(
    bound: BoundParam, values: Mapping[str, Any], present: bool, label: str, prefix: str
) -> None:
    for when in bound.spec.required_if:
        if when.predicate(values):
            if present:
                code, what = when.empty or bound.empty, "has no value"
            else:
                code, what = when.missing or bound.missing, "is missing"
            key = prefix + bound.wire
            raise _error(code, label, key, f"required when {when.description}, but {what}")


def _decode_value(
    cls: type[TypedGroup], bound: BoundParam, raw: Any, enforce: bool, label: str, prefix: str
) -> Any:
    """Decode a present value the general way: empty, grouped, listed or repeated."""
    spec = bound.spec
    codec = bound.codec
    key = prefix + spec.wire
    values: list[Value] = raw if spec.repeated else [raw]
    out: list[Any] = []
    for number, value in enumerate(values, start=1):
        if spec.repeated:
            key = f"{prefix}{spec.wire}[{number}]"
        decoded: Any = _ABSENT
        if not is_empty(value):
            ctx = Ctx(label, key) if bound.contextual else NO_CTX
            try:
                decoded = codec.decode(value, ctx)
            except Bad as bad:
                raise _bad(cls, bound, bad, label, key) from None
            if bound.voidable and codec.is_void(decoded):  # THRESHOLD=<RECCOUNT=>
                decoded = _ABSENT
        if decoded is _ABSENT:
            if spec.repeated:
                raise _error(bound.empty, label, key, "repeated parameter has no value")
            if spec.required and enforce:
                raise _error(bound.empty, label, key, "required parameter has no value")
            if spec.nonempty:
                raise _error(bound.empty, label, key, "parameter given with no value")
            return value if spec.keep_empty else _ABSENT
        out.append(decoded)
    if spec.repeated:
        return tuple(out)
    return out[0]


class TypedMessage(TypedGroup):
    """A whole message: an acronym (or none, for METADATA) and a typed body."""

    __slots__ = ()

    #: the wire acronym (``GRTL``); ``None`` for a body without one
    ACRONYM: ClassVar[str | None] = None
    #: a single wrapping key (``METADATA`` in ``<METADATA=<...>>``), or None
    WRAPPER: ClassVar[str | None] = None

    @classmethod
    def label(cls) -> str:
        """How errors name this message: its acronym, else its wrapper key."""
        return cls.ACRONYM or cls.WRAPPER or cls.__name__

    @classmethod
    def from_message(cls, message: Message) -> Self:
        """Validate *message* and return the typed instance.

        Args:
            message: a parsed tree.

        Returns:
            An instance of this class.

        Raises:
            MessageError: with the Appendix E code of the first violation.
        """
        label = cls.label()
        if message.acronym != cls.ACRONYM:
            raise MessageError(
                cls.FAMILY.no_request,
                f"{label}: not a {label} message (acronym {message.acronym!r})",
                key=message.acronym,
            )
        return cls._decode_members(cls._unwrap(message.members, label), label, "")

    @classmethod
    def _unwrap(cls, members: tuple[Member, ...], label: str) -> tuple[Member, ...]:
        wrapper = cls.WRAPPER
        if wrapper is None:
            return members
        inner: tuple[Member, ...] | None = None
        for member in members:
            if member.key is not None and norm_key(member.key) == wrapper and inner is None:
                if not isinstance(member.value, Group):
                    raise _error(cls.FAMILY.invalid, label, wrapper, "must be a group <...>")
                inner = member.value.members
            elif member.key is None:
                raise cls._stray(member, label, "")
            else:
                raise _error(cls.FAMILY.unknown, label, member.key, "unknown parameter")
        if inner is None:
            code = ErrorCode.REQUIRED_TOKENS_MISSING
            raise _error(code, label, wrapper, "required token missing")
        return inner

    def to_message(self) -> Message:
        """Return the canonical message tree of this instance."""
        members = self._encode_members()
        if self.WRAPPER is not None:
            members = (Member(self.WRAPPER, Group(members)),)
        return Message(self.ACRONYM, members)


G = TypeVar("G", bound=TypedGroup)
C = TypeVar("C", bound=type[TypedGroup])


class Nested(Codec[G]):
    """A nested typed group: ``THRESHOLD=<RECCOUNT=20>`` -> ``Threshold(reccount=20)``."""

    __slots__ = ("cls",)

    def __init__(self, cls: type[G]) -> None:
        self.cls = cls

    contextual = True

    def decode(self, value: Value, ctx: Ctx) -> G:
        if not isinstance(value, Group):
            raise Bad("must be a bracketed group <...>")
        return self.cls._decode_members(value.members, ctx.label, ctx.key + ".")

    def encode(self, value: G) -> Value:
        return Group(value._encode_members())

    def is_void(self, value: G) -> bool:
        return value._is_void()


def _bind(cls: type[TypedGroup]) -> tuple[tuple[BoundParam, ...], dict[str, BoundParam]]:
    family = cls.FAMILY
    bound_params: list[BoundParam] = []
    index: dict[str, BoundParam] = {}
    for fld in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = fld.metadata.get(_META)
        if not isinstance(spec, ParamSpec):
            continue
        specific = family.specific.get(norm_key(spec.wire))
        missing = spec.missing or (specific[0] if specific else family.missing)
        if family.empty_is_missing:
            empty = spec.empty or spec.missing or family.empty
        else:
            empty = spec.empty or (specific[1] if specific else family.empty)
        pattern = None
        if spec.numbered:
            pattern = re.compile(re.escape(norm_key(spec.wire)) + r"\d*")
        if fld.default is not dataclasses.MISSING:
            default = fld.default
        elif spec.required:
            default = None
        else:
            raise TypeError(f"{cls.__name__}.{fld.name}: an optional parameter needs a default")
        bound = BoundParam(fld.name, spec, missing, empty, spec.invalid, pattern, default)
        bound_params.append(bound)
        for key in (spec.wire, *spec.aliases):
            normal = norm_key(key)
            if normal in index:
                raise TypeError(f"{cls.__name__}: key {key!r} declared twice")
            index[normal] = bound
    return tuple(bound_params), index


def _field_setters(cls: type[TypedGroup]) -> list[tuple[str, Callable[[Any, Any], None], Any]]:
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: typed groups check in check(), not __post_init__")
    out = []
    for fld in dataclasses.fields(cls):  # type: ignore[arg-type]
        if fld.default_factory is not dataclasses.MISSING or not fld.init:
            raise TypeError(f"{cls.__name__}.{fld.name}: typed fields take plain defaults")
        default = _NO_DEFAULT if fld.default is dataclasses.MISSING else fld.default
        slot = next(vars(k)[fld.name] for k in cls.__mro__ if fld.name in vars(k))
        out.append((fld.name, slot.__set__, default))
    return out


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(param,))
def typed(cls: C) -> C:
    """Make *cls* a frozen, slotted, keyword-only dataclass and bind its parameters.

    Args:
        cls: a subclass of :class:`TypedGroup` whose fields use :func:`param`.

    Returns:
        The dataclass (a new class object, because of ``slots=True``).
    """
    new: C = dataclasses.dataclass(frozen=True, slots=True, kw_only=True)(cls)  # type: ignore[assignment]
    params, index = _bind(new)
    new._PARAMS = params
    new._INDEX = index
    new._SEEN = {}
    new._CONDITIONS = tuple(b for b in params if b.spec.required_if)
    new._DEFAULTS = {b.name: b.default for b in params}
    new._REQUIRED = frozenset(b.name for b in params if b.required)
    new._FIELDS = tuple(_field_setters(new))
    hook_owner = next(k for k in new.__mro__ if "_decode_extras" in vars(k))
    new._HAS_EXTRAS_HOOK = hook_owner is not TypedGroup
    return new


@typed
class TypedResponse(TypedMessage):
    """A response: ``ERROR=`` first (0 = OK, else an Appendix E code), then data."""

    error: int = param("ERROR", Int(0, 9999), required=True)

    @classmethod
    def _enforce_required(cls, raw: Mapping[str, Any]) -> bool:
        value = raw.get("error")
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value) == 0
        return True

    @property
    def ok(self) -> bool:
        """True when the response reports success (``ERROR=0``)."""
        return self.error == 0
