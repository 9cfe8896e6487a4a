"""The durable spool on a real folder: what was appended is read back in order with its position, a frame
torn by a crash is cut off on reopening, a damaged frame does not stop the reader, segments roll and are
released, the quota refuses a batch instead of losing one, and a wiped spool starts past old positions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from vigil.siem.spool import DAMAGED, FRAME, SUFFIX, BatchMeta, Spool, SpoolFull

META = BatchMeta(source="test", unit_id=1, format="json", transport="http", peer="127.0.0.1")
QUOTA = 64 * 1024 * 1024


def records(batch: int, count: int = 3, size: int = 0) -> list[bytes]:
    return [b'{"batch": %d, "n": %d, "pad": "%s"}' % (batch, n, b"x" * size) for n in range(count)]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SUFFIX))


def read_all(spool: Spool) -> list[list[bytes]]:
    return [batch.records for batch in spool.read(None)]


def test_batches_come_back_in_order_with_their_metadata(tmp_path: Path) -> None:
    spool = Spool(tmp_path, quota_bytes=QUOTA)
    positions = [spool.append(records(n), META) for n in range(5)]
    batches = spool.read(None)
    assert [batch.records for batch in batches] == [records(n) for n in range(5)]
    assert [batch.position for batch in batches] == positions
    assert batches[0].meta == META
    assert [batch.records for batch in spool.read(positions[2])] == [records(3), records(4)]
    assert spool.read(positions[-1]) == []
    spool.close()


def test_a_reopened_spool_holds_what_was_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path, quota_bytes=QUOTA)
    last = [spool.append(records(n), META) for n in range(3)][-1]
    spool.close()
    reopened = Spool(tmp_path, quota_bytes=QUOTA)
    assert read_all(reopened) == [records(n) for n in range(3)]
    assert reopened.end() == last
    assert reopened.append(records(3), META) > last
    reopened.close()


@pytest.mark.parametrize("cut", [1, FRAME.size - 1, FRAME.size + 5, -1])
def test_a_frame_torn_by_a_crash_is_cut_off_on_reopening(tmp_path: Path, cut: int) -> None:
    spool = Spool(tmp_path, quota_bytes=QUOTA)
    good_end = [spool.append(records(n), META) for n in range(2)][-1]
    spool.close()
    # What a crash in the middle of the third write leaves: part of a frame (never acknowledged).
    scratch = Spool(tmp_path / "scratch", quota_bytes=QUOTA)
    scratch.append(records(2), META)
    scratch.close()
    whole = segments(tmp_path / "scratch")[0].read_bytes()
    torn = whole[:cut] if cut > 0 else whole[:-1]
    path = segments(tmp_path)[0]
    with path.open("ab") as handle:
        handle.write(torn)
    reopened = Spool(tmp_path, quota_bytes=QUOTA)
    assert path.stat().st_size == good_end[1]
    assert read_all(reopened) == [records(0), records(1)]
    # The next batch follows the good ones directly, and reads back whole.
    reopened.append(records(7), META)
    assert read_all(reopened) == [records(0), records(1), records(7)]
    reopened.close()


def test_a_damaged_frame_does_not_stop_the_reader(tmp_path: Path) -> None:
    spool = Spool(tmp_path, quota_bytes=QUOTA, segment_bytes=64 * 1024)
    positions = [spool.append(records(n, count=10, size=3000), META) for n in range(6)]
    assert positions[0][0] < positions[-1][0], "the batches should span several segments"
    spool.close()
    first = segments(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[positions[0][1] + FRAME.size + 40] ^= 0xFF  # inside the second batch of the first segment
    first.write_bytes(bytes(data))
    reopened = Spool(tmp_path, quota_bytes=QUOTA, segment_bytes=64 * 1024)
    batches = reopened.read(None)
    reopened.close()
    kept = [batch.records[0] for batch in batches if batch.records]
    # The damaged batch is skipped (an empty batch moves the reader past it); every other batch is kept.
    assert kept == [records(n, count=10, size=3000)[0] for n in (0, 2, 3, 4, 5)]
    skipped = [batch for batch in batches if not batch.records]
    assert len(skipped) == 1 and skipped[0].meta.source == DAMAGED
    assert [batch.position for batch in batches] == sorted(batch.position for batch in batches)


def test_damage_mid_segment_keeps_the_batches_after_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path, quota_bytes=QUOTA, segment_bytes=1024 * 1024)
    positions = [spool.append(records(n, count=5, size=500), META) for n in range(5)]
    spool.close()
    only = segments(tmp_path)[0]
    data = bytearray(only.read_bytes())
    data[positions[1][1] + FRAME.size + 10] ^= 0xFF  # inside the third batch, in the newest segment
    only.write_bytes(bytes(data))
    reopened = Spool(tmp_path, quota_bytes=QUOTA, segment_bytes=1024 * 1024)  # recovery must not cut it short
    assert only.stat().st_size == positions[-1][1]
    batches = reopened.read(None)
    reopened.close()
    assert [batch.records[0] for batch in batches if batch.records] == [
        records(n, count=5, size=500)[0] for n in (0, 1, 3, 4)]
    assert batches[-1].position == positions[-1]


def test_segments_roll_and_are_released_once_stored(tmp_path: Path) -> None:
    spool = Spool(tmp_path, quota_bytes=QUOTA, segment_bytes=64 * 1024)
    positions = [spool.append(records(n, count=10, size=2000), META) for n in range(12)]
    numbers = sorted({segment for segment, _ in positions})
    assert len(numbers) >= 3 and len(segments(tmp_path)) == len(numbers)
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # Everything up to a batch in the third segment is stored: the first two segments go.
    upto = next(position for position in positions if position[0] == numbers[2])
    assert spool.release(upto) == 2
    assert [int(path.stem) for path in segments(tmp_path)] == numbers[2:]
    later = [batch.position for batch in spool.read(upto)]
    assert later == [position for position in positions if position > upto]
    assert spool.release(None) == 0
    spool.close()


def test_a_full_quota_refuses_the_batch_and_keeps_the_others(tmp_path: Path) -> None:
    quota = 1024 * 1024
    spool = Spool(tmp_path, quota_bytes=quota, segment_bytes=64 * 1024)
    accepted = []
    with pytest.raises(SpoolFull) as refused:
        for n in range(1000):
            accepted.append(spool.append(records(n, count=10, size=2000), META))
    assert refused.value.status == 503 and refused.value.retry_after > 0
    assert spool.used_bytes <= quota
    assert len(read_all(spool)) == len(accepted)
    # Once the pipeline has stored (and released) the older segments, batches are taken again.
    spool.release(accepted[-1])
    spool.append(records(9999), META)
    assert read_all(spool)[-1] == records(9999)
    spool.close()


def test_a_closed_spool_refuses_with_spool_full(tmp_path: Path) -> None:
    spool = Spool(tmp_path, quota_bytes=QUOTA)
    spool.close()
    with pytest.raises(SpoolFull):
        spool.append(records(0), META)


def test_a_wiped_spool_starts_past_the_stored_position(tmp_path: Path) -> None:
    # The store recorded segment 41 as stored; the spool folder was deleted meanwhile.
    spool = Spool(tmp_path / "wiped", quota_bytes=QUOTA, first_segment=42)
    position = spool.append(records(0), META)
    assert position[0] == 42 and position > (41, 10**9)
    spool.close()
    # A spool with segments ignores first_segment: its own files say where it is.
    reopened = Spool(tmp_path / "wiped", quota_bytes=QUOTA, first_segment=1)
    assert reopened.append(records(1), META)[0] == 42
    reopened.close()


def test_concurrent_writers_get_distinct_ordered_positions(tmp_path: Path) -> None:
    spool = Spool(tmp_path, quota_bytes=QUOTA, segment_bytes=64 * 1024)
    positions: list[tuple[int, int]] = []
    lock = threading.Lock()

    def writer(first: int) -> None:
        for n in range(first, first + 25):
            position = spool.append(records(n, size=500), META)
            with lock:
                positions.append(position)

    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batches = spool.read(None, max_records=10**6)
    assert len(batches) == 100 and sorted(positions) == [batch.position for batch in batches]
    spool.close()
