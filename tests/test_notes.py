import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from live.music.notes import (DURATION, EOS, MAX_NOTES_PER_STEP, ONSET, PAD, PITCH, SOS, clip_to_segment, dedupe,
                        grid_to_notes, join_segments, make_notes, notes_to_grid, notes_to_pr_mat, pr_mat_to_notes,
                        split_segments, transpose_notes)


@st.composite
def segment_notes(draw, max_notes=60):
    """Valid segment notes: onsets 0..31, durations within the segment, unique (onset, pitch)."""
    cells = draw(st.sets(st.tuples(st.integers(0, 31), st.integers(0, 127)), max_size=max_notes))
    rows = []
    for onset, pitch in sorted(cells):
        duration = draw(st.integers(1, 32 - onset))
        rows.append((onset, pitch, duration, draw(st.integers(1, 127))))
    return make_notes(rows) if rows else make_notes([]).reshape(0, 4)


def per_step_limit(notes):
    return notes[np.concatenate([np.arange(c) for c in np.bincount(notes[:, ONSET], minlength=32)])
                 < MAX_NOTES_PER_STEP] if len(notes) else notes


@settings(max_examples=200, deadline=None)
@given(segment_notes())
def test_grid_round_trip_is_exact(notes):
    kept = per_step_limit(notes)
    back = grid_to_notes(notes_to_grid(notes), velocity=0)
    assert np.array_equal(back[:, :3], kept[:, :3])


@settings(max_examples=200, deadline=None)
@given(segment_notes())
def test_pr_mat_round_trip_is_exact(notes):
    back = pr_mat_to_notes(notes_to_pr_mat(notes), velocity=0)
    assert np.array_equal(back[:, :3], notes[:, :3])


def test_grid_layout_matches_the_spec_example():
    grid = notes_to_grid(make_notes([(0, 87, 2), (0, 40, 6)]))
    assert grid.shape == (32, 16, 6) and grid.dtype == np.int64
    assert grid[0, :4].tolist() == [[SOS, 2, 2, 2, 2, 2], [40, 0, 0, 1, 0, 1], [87, 0, 0, 0, 0, 1],
                                    [EOS, 2, 2, 2, 2, 2]]
    assert (grid[0, 4:, 0] == PAD).all()
    assert grid[1, :2, 0].tolist() == [SOS, EOS]


def test_more_than_14_onsets_keep_the_lowest():
    notes = make_notes([(0, 40 + i, 1) for i in range(20)])
    grid = notes_to_grid(notes)
    assert grid[0, 1:15, 0].tolist() == list(range(40, 54))
    assert grid[0, 15, 0] == EOS
    assert len(grid_to_notes(grid)) == 14


def test_grid_to_notes_stops_at_eos_and_skips_sos():
    grid = notes_to_grid(make_notes([(5, 60, 3)]))
    grid[5, 3, 0] = 70
    grid[5, 2, 0] = EOS
    grid[6, 1, 0] = SOS
    assert grid_to_notes(grid)[:, :3].tolist() == [[5, 60, 3]]


def test_durations_are_cut_at_segment_end_and_cells_merge():
    notes = make_notes([(30, 60, 8), (3, 50, 2), (3, 50, 6)])
    pr = notes_to_pr_mat(notes)
    assert pr[30, 60] == 2 and pr[3, 50] == 6 and np.count_nonzero(pr) == 2


def test_transpose_never_wraps():
    notes = make_notes([(0, 2, 1), (0, 60, 1), (0, 125, 1)])
    assert transpose_notes(notes, -6)[:, PITCH].tolist() == [54, 119]
    assert transpose_notes(notes, 5)[:, PITCH].tolist() == [7, 65]
    assert transpose_notes(notes, 0)[:, PITCH].tolist() == [2, 60, 125]


def test_split_and_join_segments():
    notes = make_notes([(0, 60, 4), (20, 62, 20), (40, 64, 30)])
    segs = split_segments(notes, 64, hop=32)
    assert len(segs) == 2
    assert segs[0][:, :3].tolist() == [[0, 60, 4], [20, 62, 12]]
    assert segs[1][:, :3].tolist() == [[8, 64, 24]]
    joined = join_segments(segs)
    assert joined[:, ONSET].tolist() == [0, 20, 40]
    assert len(split_segments(notes, 64)) == 3


def test_dedupe_and_clip():
    notes = make_notes([(0, 60, 2, 10), (0, 60, 5, 90), (33, 60, 1, 1)])
    assert dedupe(notes)[:, [DURATION]].ravel().tolist() == [5, 1]
    assert clip_to_segment(notes)[:, ONSET].tolist() == [0, 0]
