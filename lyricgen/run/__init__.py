"""The run directory: the files a training run leaves (`files`: config, vocabulary, weights,
resumable state, metrics, the lock) and the object that writes them while training
(`directory.RunDir`). Nothing here imports the training or craft wings; loading a model
from a run is `lyricgen.training.loading`."""
