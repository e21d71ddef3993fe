"""Reading corpus files and turning text into tokens (and back).

Line breaks are tokens ("\\n") at every level, so a model learns where lines and songs
(blank lines) end, and generated lyrics keep their shape.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable
from pathlib import Path

from lyricgen.errors import CorpusError

NEWLINE = "\n"
_GUESSES = ("gb18030", "big5")

# What a token is to the song structure (`token_kind`): line breaks end lines, and a line
# of nothing but whitespace tokens is blank.
CONTENT, SPACE, LINE_BREAK = 0, 1, 2


# 〇 (U+3007), CJK Unified Ideographs Extension A, CJK Unified Ideographs, CJK Compatibility
# Ideographs, and planes 2-3 (Extensions B-H and the Compatibility Ideographs Supplement;
# nothing else is assigned there).
_HAN_RANGES = (
    (0x3007, 0x3007),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x3FFFF),
)


def is_han(ch: str) -> bool:
    """Whether the single character ch is a CJK (Han) ideograph."""
    if len(ch) != 1:
        return False
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _HAN_RANGES)


def is_blank(line: str) -> bool:
    """A blank line holds nothing but whitespace. Blank lines separate songs: this is the one
    definition that the train/validation split (`split_blocks`, the token cache's split) and
    the song order of stateful training (`training.data.song_starts`) share."""
    return not line.strip()


def token_kind(token: str) -> int:
    """`LINE_BREAK`, `SPACE` (a token of whitespace only) or `CONTENT`: a line is blank
    (`is_blank`) exactly when its tokens are all `SPACE`, since tokens spell their line."""
    if token == NEWLINE:
        return LINE_BREAK
    return SPACE if is_blank(token) else CONTENT


def has_songs(lines: Iterable[str]) -> bool:
    """Whether blank lines separate songs: some blank line has content before and after it."""
    content = gap = False
    for line in lines:
        if is_blank(line):
            gap = content
        elif gap:
            return True
        else:
            content = True
    return False


def guess_encoding(raw: bytes) -> str | None:
    """GBK or Big5 when `raw` (possibly cut mid-character at its end) decodes as one."""
    for enc in _GUESSES:
        for cut in range(4):  # a sample read from a file may end inside a character
            try:
                raw[: len(raw) - cut].decode(enc)
            except UnicodeDecodeError:
                continue
            return "gbk" if enc == "gb18030" else enc
    return None


def codec(encoding: str) -> str:
    """The Python codec for data.encoding: UTF-8 drops a BOM."""
    enc = encoding.lower().replace("_", "-")
    return "utf-8-sig" if enc in ("utf-8", "utf8") else encoding


def decode_error(what: str, path: Path, encoding: str, where: str, sample: bytes) -> CorpusError:
    """The one-line error for undecodable text, pointing at data.encoding."""
    guess = guess_encoding(sample) if codec(encoding) == "utf-8-sig" else None
    hint = (
        f"it looks like {guess.upper()}; set data.encoding: {guess} (or --set data.encoding={guess})"
        if guess
        else "convert it to UTF-8 or set data.encoding to its encoding"
    )
    return CorpusError(f"{what} {path} is not valid {encoding} ({where}); {hint}")


def check_corpus_file(path: str | Path, what: str = "corpus") -> Path:
    """A regular, non-empty file, or a one-line error (a FIFO would hang, /dev/zero never ends)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        get = {"songci.txt": "get songci", "tangshi.txt": "get tangshi",
               "songshi.txt": "get songshi", "verse_train.txt": "verse",
               "songci_val.txt": "verse", "tang_val.txt": "verse"}.get(p.name)  # fmt: skip
        if get is not None and p.parent.name == "corpora":
            raise CorpusError(
                f"{what} {p} does not exist; `lyricgen corpus {get}` writes it (or give "
                "--corpus FILE)"
            ) from None
        raise CorpusError(
            f"{what} {p} does not exist; check the path (data.corpus or --corpus)"
        ) from None
    except OSError as exc:
        raise CorpusError(f"{what} {p} cannot be read ({exc.strerror}); check the path") from None
    if stat.S_ISDIR(st.st_mode):
        raise CorpusError(f"{what} {p} is a directory; point at a text file inside it")
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise CorpusError(f"{what} {p} is {kind}; give a regular text file")
    try:
        with open(p, "rb") as f:
            head = f.read(65536)
    except OSError as exc:
        raise CorpusError(
            f"{what} {p} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    if not head.strip() and st.st_size <= len(head):
        raise CorpusError(f"{what} {p} is empty; give a text file with one lyric line per line")
    if b"\x00" in head:
        raise CorpusError(f"{what} {p} looks binary (contains NUL bytes); give a plain text file")
    return p


def read_corpus(path: str | Path, encoding: str = "utf-8", what: str = "corpus") -> str:
    """Read a (small) text file whole, normalising a UTF-8 BOM and CRLF/CR line endings to LF.
    Training and scoring stream large files through `lyricgen.corpus.tokcache` instead."""
    p = check_corpus_file(path, what)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CorpusError(
            f"{what} {p} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    try:
        text = raw.decode(codec(encoding))
    except UnicodeDecodeError as exc:
        raise decode_error(what, p, encoding, f"byte {exc.start}", raw) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError(f"{what} {p} contains only whitespace; give a file with lyric lines")
    return text


def jieba_module():
    """jieba, imported on first use with its chatty logger quieted."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def tokenize(text: str, level: str) -> list[str]:
    """Split text into tokens; every line break becomes a "\\n" token."""
    lines = text.split(NEWLINE)
    tokens: list[str] = []
    if level == "char":
        for i, line in enumerate(lines):
            if i:
                tokens.append(NEWLINE)
            tokens.extend(line)
        return tokens
    if level == "space":
        for i, line in enumerate(lines):
            if i:
                tokens.append(NEWLINE)
            tokens.extend(line.split())
        return tokens
    if level == "word":
        jieba = jieba_module()
        for i, line in enumerate(lines):
            if i:
                tokens.append(NEWLINE)
            if line:
                tokens.extend(jieba.lcut(line, HMM=True))
        return tokens
    raise ValueError(f"unknown level {level!r}; choose char, word or space")


def detokenize(tokens: list[str], level: str) -> str:
    """Join tokens back into text (words are separated by spaces only at level 'space')."""
    if level != "space":
        return "".join(tokens)
    out: list[str] = []
    for tok in tokens:
        if tok == NEWLINE or not out or out[-1] == NEWLINE:
            out.append(tok)
        else:
            out.append(" " + tok)
    return "".join(out)


def split_blocks(text: str) -> list[str]:
    """Split a corpus into blocks to divide between train and validation.

    Songs (separated by blank lines) when the corpus has them, else single lines; every
    block keeps its trailing newline(s), so joining the blocks gives back the text.
    """
    text = text if text.endswith(NEWLINE) else text + NEWLINE
    lines = text.split(NEWLINE)[:-1]
    if has_songs(lines):
        blocks, current, content = [], [], False  # content: `current` has a non-blank line
        for line in lines:
            current.append(line)
            if not is_blank(line):
                content = True
            elif content:
                blocks.append(NEWLINE.join(current) + NEWLINE)
                current, content = [], False
        if current:
            if blocks and not content:
                blocks[-1] += NEWLINE.join(current) + NEWLINE
            else:
                blocks.append(NEWLINE.join(current) + NEWLINE)
        return blocks
    return [line + NEWLINE for line in lines]


def train_val_split(text: str, val_fraction: float) -> tuple[str, str]:
    """Hold out the last contiguous `val_fraction` of blocks (songs or lines) for validation.

    Splitting whole songs/lines, never random windows, keeps overlapping windows of the
    same text from appearing on both sides (which would make validation loss a lie).
    """
    blocks = split_blocks(text)
    if len(blocks) < 2:
        raise CorpusError(
            "the corpus has a single line/song, so nothing can be held out for validation; "
            "add more lines or set data.val_corpus"
        )
    total = sum(len(b) for b in blocks)
    target = val_fraction * total
    n_val, size = 0, 0
    while n_val < len(blocks) - 1 and size < target:
        n_val += 1
        size += len(blocks[-n_val])
    return "".join(blocks[:-n_val]), "".join(blocks[-n_val:])
