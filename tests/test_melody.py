"""Reading a melody for 填词: numbered notation (简谱), MIDI files, phrases, repeats, and
writing the tune back with its lyric. Small and fast: MIDI fixtures are built with mido."""

from __future__ import annotations

import json

import pytest

from lyricgen.craft import melody as melody_mod
from lyricgen.craft.jianpu import parse_jianpu
from lyricgen.craft.melody import MAX_PHRASE, MAX_SYLLABLES, Melody
from lyricgen.craft.melody_io import load_melody
from lyricgen.errors import MelodyError

from .conftest import fresh_python

mido = pytest.importorskip("mido")


def pitches(m: Melody) -> list[int]:
    return [n.pitch for s in m.syllables() for n in s.notes]


def labels(m: Melody) -> list[str]:
    return [s.label for s in m.syllables()]


# ---------------------------------------------------------------------------------------
# numbered notation


def test_notes_keys_octaves_accidentals_and_durations():
    m = parse_jianpu("1=D 3/4 tempo=80 | 1 2 #4 | b7 1' 5, | 1'' 6,, 3 |")
    assert (m.key, m.tonic, m.beats_per_bar, m.tempo) == ("1=D", 62, 3.0, 80.0)
    assert pitches(m) == [62, 64, 68, 72, 74, 57, 86, 47, 66]
    assert labels(m) == ["1", "2", "#4", "b7", "1'", "5,", "1''", "6,,", "3"]
    assert [n.onset for n in m.notes()] == list(range(9))
    # the keys: 1=C is 60 ... 1=B 71, flats and sharps on either side of the letter
    for key, tonic, name in [("1=C", 60, "1=C"), ("1=B", 71, "1=B"), ("1=bE", 63, "1=bE"),
                             ("1=Eb", 63, "1=bE"), ("1=F#", 66, "1=#F"), ("1=bB", 70, "1=bB")]:  # fmt: skip
        m = parse_jianpu(f"{key} 1 2 3")
        assert (m.tonic, m.key, pitches(m)[0]) == (tonic, name, tonic)
    # ♩=, 4= and the default tempo
    assert parse_jianpu("♩=66 1 2 3").tempo == 66.0
    assert parse_jianpu("4=100 1 2 3").tempo == 100.0
    assert parse_jianpu("1 2 3").tempo == 120.0 and parse_jianpu("6/8 1").beats_per_bar == 3.0


def test_a_key_change_between_bars():
    m = parse_jianpu("1=C | 1 2 3 - | 1=G | 1 2 3 - |")
    assert pitches(m) == [60, 62, 64, 67, 69, 71]
    assert m.key == "1=C" and m.tonic == 60  # the melody's key is the first one


def test_durations_dots_underlines_and_dashes():
    m = parse_jianpu("5 - - q5 5_ s5 5__ 5. q5. 5,. 1'. 5.. 0 d5")
    durations = [n.duration for n in m.notes()]
    assert durations == [3.0, 0.5, 0.5, 0.25, 0.25, 1.5, 0.75, 1.5, 1.5, 1.75, 0.125]
    onsets = [n.onset for n in m.notes()]
    assert onsets == [0, 3, 3.5, 4, 4.25, 4.5, 6, 6.75, 8.25, 9.75, 12.5]
    # a dot after an octave mark (and before it) dots the note, never moves its octave
    assert pitches(m)[7:9] == [55, 72]
    assert labels(m)[7:9] == ["5,", "1'"]
    assert parse_jianpu("5., 1 1").notes()[0] == parse_jianpu("5,. 1 1").notes()[0]


def test_slurs_and_ties_put_notes_on_one_syllable():
    m = parse_jianpu("1 (2 3) 5~6 (5 - 3)~2 1")
    assert labels(m) == ["1", "(2 3)", "(5 6)", "(5 3 2)", "1"]
    assert m.lengths() == [5]
    slur = m.syllables()[3]
    assert (slur.first_pitch, slur.last_pitch, slur.onset, slur.duration) == (67, 62, 5, 4)
    # the step into a syllable comes from the previous syllable's LAST note
    assert m.steps() == [[None, 2, 3, -2, -2]]


