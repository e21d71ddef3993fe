"""The craft of generation, with no torch: what may come next and how it is chosen.

- `options`: `SamplingOptions`, the one list of generation options every front end derives from;
- `generate`: the generation loop (sampling, line candidates, beam search) and `--explain`;
- `stepper`: the `Stepper` interface between the loop and a model (its torch and NumPy
  implementations are in `lyricgen.backends`);
- `sampling`: temperature, top-k and top-p over NumPy logits;
- `constraints`: masks over the vocabulary (line form, forms with tones and rhyme, acrostic,
  no-repeat n-grams, the copy guard), one `Constraint` interface;
- `books`: rhyme books (平水韵, 中华新韵, 十三辙) giving tone classes and rhyme groups;
- `rhyme`: the 十三辙 groups from pypinyin readings, and the run's rhyme table;
- `forms`, `formcheck`: 近体诗 and 词牌 templates, `--line-lengths`, and scoring a text against them;
- `copyindex`, `originality`: the corpus index behind the copy guard.
"""
