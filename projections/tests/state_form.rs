//! The state's canonical form (version 1) is what the state hash covers: it
//! must be byte for byte the encoding every checkpoint already journaled was
//! made from (the bincode encoding of `State` before the form had a name),
//! after every event of real and synthetic journals; and it is pinned, so a
//! change to it cannot slip in – a state hashed otherwise is a new form.

use anx_journal::codec::BODY_CONFIG;
use anx_journal::{Event, Reader, UnixMs};
use anx_projections::state_form::{encode_v1, STATE_FORM_CURRENT};
use anx_projections::testkit::fixture_events;
use anx_projections::{Projection, State};
use std::path::PathBuf;

/// What the state hash covered before the form was written by hand: the
/// bincode encoding of `State` as it was then – today's, without the figures
/// added since (they follow the old ones, and are checked to).
fn bincode_of(state: &State) -> Vec<u8> {
    let mut all = bincode::serde::encode_to_vec(state, BODY_CONFIG).expect("plain data encodes");
    let added = anx_projections::testkit::added_since_form_one(state);
    assert!(all.ends_with(&added), "figures added since come last");
    all.truncate(all.len() - added.len());
    all
}

/// Folds `events`, checking the form against the old encoding after each.
fn fold_checking(events: impl IntoIterator<Item = (UnixMs, Event)>) -> (Projection, usize) {
    let mut projection = Projection::new();
    let mut n = 0;
    for (i, (market_ms, event)) in events.into_iter().enumerate() {
        projection
            .apply(i as u64 + 1, market_ms, &event)
            .unwrap_or_else(|e| panic!("fold: {e}"));
        assert_eq!(
            encode_v1(&projection.state),
            bincode_of(&projection.state),
            "form 1 differs after event {} ({})",
            i + 1,
            event.kind()
        );
        n += 1;
    }
    (projection, n)
}

#[test]
fn form_one_is_the_encoding_every_journaled_checkpoint_was_made_from() {
    let (projection, n) = fold_checking(fixture_events());
    assert!(n > 50, "{n} events");
    // The committed trading journal (written before the form had a name),
    // with its own checkpoint, checked by the fold.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/trading-v1");
    let mut reader = Reader::open(&dir).expect("the committed trading journal");
    let mut events = Vec::new();
    while let Some(stored) = reader.next_event().expect("intact") {
        events.push((stored.market_ms, stored.event));
    }
    let checkpoints = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Checkpoint(_)))
        .count();
    assert!(
        checkpoints >= 1,
        "the fixture's checkpoints are checked by the fold"
    );
    let (trading, n) = fold_checking(events);
    assert!(n > 100, "{n} events");
    assert!(!trading.state.trades.is_empty());
    assert_eq!(trading.links.checkpoints_verified, checkpoints as u64);
    assert_eq!(
        projection.state_hash(),
        trading.state_hash(),
        "the same history"
    );
}

#[test]
fn form_one_is_pinned() {
    // If this fails, form 1 changed: every checkpoint already journaled would
    // stop checking. Keep `encode_v1` as it was and add a new form instead.
    let (projection, _) = fold_checking(fixture_events());
    assert_eq!(STATE_FORM_CURRENT, 1);
    assert_eq!(
        projection.state_hash().to_hex(),
        "c0de57ee70adcb625ab02ec6e558d451c176c21b4ab6b6aaf0295b1e50bdbdf0",
        "the form-1 hash of the testkit fixture"
    );
}
