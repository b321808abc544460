//! (being written: the built-in tracker)
