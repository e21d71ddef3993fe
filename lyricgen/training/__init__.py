"""The training side: the model and its loss kernels (`model`, `gru`), its batches (`data`),
the training loop (`trainer`) with its state (`state`), observers (`callbacks`), optimizers
(`optim`), learning-rate schedule (`schedule`), precision (`precision`) and processes
(`distributed`); evaluation (`evaluation`), fine-tuning (`finetune`) and loading a trained
model from its run directory (`loading`)."""
