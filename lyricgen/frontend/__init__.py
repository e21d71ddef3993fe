"""The front ends over the library: the command line (`cli`), the Python entry point
`lyricgen.load` (`api`), the browser page and its JSON API (`serve`), training-curve pictures
(`plot`), the terminal view of `--explain` (`explain`) and the configs shipped in the wheel
(`shipped`)."""
