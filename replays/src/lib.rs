//! `anx-replays`: candle data (cache files, validation, resampling), the
//! simulated exchange (a `Broker`), the pipeline every input takes (replay
//! and live), and the replay runner that drives the production engine over
//! historical candles into a journal.
//!
//! Architecture invariant: the runner reads candle files and writes the
//! journal; everything it decides goes through the engine's `run_tick`, and
//! every number it reports comes from the projections.

pub mod data;
pub mod exchange;
pub mod pipeline;
pub mod recompute;
pub mod runner;
