//! The journal's fuzz checks as a library for the fuzz targets; the same file
//! is compiled into `journal/tests/fuzz_corpus.rs`, which replays the corpus.
pub mod checks;
