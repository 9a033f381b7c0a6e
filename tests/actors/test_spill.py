"""Changed profiles evicted before their checkpoint wait on disk (`actors/spill.py`).

What a customer would notice if it went wrong: a profile brought back with another
customer's state, or stored with a changed byte, or a journey instance row lost. The
spill must answer exactly as the dictionary and list it replaced did.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from omniconsole.actors.spill import Evicted, EvictedProfiles, SpillFile
from omniconsole.domain.records import InstanceRecord

CUSTOMERS = st.sampled_from(["c-1", "c-2", "c-3", "c-\x00", "c-\ud800", "ç-é"])
TEXT = st.none() | st.text(max_size=40)  # lone surrogates and NUL included
#: states around the 4 KB a record is first read with, and a tail limit of 256 bytes
#: below: records on disk and still in memory, read in one call or two
STATES = st.binary(max_size=9000)
ROWS = st.lists(
    st.builds(
        InstanceRecord,
        CUSTOMERS,
        st.text(max_size=12),
        st.integers(-(2**62), 2**62),
        st.text(max_size=20),
        st.sampled_from(["active", "converted", "completed", "expired"]),
        TEXT,
        TEXT,
        TEXT,
    ),
    max_size=3,
)
PUT = st.tuples(st.just("put"), CUSTOMERS, st.builds(Evicted, TEXT, TEXT, TEXT, STATES), ROWS)
POP = st.tuples(st.just("pop"), CUSTOMERS)
DRAIN = st.tuples(st.just("drain"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(PUT, POP, DRAIN), max_size=40))
def test_evicted_profiles_answer_as_a_dictionary_and_a_list_of_rows_do(
    operations: list[tuple[object, ...]],
) -> None:
    spilled = EvictedProfiles(tail_limit=256)
    profiles: dict[str, Evicted] = {}
    rows: list[InstanceRecord] = []
    try:
        for operation in operations:
            if operation[0] == "put":
                _, customer, evicted, its_rows = operation
                assert isinstance(customer, str) and isinstance(evicted, Evicted)
                assert isinstance(its_rows, list)
                profiles.pop(customer, None)  # put again: written again, last in order
                profiles[customer] = evicted
                rows.extend(its_rows)
                spilled.put(customer, evicted, its_rows)
            elif operation[0] == "pop":
                customer = operation[1]
                assert isinstance(customer, str)
                assert spilled.pop(customer) == profiles.pop(customer, None)
            else:
                assert list(spilled.drain()) == list(profiles.items())
                assert list(spilled.drain_rows()) == rows
                profiles.clear()
                rows.clear()
            assert len(spilled) == len(profiles)
            assert sorted(spilled) == sorted(profiles)
        assert list(spilled.drain_rows()) == rows
        assert list(spilled.drain()) == list(profiles.items())
        assert len(spilled) == 0 and list(spilled.drain()) == []
    finally:
        spilled.close()


def test_a_spill_file_reads_back_every_record_after_megabytes_were_written() -> None:
    spill = SpillFile()
    try:
        records = [bytes([i % 251]) * (i * 37 % 20_000) for i in range(400)]  # ~4 MB
        offsets = [spill.append(record) for record in records]
        assert [spill.read(offset) for offset in offsets] == records
        assert list(spill.records()) == list(zip(offsets, records, strict=True))
        spill.clear()
        assert len(spill) == 0 and list(spill.records()) == []
        assert spill.read(spill.append(b"after")) == b"after"
    finally:
        spill.close()
