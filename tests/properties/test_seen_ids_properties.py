"""The duplicate check's compact set answers exactly as a set of the ids would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from omniconsole.engine.seen_ids import SeenIds

#: an operation: add an id, ask about an id, or a checkpoint commits
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 60)),
        st.tuples(st.just("ask"), st.integers(0, 60)),
        st.tuples(st.just("commit"), st.just(0)),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(
    ops=ops, buckets=st.integers(1, 8), window=st.integers(1, 6), seeded=st.sets(st.integers(0, 60))
)
def test_the_compact_set_answers_exactly_whatever_the_digests_collide(
    ops: list[tuple[str, int]], buckets: int, window: int, seeded: set[int]
) -> None:
    # Few digests for many ids: most lookups hit a digest another id put there. The
    # store knows only what a checkpoint has committed, as the real one does.
    store = {f"m{i}" for i in seeded}
    applied = set(store)
    asked: list[str] = []

    def confirm(mid: str) -> bool:
        asked.append(mid)
        return mid in store

    seen = SeenIds(confirm, digest=lambda mid: int(mid[1:]) % buckets, window=window)
    seen.seed(store)
    for op, n in ops:
        mid = f"m{n}"
        if op == "add":
            if mid not in seen:  # the drivers add only what they have not seen
                assert mid not in applied
                seen.add(mid)
                applied.add(mid)
            else:
                assert mid in applied
        elif op == "ask":
            assert (mid in seen) == (mid in applied)
        else:
            store |= applied
            seen.committed()
    assert all((f"m{n}" in seen) == (f"m{n}" in applied) for n in range(61))


def test_a_table_of_many_ids_grows_and_finds_each_without_asking_the_store() -> None:
    store: set[str] = set()
    asked: list[str] = []

    def confirm(mid: str) -> bool:
        asked.append(mid)
        return mid in store

    seen = SeenIds(confirm, window=1000)
    ids = [f"msg-{i:07d}" for i in range(50_000)]
    for mid in ids[::2]:
        seen.add(mid)
        store.add(mid)
        seen.committed()  # the exact generations turn over: older ids are digests only
    assert len(seen) == 25_000
    assert all(mid in seen for mid in ids[::2])
    assert not any(mid in seen for mid in ids[1::2])
    # 64-bit digests of distinct ids: the store was asked only about ids it holds
    assert asked and set(asked) <= store
