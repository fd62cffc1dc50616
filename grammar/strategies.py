"""Hypothesis strategies for metadata messages, for our tests and for yours.

Conformance suites and integrators can fuzz their own code with the same
generators starwrs tests itself with::

    from hypothesis import given
    from starwrs.grammar.strategies import messages

    @given(messages())
    def test_my_consumer(message): ...

Every tree generated keeps the invariants of :mod:`starwrs.grammar.model`, so
``parse(serialize(m)) == m`` holds for all of them.  Text is drawn from all of
Unicode (no surrogates), so every escaped character, control characters, SOH and
white space at the edges all turn up.  Requires ``hypothesis`` (a test extra).
"""

from __future__ import annotations

from hypothesis import strategies as st
from starwrs.grammar.model import Group, Member, Message, Seq, Tagged, TList, Value

__all__ = ["acronyms", "groups", "messages", "texts", "values"]

_SPECIALS = "<>=,~\\\x01 \t\r\n"

#: text biased towards the characters that need escaping, plus all of Unicode: up to
#: three runs, each of specials (and two plain letters) or of any character.  A run is
#: one string draw; an alphabet built with ``one_of`` would cost a draw per character,
#: which made a message ~40 times slower to generate.
texts = st.lists(
    st.one_of(
        st.text(alphabet=_SPECIALS + "ab", max_size=4),
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=4),
    ),
    max_size=3,
).map("".join)
_nonempty = texts.filter(bool)
#: 1-4 ASCII letters, or no acronym at all
acronyms = st.one_of(
    st.none(),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=4
    ),
)

_EMPTY_MEMBER = Member(None, "")


def _members(values: st.SearchStrategy[Value]) -> st.SearchStrategy[tuple[Member, ...]]:
    member = st.builds(Member, st.one_of(st.none(), _nonempty), values)
    return st.lists(member, max_size=4).map(tuple).filter(lambda ms: ms != (_EMPTY_MEMBER,))


def _extend(values: st.SearchStrategy[Value]) -> st.SearchStrategy[Value]:
    group = _members(values).map(Group)
    tagged = st.builds(Tagged, _nonempty, group)
    piece = st.one_of(group, tagged)
    seq = st.builds(
        lambda ps, tail: Seq(tuple(ps) + ((tail,) if tail else ())),
        st.lists(piece, min_size=1, max_size=3),
        st.one_of(st.just(""), _nonempty),
    ).filter(lambda s: len(s.parts) >= 2)
    scalar: st.SearchStrategy[str | Group | Tagged | Seq] = st.one_of(texts, group, tagged, seq)
    tlist = st.lists(scalar, min_size=2, max_size=4).map(lambda items: TList(tuple(items)))
    return st.one_of(group, tagged, seq, tlist)


#: any value: text, group, tagged group, glued pieces or a ~ list
values: st.SearchStrategy[Value] = st.recursive(texts, _extend, max_leaves=12)
#: any group
groups = _members(values).map(Group)


def messages() -> st.SearchStrategy[Message]:
    """Any metadata message tree (acronym or none, nested members)."""
    return st.builds(Message, acronyms, _members(values))
