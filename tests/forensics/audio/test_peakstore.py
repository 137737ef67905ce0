"""PeakStore: the reference peaks kept for verification — round trip, damage, lifecycle."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from forensics.audio.errors import AudioIndexError
from forensics.audio.index import AudioIndex
from forensics.audio.landmarks import Peaks
from forensics.audio.peakstore import SCHEMA, PeakStore, decode_peaks, encode_peaks
from tests.forensics.audio.conftest import SR, synth_music, write_wav


def test_round_trip_keeps_the_resolution_verification_needs() -> None:
    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0, 2_000_000, 5000))  # ~9 h of frames
    lf = rng.uniform(0, 46, 5000)
    back = decode_peaks(*encode_peaks(Peaks(t, lf, np.ones(5000), 2_000_001)), frames=2_000_001)
    assert np.max(np.abs(back.t - t)) <= 1 / 32 + 1e-9  # sixteenths of a frame
    assert np.max(np.abs(back.lf - lf)) <= 1 / 512 + 1e-9  # 1/256 semitone
    assert back.frames == 2_000_001 and len(back) == 5000


def test_damaged_row_is_refused() -> None:
    t, lf = encode_peaks(Peaks(np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.ones(2), 5))
    with pytest.raises(AudioIndexError, match="damaged"):
        decode_peaks(t[:-4], lf, 5)
    with pytest.raises(AudioIndexError, match="damaged"):
        decode_peaks(t[:-1], lf, 5)


def test_store_put_get_replace_and_drop() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA + "CREATE TABLE works (idx INTEGER PRIMARY KEY, removed INTEGER NOT NULL);")
    store = PeakStore(db, cache_size=1)
    one = Peaks(np.array([1.0]), np.array([2.0]), np.ones(1), 3)
    two = Peaks(np.array([5.0, 6.0]), np.array([7.0, 8.0]), np.ones(2), 9)
    db.executemany("INSERT INTO works (idx, removed) VALUES (?, ?)", [(1, 0), (2, 1)])
    store.put(1, one)
    store.put(2, two)
    got1, got2 = store.get(1), store.get(2)
    assert got1 is not None and got1.t.tolist() == [1.0]
    assert got2 is not None and got2.lf.tolist() == [7.0, 8.0]
    store.put(1, two)  # replacing invalidates the cached copy
    again = store.get(1)
    assert again is not None and again.t.tolist() == [5.0, 6.0]
    assert store.drop_removed() == 1
    assert store.get(2) is None and store.get(1) is not None
    assert store.get(99) is None


def test_index_keeps_one_peak_row_per_live_work(tmp_path: Path) -> None:
    files = [write_wav(tmp_path / f"s{i}.wav", synth_music(300 + i, 12.0)) for i in range(3)]
    d = tmp_path / "idx"
    with AudioIndex(d) as index:
        for i, f in enumerate(files):
            index.add(f"w{i}", f)
        index.add("w0", files[1])  # re-registering replaces the earlier peaks
        index.remove("w2")

    def rows() -> int:
        with sqlite3.connect(d / "audio.sqlite") as db:
            live = db.execute(
                "SELECT COUNT(*) FROM peaks JOIN works USING (idx) WHERE works.removed = 0"
            ).fetchone()[0]
            total = db.execute("SELECT COUNT(*) FROM peaks").fetchone()[0]
        assert live == total
        return int(total)

    assert rows() == 2
    with AudioIndex(d) as index:
        index.compact()
        assert rows() == 2
        # matches still verify after compaction (peaks rows follow the surviving works)
        clip = write_wav(tmp_path / "q.wav", synth_music(301, 12.0)[SR * 3 : SR * 8])
        assert sorted(m.work_id for m in index.identify(clip, top_k=3)) == ["w0", "w1"]


def test_fingerprint_without_peaks_gets_its_anchor_peaks(tmp_path: Path) -> None:
    from forensics.audio.index import Fingerprint, make_fingerprint

    rng = np.random.default_rng(6)
    src = Peaks(np.sort(rng.uniform(0, 600, 120)), rng.uniform(0, 45, 120), np.ones(120), 600)
    from forensics.audio.landmarks import hash_peaks

    h, t = hash_peaks(src)
    fp = make_fingerprint(h, t, 600 * 0.016)
    bare = Fingerprint(fp.hashes, fp.frames, fp.duration, fp.digest)  # no peaks
    with AudioIndex(tmp_path / "idx") as index:
        index.add_fingerprint("w", bare)
        assert index.work_ids() == ["w"]  # (reloads the catalogue)
        stored = index.reference_peaks("w")
    assert stored is not None and len(stored) > 0
    assert set(np.rint(stored.t).astype(int)) <= set(fp.frames.astype(int).tolist())
