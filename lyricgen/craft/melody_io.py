"""Reading a melody: a MIDI file (its bytes start with MThd), a UTF-8 file of numbered
notation, or numbered-notation text. The data model and the phrase rule are in
`melody.py`, the readers in `jianpu.py` and `midi.py`; this module only chooses among them
(so that none of the three imports another's reader)."""

from __future__ import annotations

from pathlib import Path

from lyricgen.craft.melody import Melody
from lyricgen.errors import MelodyError

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")


def load_melody(
    path: str | Path | None = None,
    jianpu: str | None = None,
    *,
    track: int | None = None,
    phrases: list[int] | None = None,
) -> Melody:
    """The melody of a MIDI file (its bytes start with MThd) or a UTF-8 file of numbered
    notation, or of `jianpu` text; cut into `phrases` when given (Melody.regroup)."""
    if (path is None) == (jianpu is None):
        raise MelodyError("give the tune once: a MIDI or numbered-notation file, or --jianpu text")
    if jianpu is not None:
        if track is not None:
            raise MelodyError("--track picks a track of a MIDI file; --jianpu has none")
        from lyricgen.craft.jianpu import parse_jianpu

        melody = parse_jianpu(jianpu)
    else:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MelodyError(
                f"{path}: no such file; give a MIDI file or a text file of numbered notation"
            ) from None
        except OSError as exc:
            raise MelodyError(
                f"cannot read {path} ({exc.strerror or exc}); check the path"
            ) from None
        if data.startswith(b"MThd"):
            from lyricgen.craft.midi import read_midi

            melody = read_midi(path, track)
        elif path.suffix.lower() in MIDI_SUFFIXES:
            raise MelodyError(
                f"{path} is not a readable MIDI file (it does not start with MThd): export "
                "it again from your editor"
            )
        else:
            if track is not None:
                raise MelodyError(
                    f"--track picks a track of a MIDI file; {path} is numbered notation"
                )
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise MelodyError(
                    f"{path} is neither a MIDI file nor UTF-8 text; save the numbered "
                    "notation as UTF-8 (or export the tune as MIDI)"
                ) from None
            from lyricgen.craft.jianpu import parse_jianpu

            melody = parse_jianpu(text, source=str(path))
    if phrases is not None:
        melody = melody.regroup(list(phrases))
    return melody