def test_phrase_marks_rests_and_long_notes():
    # `/` cuts; a rest cuts; 5 - (two beats, twice the median of one) ends a phrase
    m = parse_jianpu("1 2 3 / 4 5 6 0 1 2 3 5 - 6 5 4 3")
    assert m.lengths() == [3, 3, 4, 4]
    assert [p.rest_after for p in m.phrases] == [0, 1.0, 0, 0]
    # a long note ends a phrase only once it has 3 syllables: 1 - opens this one
    assert parse_jianpu("1 - 2 3 4 5").lengths() == [5]
    # and only when twice the median: in a tune of half notes, a half note ends nothing
    assert parse_jianpu("1 - 2 - 3 - 4 - 5 - 6 -").lengths() == [6]
    # a trailing rest is the last phrase's rest_after
    assert parse_jianpu("1 2 3 0 0").phrases[-1].rest_after == 2.0


def test_short_phrases_join_a_neighbour_unless_marked():
    # 1 2 | rest | -> joins the next phrase; at the end, joins the previous one
    assert parse_jianpu("1 2 0 3 4 5 6").lengths() == [6]
    assert parse_jianpu("1 2 3 4 0 5 6").lengths() == [6]
    assert parse_jianpu("1 0 2 0 3 4 5").lengths() == [5]
    # an explicit / keeps a short phrase (and keeps the one after it from joining back)
    assert parse_jianpu("1 2 / 3 4 5 6").lengths() == [2, 4]
    assert parse_jianpu("1 2 3 4 / 5 6").lengths() == [4, 2]
    assert parse_jianpu("1 / 2 3 4 0 5").lengths() == [1, 4]


def test_steps_across_phrases():
    m = parse_jianpu("1 3 5 / 1' 6 5 / (4 3) 2 1")
    assert m.steps() == [[None, 4, 3], [5, -3, -2], [-2, -2, -2]]  # 3 -> 2, not 4 -> 2
    assert [p.direction for p in m.phrases] == [1, -1, -1]
    assert parse_jianpu("1 2 1").phrases[0].direction == 0


def test_repeated_phrases_exact_and_transposed():
    m = parse_jianpu("1 2 3 1 / 3 4 5 - / 1 2 3 1 / 2 3 #4 2 / 3 4 5 /")
    assert [p.repeat_of for p in m.phrases] == [None, None, 0, 0, 1]
    assert m.phrases[3].syllables[2].label == "#4"
    # the same pitches but a different count of syllables is no repeat
    assert parse_jianpu("1 2 3 / 1 2 3 3").phrases[1].repeat_of is None


def test_regroup_and_its_error():
    m = load_melody(jianpu="1 2 3 4 5 6 5 4 3 2 1 0 1 2 3 4 5 6 5 4 3 2 1")
    assert m.lengths() == [11, 11] and m.phrases[1].repeat_of == 0
    r = m.regroup([3, 8, 4, 7])
    assert r.lengths() == [3, 8, 4, 7]
    assert labels(r) == labels(m) and r.steps()[1][0] == 1
    assert r.phrases[1].rest_after == 1.0 and r.phrases[0].rest_after == 0
    assert load_melody(jianpu="1 2 3 4 5 6 5 4", phrases=[3, 5]).lengths() == [3, 5]
    with pytest.raises(MelodyError, match="--phrases adds up to 20 notes but the melody has 22 syllables"):  # fmt: skip
        m.regroup([10, 10])
    with pytest.raises(MelodyError, match="at least one note"):
        m.regroup([22, 0])


def test_a_long_phrase_is_cut_at_its_longest_middle_note():
    m = parse_jianpu(" ".join(["1 2 3"] * 10))  # 30 notes, no rest, no long note
    assert m.lengths() == [15, 15]
    notes = ["1"] * 40
    notes[17] = "5."  # the longest note in the middle third
    m = parse_jianpu(" ".join(notes))
    assert m.lengths() == [18, 22] and max(m.lengths()) <= MAX_PHRASE
    with pytest.raises(MelodyError, match=f"the melody has 401 notes; at most {MAX_SYLLABLES}"):
        parse_jianpu("q1 " * 401)


