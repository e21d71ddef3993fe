"""Does a model trained with keyword prefixes write more about its keywords than keyword
constraints at decoding time alone?

    python benchmarks/keyword_conditioning.py PLAIN_RUN [--minutes 5] [--songs 100]

PLAIN_RUN is a Song ci run of `configs/songci_char.yaml` (trained for `--minutes`). This
script trains a second run the same way, for the same minutes, with `data.keyword_lines
0.5`: half the training songs preceded by a control line of their top three TF-IDF
characters between 〔 〕 (CTRL's and GPT2-Chinese's genre prefix; left out for the other half
so that the run still writes without one; lyricgen/corpus/control.py), the held-out songs
plain. Then over `--songs` held-out songs, 8 free lines each:

- plain run, keyword constraints (`--keywords`);
- conditioned run, the control line alone (`--prefix 〔秋月乡〕`);
- conditioned run, the control line and the keyword constraints;

the character TF-IDF cosine to the song, against the control (another song's keywords), and
with the keywords left out; the samples' perplexity; and both runs' held-out bits per
character (plain text: what conditioning costs an unconditioned reader).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import harness as H
import subject as S

from lyricgen.corpus.control import control_line


def relevance(lyr, sets, songs, tf, *, prefix: bool, keywords: bool) -> dict:
    from lyricgen.craft.options import SamplingOptions

    own, control, own_rest, ppl, inc = [], [], [], [], []
    for i, (kws, song) in enumerate(zip(sets, songs, strict=True)):
        other = sets[(i + 1) % len(sets)]
        texts = []
        for ks in (kws, other):
            # with keywords, a conditioned run feeds the control line itself
            o = SamplingOptions(
                lines=8,
                seed=i,
                candidates=8,
                prefix=control_line(ks) if prefix and not keywords else None,
                keywords=",".join(ks) if keywords else None,
            )
            (s,) = lyr.generate("", o)
            texts.append(s)
        a, b = texts
        sv = tf.vec(song)
        own.append(tf.cosine(tf.vec(a.text), sv))
        control.append(tf.cosine(tf.vec(b.text), sv))
        drop = set("".join(kws))
        own_rest.append(tf.cosine(tf.vec(a.text, drop), tf.vec(song, drop)))
        ppl.append(a.perplexity)
        inc.append(all(w in a.text for w in kws))
    m = statistics.mean
    return {"own": m(own), "control": m(control), "ratio": m(own) / m(control),
            "own_rest": m(own_rest), "ppl": H.median(ppl), "inclusion": m(inc)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("plain_run")
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--songs", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "lyricgen-cond")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import lyricgen

    print(H.machine_line(), flush=True)
    plain = lyricgen.load(args.plain_run)
    train, held, _ = S.split_songs(args.plain_run)
    sets, songs, tf = S.keyword_sets(train, held, args.songs, plain.vocab)
    args.out.mkdir(parents=True, exist_ok=True)
    run = args.out / "run"
    if not (run / "model.safetensors").exists():
        corpus = plain.config.data.corpus
        cmd = [*H.lyricgen_cmd(), "train", "--config", "songci_char", "--corpus", corpus,
               "--set", "data.keyword_lines=0.5", "--max-minutes", str(args.minutes),
               "--out", str(run), "--overwrite"]  # fmt: skip
        subprocess.run(cmd, check=True)
    cond = lyricgen.load(run)
    metrics = {}
    for name, r in (("plain", Path(args.plain_run)), ("conditioned", run)):
        rows = [json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines() if x]
        metrics[name] = min(x["val_bpc"] for x in rows if x.get("val_bpc") is not None)
    out = {
        "held_out_bpc": metrics,
        "plain_keywords": relevance(plain, sets, songs, tf, prefix=False, keywords=True),
        "cond_prefix": relevance(cond, sets, songs, tf, prefix=True, keywords=False),
        "cond_prefix_keywords": relevance(cond, sets, songs, tf, prefix=True, keywords=True),
    }
    print(f"held-out bpc: plain {metrics['plain']:.3f}, conditioned {metrics['conditioned']:.3f}")
    H.table(
        ["model, request", "similarity", "control", "ratio", "keywords left out", "all keywords",
         "sample ppl"],
        [[k, H.fmt(v["own"], ".4f"), H.fmt(v["control"], ".4f"), H.fmt(v["ratio"], ".2f"),
          H.fmt(v["own_rest"], ".4f"), H.fmt(v["inclusion"], ".0%"), H.fmt(v["ppl"], ".1f")]
         for k, v in out.items() if k != "held_out_bpc"],
    )  # fmt: skip
    H.write_json(args.json, out)


if __name__ == "__main__":
    main()
