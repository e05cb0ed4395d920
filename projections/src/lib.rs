//! `anx-projections`: everything the system knows, as pure folds of the journal.
//!
//! [`Projection::apply`] folds one event into the engine state machine per
//! symbol, positions and cash, the trade ledger, the run table, audit coverage
//! and data quality, and checks every `Checkpoint` against the canonical state
//! hash. [`Report`] derives the metrics from the trades and the equity curve.
//!
//! Architecture invariant: no I/O, no clock, no randomness, no hash-map
//! iteration order in any output; an impossible event is a [`FoldError`] naming
//! its seq and rule, never skipped.

pub mod anomaly;
pub mod breakdown;
pub mod compare;
pub mod engine;
pub mod error;
pub mod fold;
pub mod health;
pub mod model;
pub mod report;
pub mod state_form;
pub mod testkit;

pub use error::{EngineError, EngineFault, EngineResult, FoldError, FoldResult, Rule};
pub use fold::{transition_allowed, Projection, PORTFOLIO_POT};
pub use model::*;
pub use report::{PnlAttribution, Report, RATIO_BASIS};