def test_notation_errors_name_the_line_and_column():
    with pytest.raises(MelodyError) as e:
        parse_jianpu("1=C 1 2 3\n5 6 7 x 1")
    assert str(e.value) == (
        "--jianpu: line 2, column 7: unknown symbol 'x' (notes are 1-7, 0 is a rest; "
        "see docs/MELODY.md)"
    )
    with pytest.raises(MelodyError, match=r"song.txt: line 1, column 3: unknown symbol '8'"):
        parse_jianpu("1 8", source="song.txt")
    with pytest.raises(MelodyError, match=r"column 3: unknown symbol 'tempo'"):
        parse_jianpu("1 tempo 2")
    cases = [
        ("", "--jianpu: the melody has no notes"),
        ("  | 0 0 - |", "the melody has no notes"),
        ("1 (2 3", "line 1, column 3: this \\( is never closed"),
        ("1 2) 3", "column 4: \\) closes a slur, but no \\( opened one"),
        ("- 1", "column 1: - holds a note"),
        ("1 ~ 0", "column 3: ~ joins two notes, but a rest follows it"),
        ("(1 0)", "a rest inside a slur"),
        ("55", "column 2: write notes apart"),
        ("1=H 1", "'1=H' is not a key"),
        ("1 2 3/4", "column 5: 3/4: a time signature goes at the start of a bar"),
        ("4/4 | 1 2 3 4 | 1 2 3 4 5 | 1 2 3 4 |", "column 27: bar 2 holds 5 beats but 4/4 takes 4"),
        ("5'', 1", "use one of them"),
    ]
    for text, message in cases:
        with pytest.raises(MelodyError, match=message):
            parse_jianpu(text)


def test_bars_are_optional_and_checked_only_with_a_time_signature():
    # a pickup bar and a short closing bar are fine
    m = parse_jianpu("3/4 5 | 1 - 3 | 5 - - | 1 - |")
    assert m.lengths() == [5] and m.beats_per_bar == 3.0
    assert parse_jianpu("| 1 2 | 3 4 5 6 7 |").lengths() == [7]  # no signature: unchecked
    # a note held over the bar line with -
    assert parse_jianpu("4/4 1 2 3 4 | 5 - - - | - 3 2 1 |").notes()[4].duration == 5.0


def test_full_width_marks_and_a_notation_file(tmp_path):
    m = parse_jianpu("1=C （1 2） ３ ｜ 5～6 ／ 1 2 3")
    assert labels(m) == ["(1 2)", "3", "(5 6)", "1", "2", "3"] and m.lengths() == [3, 3]
    path = tmp_path / "tune.txt"
    path.write_text("1=G 4/4\n| 1 2 3 1 | 1 2 3 1 / |\n| 3 4 5 - | 3 4 5 - |\n", encoding="utf-8")
    m = load_melody(path)
    assert m.source == str(path) and m.tonic == 67 and m.lengths() == [8, 3, 3]
    assert [p.repeat_of for p in m.phrases] == [None, None, 1]
    path.write_text("1 2 x\n", encoding="utf-8")
    with pytest.raises(MelodyError, match=f"^{path}: line 1, column 5: unknown symbol 'x'"):
        load_melody(path)
    with pytest.raises(MelodyError, match="no such file"):
        load_melody(tmp_path / "missing.txt")
    with pytest.raises(MelodyError, match="give the tune once"):
        load_melody(path, "1 2 3")
    with pytest.raises(MelodyError, match="give the tune once"):
        load_melody()
    path.write_bytes(b"\xff\xfe1 2 3")
    with pytest.raises(MelodyError, match="neither a MIDI file nor UTF-8 text"):
        load_melody(path)
    with pytest.raises(MelodyError, match="--track picks a track of a MIDI file"):
        load_melody(jianpu="1 2 3", track=1)


def test_to_dict_is_json():
    m = parse_jianpu("1=D tempo=90 1 (2 3) q5 q5 - 0 1 2 3")
    d = json.loads(json.dumps(m.to_dict()))
    assert (d["key"], d["tonic"], d["tempo"], d["lengths"]) == ("1=D", 62, 90.0, [4, 3])
    s = d["phrases"][0]["syllables"][1]
    assert s == {"label": "(2 3)", "pitches": [64, 66], "onsets": [1, 2], "durations": [1, 1]}
    assert [x["durations"] for x in d["phrases"][0]["syllables"][2:]] == [[0.5], [1.5]]
    assert d["phrases"][0]["rest_after"] == 1 and d["phrases"][1]["repeat_of"] is None


