"""The models that ship with lyricgen, one folder each (`lyricgen.run.models`)."""
