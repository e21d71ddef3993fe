"""lyricgen: train recurrent language models on song lyrics and write new lyrics."""

__version__ = "0.1.0"