# ---------------------------------------------------------------------------------------
# MIDI


def write_mid(path, tracks, *, type=1, tempo=None, time=None, key=None, tpb=480,
              off="note_off"):  # fmt: skip
    """A MIDI file: `tracks` is a list of (name, [(onset, duration, pitch[, channel])]) in
    beats; the first track also carries the tempo, time and key signatures."""
    mid = mido.MidiFile(type=type, ticks_per_beat=tpb)
    for k, (name, notes) in enumerate(tracks):
        events = []
        if name:
            events.append((0, 0, mido.MetaMessage("track_name", name=name)))
        if k == 0:
            if tempo:
                events.append((0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo))))
            if time:
                events.append((0, 0, mido.MetaMessage("time_signature", numerator=time[0],
                                                      denominator=time[1])))  # fmt: skip
            if key:
                events.append((0, 0, mido.MetaMessage("key_signature", key=key)))
        for n in notes:
            on, dur, pitch = n[:3]
            ch = n[3] if len(n) > 3 else 0
            a, b = round(on * tpb), round((on + dur) * tpb)
            events.append((a, 2, mido.Message("note_on", note=pitch, velocity=90, channel=ch)))
            if off == "note_off":
                events.append((b, 1, mido.Message("note_off", note=pitch, channel=ch)))
            else:
                events.append((b, 1, mido.Message("note_on", note=pitch, velocity=0, channel=ch)))
        events.sort(key=lambda e: (e[0], e[1]))
        trk = mido.MidiTrack()
        tick = 0
        for at, _, msg in events:
            trk.append(msg.copy(time=at - tick))
            tick = at
        mid.tracks.append(trk)
    mid.save(path)
    return path


def line(pitches, start=0.0, dur=1.0, gap_after=None):
    """Consecutive notes of `dur` beats; a gap of `gap_after[i]` beats after note i."""
    out, t = [], start
    for i, p in enumerate(pitches):
        out.append((t, dur, p))
        t += dur + (gap_after or {}).get(i, 0)
    return out


def chords(n, top=(67, 69, 72, 71)):
    return [(t, 1.0, p) for t in range(n) for p in (top[t % 4] - 7, top[t % 4] - 3, top[t % 4])]


VOCAL = [64, 64, 65, 67, 67, 65, 64, 62, 60, 60, 62, 64, 64, 62, 62]


def test_two_tracks_pick_the_vocal_line(tmp_path):
    path = write_mid(
        tmp_path / "song.mid",
        [("", []), ("Piano", chords(16)), ("Vocal", line(VOCAL, gap_after={7: 1.0})),
         ("Bass", line([36, 43, 40, 43] * 4))],
        tempo=90, time=(3, 4), key="C", off="note_on",
    )  # fmt: skip
    m = load_melody(path)
    assert m.track == 3 and m.source == str(path)
    assert pitches(m) == VOCAL
    assert m.lengths() == [8, 7]  # the one-beat gap is a rest
    assert m.phrases[0].rest_after == 1.0
    assert (m.tempo, m.beats_per_bar, m.key, m.tonic) == (90.0, 3.0, "1=C", 60)
    assert labels(m)[:4] == ["3", "3", "4", "5"]
    assert m.steps()[1][0] == 60 - 62
    # --track reads another one; the chord track gives its top line
    bass = load_melody(path, track=4)
    assert pitches(bass)[:4] == [36, 43, 40, 43] and labels(bass)[0] == "1,,"
    piano = load_melody(path, track=2)
    assert pitches(piano)[:4] == [67, 69, 72, 71]


def test_explicit_polyphonic_track_gives_its_skyline(tmp_path):
    notes = [(0, 2, 60), (0, 2, 64), (0, 1, 67), (1, 1, 65), (2, 1, 62), (2, 1, 59), (3, 1, 64)]
    path = write_mid(tmp_path / "p.mid", [("Piano", notes)])
    m = load_melody(path, track=1)
    assert [(n.onset, n.duration, n.pitch) for n in m.notes()] == [
        (0, 1, 67), (1, 1, 65), (2, 1, 62), (3, 1, 64)
    ]  # fmt: skip
    # held notes are cut at the next onset
    path = write_mid(tmp_path / "q.mid", [("Piano", [(0, 4, 72), (0, 4, 60), (2, 2, 64)])])
    m = load_melody(path, track=1)
    assert [(n.onset, n.duration, n.pitch) for n in m.notes()] == [(0, 2, 72), (2, 2, 64)]


