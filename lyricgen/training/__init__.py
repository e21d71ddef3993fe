"""The training side: the model (`model`), its batches (`data`), the training loop
(`trainer`), evaluation (`evaluation`), the learning-rate schedule (`schedule`), precision,
processes (`distributed`) and fine-tuning (`finetune`)."""
