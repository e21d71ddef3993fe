"""How generation reaches a trained network: the torch-free NumPy RNN (`numpy_rnn`), building
it from a run directory (`numpy_run`), and the two `Stepper`s that drive torch or NumPy
(`steppers`). The craft wing sees only the `Stepper` interface and never imports torch."""