def test_a_melody_with_a_few_overlaps_keeps_the_top_note(tmp_path):
    notes = line([67, 69, 71, 72] * 5)  # 20 notes
    notes.append((4.0, 1.0, 64))  # one double stop: 2 of 21 notes overlap (under 10%)
    notes.append((8.9, 1.0, 72))  # legato: runs 0.1 beat into the next note, no overlap
    notes = [n for n in notes if n[0] != 9.0]
    path = write_mid(tmp_path / "m.mid", [("Lead", notes), ("Pad", chords(20))])
    m = load_melody(path)
    assert m.track == 1 and len(m.notes()) == 20
    assert m.notes()[4].pitch == 67 and m.notes()[8].duration == pytest.approx(0.9)


def test_highest_line_wins_and_ties_go_to_more_notes(tmp_path):
    path = write_mid(tmp_path / "a.mid", [("Low", line([60, 62, 64])), ("High", line([72, 74]))])
    assert load_melody(path).track == 2
    path = write_mid(tmp_path / "b.mid", [("A", line([60, 67, 62])), ("B", line([60, 67, 62, 62]))])
    assert load_melody(path).track == 2


def test_drums_only_and_no_notes(tmp_path):
    drums = [(t, 0.5, 36, 9) for t in range(8)]
    path = write_mid(tmp_path / "drums.mid", [("Kit", drums)])
    with pytest.raises(MelodyError, match=r"drums.mid has only drums \(channel 10\)"):
        load_melody(path)
    with pytest.raises(MelodyError, match=r"--track 1: track 1 'Kit' plays only drums"):
        load_melody(path, track=1)
    path = write_mid(tmp_path / "empty.mid", [("Conductor", [])], tempo=100)
    with pytest.raises(MelodyError, match="empty.mid has no notes"):
        load_melody(path)
    # drums beside a melody are never the melody, even where they are the highest
    path = write_mid(tmp_path / "band.mid", [("Kit", [(t, 0.5, 81, 9) for t in range(8)]),
                                             ("Voice", line([60, 62, 64, 65]))])  # fmt: skip
    assert load_melody(path).track == 2


def test_unreadable_midi_files(tmp_path):
    fake = tmp_path / "fake.mid"
    fake.write_text("1 2 3\n", encoding="utf-8")
    with pytest.raises(MelodyError, match="fake.mid is not a readable MIDI file .*export it again"):
        load_melody(fake)
    from lyricgen.craft.midi import read_midi

    with pytest.raises(MelodyError, match="fake.mid is not a readable MIDI file"):
        read_midi(fake)
    good = write_mid(tmp_path / "good.mid", [("Voice", line(VOCAL))])
    cut = tmp_path / "cut.bin"  # any extension: the MThd bytes make it MIDI
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(MelodyError, match=r"cut.bin is not a readable MIDI file \(.*\): export"):
        load_melody(cut)
    assert pitches(load_melody(good)) == VOCAL


def test_track_out_of_range_lists_the_tracks(tmp_path):
    path = write_mid(tmp_path / "s.mid", [("", []), ("Piano", chords(8)), ("Vocal", line(VOCAL))])
    with pytest.raises(MelodyError) as e:
        load_melody(path, track=5)
    assert str(e.value) == (
        "--track 5: no such track; tracks with notes: 2 'Piano' (24 notes), 3 'Vocal' (15 notes)"
    )
    with pytest.raises(MelodyError, match=r"--track 1: track 1 has no notes; tracks with notes: 2"):
        load_melody(path, track=1)


def test_chords_only_asks_for_a_track(tmp_path):
    path = write_mid(tmp_path / "c.mid", [("Piano", chords(4))])
    with pytest.raises(MelodyError) as e:
        load_melody(path)
    assert str(e.value) == (
        f"{path}: no track plays a single melody line (track 1 'Piano' plays chords); choose "
        "one with --track N (tracks: 1 'Piano' (12 notes))"
    )


