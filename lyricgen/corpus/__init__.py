"""The corpus side: reading text (`text`), the token cache (`tokcache`), the vocabulary
(`vocab`) and its statistics (`vocabstats`). Nothing here imports torch."""
