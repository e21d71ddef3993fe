"""The corpus side: reading text (`text`), the token cache (`tokcache`) and the vocabulary
(`vocab`). Nothing here imports torch."""