def test_type_0_file_is_split_by_channel(tmp_path):
    low = [(t, 1.0, p, 0) for t, _, p in line([48, 50, 52, 53])]
    high = [(t, 1.0, p, 3) for t, _, p in line([72, 71, 69, 67])]
    drums = [(t, 1.0, 90, 9) for t in range(4)]
    path = write_mid(tmp_path / "t0.mid", [("Song", low + high + drums)], type=0, tempo=75,
                     time=(6, 8))  # fmt: skip
    m = load_melody(path)
    assert m.track == 2 and pitches(m) == [72, 71, 69, 67]
    assert (m.tempo, m.beats_per_bar) == (75.0, 3.0)
    assert pitches(load_melody(path, track=1)) == [48, 50, 52, 53]
    with pytest.raises(MelodyError, match="tracks with notes: 1 'Song channel 1' .4 notes., 2 'Song channel 4'"):  # fmt: skip
        load_melody(path, track=3)


def test_key_from_the_notes_and_long_notes_and_defaults(tmp_path):
    # G major without a key signature: F# and no F
    notes = line([67, 71, 74, 78, 79, 78, 76, 74]) + [(8, 4.0, 67)] + line([62, 66, 67], start=12)
    path = write_mid(tmp_path / "g.mid", [("", notes)])
    m = load_melody(path)
    assert (m.key, m.tonic) == ("1=G", 67)
    assert labels(m)[:5] == ["1", "3", "5", "7", "1'"]
    assert m.lengths() == [9, 3]  # the four-beat note ends a phrase
    assert (m.tempo, m.beats_per_bar) == (120.0, 4.0)
    # a minor key signature is written as its relative major: A minor is 1=C, tonic "6,"
    path = write_mid(tmp_path / "am.mid", [("", line([57, 60, 64]))], key="Am")
    m = load_melody(path)
    assert m.key == "1=C" and labels(m) == ["6,", "1", "3"]


def test_write_midi_round_trip_with_chinese_lyrics(tmp_path):
    from lyricgen.craft.midi import write_midi

    m = parse_jianpu("1=D 3/4 tempo=72 | 1 1 5 | (5 6) 6 | 6 5 0 | 4 4 3 | 3 2 2 | 1 - - |")
    chars = list("一闪一闪亮晶晶") + ["\n"] + list("满天都是小星星")
    out = tmp_path / "out.mid"
    write_midi(m, chars, out, title="小星星")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mid"]  # no temp file left behind
    back = mido.MidiFile(out, charset="utf-8")
    assert back.type == 1 and len(back.tracks) == 1
    lyrics, names, tick, ons = [], [], 0, []
    for msg in back.tracks[0]:
        tick += msg.time
        if msg.type == "lyrics":
            lyrics.append((tick, msg.text))
        elif msg.type == "track_name":
            names.append(msg.name)
        elif msg.type == "note_on" and msg.velocity:
            ons.append(tick)
    assert [t for _, t in lyrics] == list("一闪一闪亮晶晶满天都是小星星")
    assert names == ["小星星"]
    firsts = [round(s.onset * back.ticks_per_beat) for s in m.syllables()]
    assert [t for t, _ in lyrics] == firsts and len(ons) == 15
    again = load_melody(out)
    assert pitches(again) == pitches(m) and again.tempo == 72.0 and again.beats_per_bar == 3.0
    assert again.key == "1=D" and labels(again)[3:5] == ["5", "6"]
    with pytest.raises(
        MelodyError, match="the lyric has 15 characters but the melody has 14 syllables"
    ):
        write_midi(m, list("一闪一闪亮晶晶满天都是小星星啊"), out)


def test_craft_imports_neither_torch_nor_mido():
    fresh_python(
        """
        import sys
        from lyricgen.craft import jianpu, melody, midi
        jianpu.parse_jianpu("1 2 3")
        assert "mido" not in sys.modules and "torch" not in sys.modules, sorted(sys.modules)
        """
    )
    assert melody_mod.MAX_PHRASE == 24 and melody_mod.MAX_SYLLABLES == 400
