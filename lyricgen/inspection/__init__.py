"""Looking inside a trained model: hidden units and what they track (`units`), embedding
neighbours and the embedding map (`neighbours`), the quality report of generated text
(`quality`), vocabulary statistics of a corpus or a run (`vocab_stats`) and the matplotlib helpers their pictures share (`drawing`). Nothing here
imports the front ends."""
