"""Plain domain data. Nothing in this package performs I/O."""
