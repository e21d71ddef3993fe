"""MIDI files through mido (the melody extra, imported inside the functions only): reading
the tune (`read_midi`, which chooses the melody track) and writing it back with the lyric
as lyric events (`write_midi`).

Tracks are numbered for users from 1 in the file's order; a type-0 file (one track) in
which several channels play is split into one track per channel, in channel order. Drums
(channel 10) are never melody. By default the melody is the track a user would call the
tune: of the tracks that play one line at a time (at most MAX_OVERLAP of their notes
overlap another), the highest (median pitch; a tie goes to more notes). Where it, or a
track chosen with --track, plays several notes at once, the highest note at each onset is
kept (the skyline) and held notes are cut at the next one. docs/MELODY.md has the rule.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from lyricgen.atomic import atomic_write
from lyricgen.craft.melody import REST, REST_GAP, Melody, Note, Syllable, make_melody
from lyricgen.errors import MelodyError

log = logging.getLogger(__name__)

DRUMS = 9  # mido's channel 9 is General MIDI channel 10
MAX_OVERLAP = 0.10  # a melody track: at most this share of its notes overlap another note
SAME_ONSET = 1 / 32  # beats: notes starting this close together start together (a chord)
LEGATO = 0.25  # beats: a note may run this far into the next before they overlap
KEY_NAMES = ("C", "bD", "D", "bE", "E", "F", "#F", "G", "bA", "A", "bB", "B")
LABELS = ("1", "#1", "2", "b3", "3", "4", "#4", "5", "#5", "6", "b7", "7")
MAJOR = frozenset((0, 2, 4, 5, 7, 9, 11))
FIFTHS = (0, 7, 5, 2, 10, 9, 3, 4, 8, 11, 1, 6)  # keys by their accidentals: C G F D bB ...
TICKS_PER_BEAT = 480  # written files
_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_MIDO_KEYS = {0: "C", 1: "Db", 2: "D", 3: "Eb", 4: "E", 5: "F", 6: "F#", 7: "G", 8: "Ab",
              9: "A", 10: "Bb", 11: "B"}  # fmt: skip


@dataclass
class Track:
    """A track as users see it: its number (from 1), name and pitched notes
    (onset, duration in beats, pitch), sorted by onset, highest first."""

    number: int
    name: str
    notes: list[tuple[float, float, int]] = field(default_factory=list)
    drums: int = 0  # drum notes, never melody

    def describe(self) -> str:
        """How users see it: 2 'Vocal' (96 notes)."""
        name = f" {self.name!r}" if self.name else ""
        return f"{self.number}{name} ({len(self.notes)} notes)"


def _mido():
    """mido, or an ImportError naming the melody extra."""
    try:
        import mido
    except ImportError as exc:
        raise ImportError(
            "reading and writing MIDI needs mido: pip install 'lyricgen[melody]'"
        ) from exc
    return mido


def _open(path: Path):
    """The parsed file; a MelodyError when it is missing or not readable MIDI."""
    mido = _mido()
    if not path.is_file():
        raise MelodyError(f"{path}: no such file; give the MIDI file of the tune")
    last: Exception | None = None
    for charset in ("utf-8", "latin1"):  # names in UTF-8 when they are, else bytes as-is
        try:
            mid = mido.MidiFile(path, charset=charset, clip=True)
        except UnicodeDecodeError as exc:
            last = exc
            continue
        except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, EOFError):
                reason = "it ends too early: truncated"
            raise MelodyError(
                f"{path} is not a readable MIDI file ({reason}): export it again from your editor"
            ) from None
        break
    else:  # pragma: no cover - latin1 decodes every byte
        raise MelodyError(f"{path} is not a readable MIDI file ({last}): export it again")
    if not 0 < mid.ticks_per_beat < 0x8000:
        raise MelodyError(
            f"{path} is not a readable MIDI file (it counts time in SMPTE frames, not "
            "beats): export it again from your editor with beats"
        )
    return mid


def read_tracks(path: str | Path) -> tuple[list[Track], dict]:
    """The file's tracks (type 0 split by channel) and its first tempo, time and key
    signatures (`meta`: tempo in quarter notes a minute, beats_per_bar, key_pc or None)."""
    path = Path(path)
    mid = _open(path)
    tpb = mid.ticks_per_beat
    meta: dict = {"tempo": None, "beats_per_bar": None, "key_pc": None}
    first: dict[str, int] = {}
    raw = []  # per file track: (name, {channel: [(on, off, pitch)]}, drum notes)
    for trk in mid.tracks:
        tick, name, instrument = 0, "", ""
        open_notes: dict[tuple[int, int], list[int]] = {}
        by_channel: dict[int, list[tuple[int, int, int]]] = {}
        drums = 0
        for msg in trk:
            tick += msg.time
            if msg.is_meta:
                kind = msg.type
                if kind == "track_name" and not name:
                    name = msg.name.strip()
                elif kind == "instrument_name" and not instrument:
                    instrument = msg.name.strip()
                elif kind in ("set_tempo", "time_signature", "key_signature"):
                    if kind not in first or tick < first[kind]:
                        first[kind] = tick
                        if kind == "set_tempo":
                            meta["tempo"] = round(60_000_000 / msg.tempo, 3)
                        elif kind == "time_signature":
                            meta["beats_per_bar"] = msg.numerator * 4 / msg.denominator
                        else:
                            k = msg.key
                            pc = (_PC[k[0]] + k.count("#") - k[1:].count("b")) % 12
                            meta["key_pc"] = (pc + 3) % 12 if k.endswith("m") else pc
                continue
            if msg.type not in ("note_on", "note_off"):
                continue
            if msg.channel == DRUMS:
                drums += msg.type == "note_on" and msg.velocity > 0
                continue
            k = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault(k, []).append(tick)
            elif open_notes.get(k):
                on = open_notes[k].pop(0)
                if tick > on:
                    by_channel.setdefault(msg.channel, []).append((on, tick, msg.note))
        for (ch, pitch), ons in open_notes.items():  # never released: held to the track end
            for on in ons:
                if tick > on:
                    by_channel.setdefault(ch, []).append((on, tick, pitch))
        raw.append((name or instrument, by_channel, drums))

    def notes(items: list[tuple[int, int, int]]) -> list[tuple[float, float, int]]:
        out = [(on / tpb, (off - on) / tpb, p) for on, off, p in items]
        return sorted(out, key=lambda n: (n[0], -n[2]))

    tracks: list[Track] = []
    if mid.type == 0 and len(raw) == 1 and len(raw[0][1]) > 1:
        name, by_channel, drums = raw[0]
        for k, ch in enumerate(sorted(by_channel), 1):
            label = f"{name} channel {ch + 1}" if name else f"channel {ch + 1}"
            tracks.append(Track(k, label, notes(by_channel[ch])))
    else:
        for k, (name, by_channel, drums) in enumerate(raw, 1):
            items = [n for ch in sorted(by_channel) for n in by_channel[ch]]
            tracks.append(Track(k, name, notes(items), drums))
    return tracks, meta


def overlapping(notes: list[tuple[float, float, int]]) -> int:
    """How many notes sound together with another: they start together (SAME_ONSET), or
    one runs more than LEGATO beats into the other."""
    hit = set()
    active: list[int] = []  # indices of notes that may still sound
    for j, (on, _, _) in enumerate(notes):
        active = [i for i in active if notes[i][0] + notes[i][1] > on]
        for i in active:
            a_on, a_dur, _ = notes[i]
            if on - a_on < SAME_ONSET or a_on + a_dur - on > LEGATO:
                hit.update((i, j))
        active.append(j)
    return len(hit)


def is_monophonic(track: Track) -> bool:
    """Whether a track plays one line (at most MAX_OVERLAP of its notes overlap)."""
    return overlapping(track.notes) <= MAX_OVERLAP * len(track.notes)


def skyline(notes: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """The highest note at each onset; a note still sounding at the next kept onset is cut
    there."""
    kept: list[tuple[float, float, int]] = []
    group_onset = None
    for on, dur, p in notes:  # sorted by onset, highest first
        if group_onset is not None and on - group_onset < SAME_ONSET:
            if p > kept[-1][2]:  # a higher note a hair later in the same chord
                kept[-1] = (kept[-1][0], max(dur, kept[-1][1]), p)
            continue
        group_onset = on
        kept.append((on, dur, p))
    out = []
    for i, (on, dur, p) in enumerate(kept):
        if i + 1 < len(kept):
            dur = min(dur, kept[i + 1][0] - on)
        out.append((on, dur, p))
    return out


def choose_track(tracks: list[Track], track: int | None, source: str) -> Track:
    """The melody track: `track` (1-based) when given, else the highest monophonic one."""
    playing = [t for t in tracks if t.notes]
    listing = ", ".join(t.describe() for t in playing)
    if track is not None:
        if not 1 <= track <= len(tracks):
            if not playing:
                raise MelodyError(f"--track {track}: no such track, and {source} has no notes")
            raise MelodyError(f"--track {track}: no such track; tracks with notes: {listing}")
        t = tracks[track - 1]
        if not t.notes:
            what = "plays only drums (channel 10)" if t.drums else "has no notes"
            name = f" {t.name!r}" if t.name else ""
            tail = f"; tracks with notes: {listing}" if playing else f"; {source} has no notes"
            raise MelodyError(f"--track {track}: track {track}{name} {what}{tail}")
        return t
    if not playing:
        if any(t.drums for t in tracks):
            raise MelodyError(
                f"{source} has only drums (channel 10); a melody needs a track of pitched "
                "notes: export the tune's track"
            )
        raise MelodyError(f"{source} has no notes; export the tune itself from your editor")
    mono = [t for t in playing if is_monophonic(t)]
    if not mono:
        chords = [t.describe().split(" (")[0] for t in playing]
        plays = ("track " + chords[0] + " plays") if len(chords) == 1 else (
            "tracks " + ", ".join(chords) + " play")  # fmt: skip
        raise MelodyError(
            f"{source}: no track plays a single melody line ({plays} chords); choose one with "
            f"--track N (tracks: {listing})"
        )
    best = max(mono, key=lambda t: (statistics.median(n[2] for n in t.notes), len(t.notes)))
    if len(playing) > 1:
        log.info("%s: the melody is track %s; --track N reads another", source, best.describe())
    return best


def guess_key(notes: list[tuple[float, float, int]]) -> int:
    """The pitch class of the major key most of the notes (by duration) belong to; a tie
    goes to the key the last note is 1 or 6 of, then to fewer accidentals."""
    last = notes[-1][2] % 12

    def score(k: int) -> tuple:
        inside = sum(d for _, d, p in notes if (p - k) % 12 in MAJOR)
        return (round(inside, 6), last in (k, (k + 9) % 12), -FIFTHS.index(k))

    return max(range(12), key=score)


def label(pitch: int, tonic: int) -> str:
    """A pitch in numbered notation relative to `tonic`: "5", "1'", "6,", "#4"."""
    rel = pitch - tonic
    octave, semitone = divmod(rel, 12)
    return LABELS[semitone] + ("'" * octave if octave > 0 else "," * -octave)


def read_midi(path: str | Path, track: int | None = None) -> Melody:
    """The melody of a MIDI file: `track` (1-based) or the melody track, one syllable per
    note, cut into phrases at rests (gaps of REST_GAP beats) and long notes."""
    path = Path(path)
    source = str(path)
    tracks, meta = read_tracks(path)
    chosen = choose_track(tracks, track, source)
    notes = skyline(chosen.notes)
    pc = meta["key_pc"] if meta["key_pc"] is not None else guess_key(notes)
    tonic = 60 + pc
    syllables, cuts = [], {}
    for i, (on, dur, p) in enumerate(notes):
        syllables.append(Syllable((Note(p, round(on, 6), round(dur, 6), label(p, tonic)),)))
        if i + 1 < len(notes) and notes[i + 1][0] - (on + dur) >= REST_GAP - 1e-9:
            cuts[i] = REST
    return make_melody(
        syllables,
        cuts,
        tonic=tonic,
        key="1=" + KEY_NAMES[pc],
        beats_per_bar=meta["beats_per_bar"] or 4.0,
        tempo=meta["tempo"] or 120.0,
        source=source,
        track=chosen.number,
    )


def write_midi(melody: Melody, chars: list[str], path: str | Path, *, title: str | None = None
               ) -> None:  # fmt: skip
    """Write the tune as a type-1 MIDI file with the i-th character as a lyric event at
    the i-th syllable's first note (UTF-8), atomically."""
    mido = _mido()
    chars = [c for c in chars if c not in ("\n", "\r", "\r\n")]
    syllables = melody.syllables()
    if len(chars) > len(syllables):
        raise MelodyError(
            f"the lyric has {len(chars)} characters but the melody has {len(syllables)} "
            "syllables; one character per syllable"
        )
    path = Path(path)
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT, charset="utf-8")
    trk = mido.MidiTrack()
    mid.tracks.append(trk)
    name = title or (Path(melody.source).stem if melody.source[:2] != "--" else "") or "melody"
    head = [
        mido.MetaMessage("track_name", name=name),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(melody.tempo)),
    ]
    num, den = melody.beats_per_bar, 4
    while num != int(num) and den < 32:
        num, den = num * 2, den * 2
    if num == int(num) and 1 <= num <= 255:
        head.append(mido.MetaMessage("time_signature", numerator=int(num), denominator=den))
    key = _MIDO_KEYS.get((melody.tonic - 60) % 12)
    if key:
        head.append(mido.MetaMessage("key_signature", key=key))
    events = []  # (tick, order, message): note-offs first, then lyric, then note-on
    for i, syl in enumerate(syllables):
        for j, n in enumerate(syl.notes):
            on = round(n.onset * TICKS_PER_BEAT)
            off = max(on + 1, round(n.end * TICKS_PER_BEAT))
            if j == 0 and i < len(chars):
                events.append((on, 1, mido.MetaMessage("lyrics", text=chars[i])))
            events.append((on, 2, mido.Message("note_on", note=n.pitch, velocity=80)))
            events.append((off, 0, mido.Message("note_off", note=n.pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    trk.extend(head)
    tick = 0
    for at, _, msg in events:
        trk.append(msg.copy(time=at - tick))
        tick = at
    trk.append(mido.MetaMessage("end_of_track"))
    atomic_write(path, lambda f: mid.save(file=f))
