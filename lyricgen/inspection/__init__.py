"""Looking inside a trained model: hidden units and what they track (`units`), embedding
neighbours and the embedding map (`neighbours`), the quality report of generated text
(`quality`) and the matplotlib helpers their pictures share (`drawing`). Nothing here
imports the front ends."""
