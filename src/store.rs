//! The derived store in `<journal>/index/` (sled): projection snapshots and
//! lookup indexes. Everything in it is rebuilt from the journal on demand and
//! never trusted over it: a snapshot is used only if its recorded journal hash
//! matches the journal at that seq and its bytes hash to its recorded state
//! hash; a missing, stale or unreadable store is rebuilt with a warning.
//!
//! Trees:
//! - `meta`: `journal_id` (16 bytes) and `version` (u32 LE) of this layout.
//! - `snapshots`: seq (u64 BE) → `version u32 ‖ journal hash at seq [32] ‖
//!   state hash [32] ‖ bincode(Projection)`. The newest snapshot's seq is also
//!   how far the id indexes reach.
//! - `ids`: `c:<client_order_id>`, `x:<exchange order id>`, `t:<trade id>` →
//!   sorted seqs (u64 LE each) of the events that make up its trail.
//! - `offsets`: seq (u64 BE) → segment first seq (u64 LE) ‖ byte offset (u64 LE),
//!   for every 256th record, so any record can be found by scanning at most
//!   255 record headers.

use anx_journal::codec::{Hash32, BODY_CONFIG};
use anx_journal::reader::{read_record_at, SegmentFileInfo};
use anx_journal::{
    list_segments, Event, JournalMeta, OrderPurpose, Reader, Seq, StoredEvent, TailPolicy,
};
use anx_projections::Projection;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Bumped whenever `Projection`'s serialized layout changes (2: halts and the
/// operator log; 3 to 6: the fills and broker answers journaled; 7: the
/// decisions that led to no order; 8: a trade's entry context and fill
/// liquidity; 9: findings; 10: events by kind, decisions and the
/// rejection streak per symbol); an index of another layout is rebuilt.
const LAYOUT_VERSION: u32 = 10;
/// One offset entry per this many records.
pub const OFFSET_EVERY: u64 = 256;
const SNAPSHOTS_KEPT: usize = 3;
const SNAPSHOT_HEADER_BYTES: usize = 4 + 32 + 32;
/// Unusable stores kept aside at most (then a reader works without one).
const SET_ASIDE_MAX: u32 = 16;

/// Where a fold started and what it cost.
pub struct Loaded {
    pub projection: Projection,
    pub head_seq: Seq,
    pub head_hash: Hash32,
    /// The snapshot the fold started from, if any.
    pub from_snapshot: Option<Seq>,
    /// Events folded after the snapshot (all of them without one).
    pub folded: u64,
    /// Non-fatal findings (a store that had to be rebuilt, a torn tail …).
    pub warnings: Vec<String>,
    /// The store, when the load went through it.
    pub store: Option<Store>,
    pub segments: Vec<SegmentFileInfo>,
}

/// How to load a journal's state.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Stop after this seq (default: the head).
    pub to_seq: Option<Seq>,
    /// Start from the newest valid snapshot (and keep the store up to date).
    pub use_store: bool,
}

impl LoadOptions {
    /// The whole journal, from the newest valid snapshot: what every reader
    /// of a journal's present state wants.
    pub const HEAD: LoadOptions = LoadOptions {
        to_seq: None,
        use_store: true,
    };
}

pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    snapshots: sled::Tree,
    ids: sled::Tree,
    offsets: sled::Tree,
}

/// The journal identity from the first segment header.
pub fn journal_meta(dir: &Path) -> Result<(JournalMeta, Vec<SegmentFileInfo>)> {
    let segments = list_segments(dir)?;
    let first = segments
        .first()
        .ok_or_else(|| anyhow!("{} is not a journal (no segment files)", dir.display()))?;
    // The journal's own header read: a regular file only, a bounded read.
    let meta = anx_journal::reader::read_journal_meta(first)?;
    Ok((meta, segments))
}

fn sled_err(e: sled::Error) -> anyhow::Error {
    anyhow!("index store: {e}")
}

impl Store {
    /// Opens (or creates) the store of a journal. A store that cannot be
    /// opened is set aside (renamed to `index.set-aside[.N]`) and started
    /// afresh; where even that is impossible – a read-only journal directory –
    /// the work is done in a temporary store that is dropped afterwards,
    /// saying so once. A store of another journal or layout is emptied. The
    /// store is never a reason for a reader to fail.
    pub fn open(journal: &Path, meta: &JournalMeta, warnings: &mut Vec<String>) -> Result<Store> {
        let dir = journal.join("index");
        let db = match open_dir(&dir) {
            Ok(db) => db,
            Err(first) => match set_aside(&dir).and_then(|aside| Ok((aside, open_dir(&dir)?))) {
                Ok((aside, db)) => {
                    warnings.push(format!(
                        "index store unusable ({first}); set aside as {} and rebuilt from the journal",
                        aside.display()
                    ));
                    db
                }
                Err(second) => {
                    warnings.push(format!(
                        "index store unusable ({first}) and cannot be replaced ({second}); working without it (nothing is cached)"
                    ));
                    sled::Config::new()
                        .temporary(true)
                        .open()
                        .map_err(sled_err)?
                }
            },
        };
        let store = Store {
            meta: db.open_tree("meta").map_err(sled_err)?,
            snapshots: db.open_tree("snapshots").map_err(sled_err)?,
            ids: db.open_tree("ids").map_err(sled_err)?,
            offsets: db.open_tree("offsets").map_err(sled_err)?,
            db,
        };
        let id_ok = store.meta.get("journal_id").map_err(sled_err)?.as_deref()
            == Some(&meta.journal_id[..]);
        let version_ok = store.meta.get("version").map_err(sled_err)?.as_deref()
            == Some(&LAYOUT_VERSION.to_le_bytes()[..]);
        if !id_ok || !version_ok {
            if !store.snapshots.is_empty() || !store.ids.is_empty() {
                warnings
                    .push("index store belongs to another journal or layout; rebuilding it".into());
            }
            store.clear()?;
            store
                .meta
                .insert("journal_id", &meta.journal_id[..])
                .map_err(sled_err)?;
            store
                .meta
                .insert("version", &LAYOUT_VERSION.to_le_bytes()[..])
                .map_err(sled_err)?;
        }
        Ok(store)
    }

    /// Empties every tree but `meta`.
    pub fn clear(&self) -> Result<()> {
        for tree in [&self.snapshots, &self.ids, &self.offsets] {
            tree.clear().map_err(sled_err)?;
        }
        Ok(())
    }

    /// Seqs of the snapshots held, newest first.
    fn snapshot_seqs(&self) -> Result<Vec<Seq>> {
        let mut seqs = Vec::new();
        for entry in self.snapshots.iter().keys().rev() {
            let key = entry.map_err(sled_err)?;
            seqs.push(u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| anyhow!("bad snapshot key"))?,
            ));
        }
        Ok(seqs)
    }

    /// The newest snapshot at or before `max_seq` that agrees with the journal.
    /// Snapshots that do not are removed, with a warning.
    fn best_snapshot(
        &self,
        journal: &Path,
        segments: &[SegmentFileInfo],
        max_seq: Seq,
        warnings: &mut Vec<String>,
    ) -> Result<Option<(Seq, Hash32, Projection)>> {
        for seq in self.snapshot_seqs()? {
            if seq > max_seq {
                continue;
            }
            match self.check_snapshot(journal, segments, seq) {
                Ok((hash, projection)) => return Ok(Some((seq, hash, projection))),
                Err(why) => {
                    // The journal and the store disagree: nothing in the store is
                    // trusted any more.
                    warnings.push(format!(
                        "snapshot at seq {seq} disagrees with the journal ({why}); rebuilding the index store"
                    ));
                    self.clear()?;
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    fn check_snapshot(
        &self,
        journal: &Path,
        segments: &[SegmentFileInfo],
        seq: Seq,
    ) -> Result<(Hash32, Projection)> {
        let bytes = self
            .snapshots
            .get(seq.to_be_bytes())
            .map_err(sled_err)?
            .ok_or_else(|| anyhow!("missing"))?;
        if bytes.len() < SNAPSHOT_HEADER_BYTES || bytes[..4] != LAYOUT_VERSION.to_le_bytes() {
            bail!("unknown snapshot layout");
        }
        let journal_hash = Hash32(bytes[4..36].try_into().expect("32 bytes"));
        let state_hash = Hash32(bytes[36..68].try_into().expect("32 bytes"));
        let (record, _) = self.read_record(journal, segments, seq)?;
        if record.hash != journal_hash {
            bail!(
                "the journal at seq {seq} has hash {}, the snapshot was taken at {journal_hash}",
                record.hash
            );
        }
        let (projection, _): (Projection, usize) =
            bincode::serde::decode_from_slice(&bytes[SNAPSHOT_HEADER_BYTES..], BODY_CONFIG)
                .map_err(|e| anyhow!("undecodable: {e}"))?;
        if projection.state_hash() != state_hash || projection.seq() != seq {
            bail!("its bytes do not match its recorded state hash");
        }
        Ok((journal_hash, projection))
    }

    fn write_snapshot(&self, projection: &Projection, journal_hash: Hash32) -> Result<()> {
        let mut bytes = Vec::with_capacity(4096);
        bytes.extend_from_slice(&LAYOUT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&journal_hash.0);
        bytes.extend_from_slice(&projection.state_hash().0);
        bytes.extend(
            bincode::serde::encode_to_vec(projection, BODY_CONFIG).map_err(|e| anyhow!("{e}"))?,
        );
        self.snapshots
            .insert(projection.seq().to_be_bytes(), bytes)
            .map_err(sled_err)?;
        let seqs = self.snapshot_seqs()?;
        for old in seqs.iter().skip(SNAPSHOTS_KEPT) {
            self.snapshots.remove(old.to_be_bytes()).map_err(sled_err)?;
        }
        Ok(())
    }

    /// Seqs recorded under an id key (`c:…`, `x:…`, `t:…`).
    pub fn seqs(&self, key: &str) -> Result<Vec<Seq>> {
        Ok(match self.ids.get(key).map_err(sled_err)? {
            Some(bytes) => bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
                .collect(),
            None => Vec::new(),
        })
    }

    fn merge_ids(&self, pending: BTreeMap<String, Vec<Seq>>) -> Result<()> {
        for (key, mut seqs) in pending {
            seqs.extend(self.seqs(&key)?);
            seqs.sort_unstable();
            seqs.dedup();
            let bytes: Vec<u8> = seqs.iter().flat_map(|s| s.to_le_bytes()).collect();
            self.ids.insert(key.as_bytes(), bytes).map_err(sled_err)?;
        }
        Ok(())
    }

    /// Reads and checks one record by seq, using the sparse offset index.
    pub fn read_record(
        &self,
        _journal: &Path,
        segments: &[SegmentFileInfo],
        seq: Seq,
    ) -> Result<(StoredEvent, u64)> {
        let index = segments
            .iter()
            .rposition(|s| s.first_seq <= seq)
            .ok_or_else(|| anyhow!("seq {seq} is before the journal's first segment"))?;
        let segment = &segments[index];
        let mut start = (
            segment.first_seq,
            anx_journal::format::SEGMENT_HEADER_BYTES as u64,
        );
        if let Some(entry) = self.offsets.range(..=seq.to_be_bytes()).next_back() {
            let (key, value) = entry.map_err(sled_err)?;
            let entry_seq = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| anyhow!("bad offset key"))?,
            );
            let entry_segment =
                u64::from_le_bytes(value[..8].try_into().map_err(|_| anyhow!("bad offset"))?);
            let entry_offset =
                u64::from_le_bytes(value[8..16].try_into().map_err(|_| anyhow!("bad offset"))?);
            if entry_segment == segment.first_seq && entry_seq >= start.0 {
                start = (entry_seq, entry_offset);
            }
        }
        Ok(read_record_at(segment, start.0, start.1, seq)?)
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush().map_err(sled_err)?;
        Ok(())
    }
}

/// The id keys an event belongs to, given the state before it is folded.
fn id_keys(event: &Event, before: &Projection, keys: &mut Vec<String>) {
    let entry_of = |client_order_id: &str| -> Option<String> {
        let order = before.state.orders.get(client_order_id)?;
        if order.purpose != OrderPurpose::Exit {
            return None;
        }
        let trade = before
            .state
            .symbols
            .get(&order.symbol)?
            .open_trade
            .as_ref()?;
        Some(format!("c:{}", trade.entry_client_order_id))
    };
    let order_keys = |coid: &str, keys: &mut Vec<String>| {
        keys.push(format!("c:{coid}"));
        keys.extend(entry_of(coid));
    };
    match event {
        Event::OrderPlaced(e) => {
            keys.push(format!("c:{}", e.client_order_id));
            if e.purpose == OrderPurpose::Exit {
                if let Some(trade) = before
                    .state
                    .symbols
                    .get(&e.product_id)
                    .and_then(|s| s.open_trade.as_ref())
                {
                    keys.push(format!("c:{}", trade.entry_client_order_id));
                }
            }
        }
        Event::OrderAcknowledged(e) => {
            order_keys(&e.client_order_id, keys);
            keys.push(format!("x:{}", e.exchange_order_id));
        }
        Event::OrderRejected(e) => order_keys(&e.client_order_id, keys),
        Event::OrderCancelled(e) => order_keys(&e.client_order_id, keys),
        Event::BracketVerified(e) => order_keys(&e.client_order_id, keys),
        Event::Fill(e) => order_keys(&e.client_order_id, keys),
        Event::TradeClosed(e) => {
            keys.push(format!("t:{}", e.trade_id));
            keys.push(format!("c:{}", e.entry_client_order_id));
        }
        _ => {}
    }
}

/// Folds a journal, through the store when `options.use_store`: starts from the
/// newest snapshot that agrees with the journal, folds the tail, and (when it
/// reached the head) records the new snapshot and the ids and offsets of every
/// event folded. Without the store it folds every event from seq 1.
pub fn load(journal: &Path, options: LoadOptions) -> Result<Loaded> {
    let (meta, segments) = journal_meta(journal)?;
    let mut warnings = Vec::new();
    let store = if options.use_store {
        Some(Store::open(journal, &meta, &mut warnings)?)
    } else {
        None
    };
    let max_seq = options.to_seq.unwrap_or(Seq::MAX);
    let snapshot = match &store {
        Some(store) => store.best_snapshot(journal, &segments, max_seq, &mut warnings)?,
        None => None,
    };
    let from_snapshot = snapshot.as_ref().map(|(seq, hash, _)| (*seq, *hash));
    let mut projection = snapshot.map(|(_, _, p)| p).unwrap_or_default();
    let start_seq = from_snapshot.map_or(1, |(seq, _)| seq + 1);
    // Index only what the store does not hold yet, and only when we fold to the head.
    let indexing = store.is_some() && options.to_seq.is_none();
    if let (Some(store), None, true) = (&store, from_snapshot, indexing) {
        store.clear()?;
    }
    let mut reader = Reader::open_from(journal, start_seq, TailPolicy::StopAtTorn)?;
    let segment_firsts: Vec<Seq> = reader.segments().iter().map(|s| s.first_seq).collect();
    let mut pending_ids: BTreeMap<String, Vec<Seq>> = BTreeMap::new();
    let mut offsets: Vec<(Seq, Seq, u64)> = Vec::new();
    let mut keys = Vec::new();
    let mut folded = 0u64;
    let mut head = from_snapshot;
    let streamed = anx_journal::stream_events(&mut reader, max_seq, |record| {
        if indexing {
            if (record.seq - 1) % OFFSET_EVERY == 0 {
                offsets.push((
                    record.seq,
                    segment_firsts[record.segment_index],
                    record.offset,
                ));
            }
            keys.clear();
            id_keys(&record.event, &projection, &mut keys);
            for key in keys.drain(..) {
                pending_ids.entry(key).or_default().push(record.seq);
            }
        }
        projection.apply(record.seq, record.market_ms, &record.event)?;
        head = Some((record.seq, record.hash));
        folded += 1;
        Ok::<(), anx_projections::FoldError>(())
    });
    match streamed {
        Ok(()) => {}
        Err(anx_journal::StreamError::Journal(error)) => return Err(error.into()),
        Err(anx_journal::StreamError::Sink(error)) => return Err(error.into()),
    }
    // Nothing folded: the head is the snapshot's, or the genesis of an empty journal.
    let head = head.unwrap_or((0, meta.genesis()));
    if let Some(torn) = reader.torn_tail() {
        warnings.push(format!(
            "the journal ends in a torn tail ({torn}); folded up to seq {}",
            head.0
        ));
    }
    if let (Some(store), true) = (&store, indexing) {
        if folded > 0 {
            for (seq, segment, offset) in offsets {
                let mut value = [0u8; 16];
                value[..8].copy_from_slice(&segment.to_le_bytes());
                value[8..].copy_from_slice(&offset.to_le_bytes());
                store
                    .offsets
                    .insert(seq.to_be_bytes(), &value[..])
                    .map_err(sled_err)?;
            }
            store.merge_ids(pending_ids)?;
            store.write_snapshot(&projection, head.1)?;
            store.flush()?;
        }
    }
    Ok(Loaded {
        projection,
        head_seq: head.0,
        head_hash: head.1,
        from_snapshot: from_snapshot.map(|(seq, _)| seq),
        folded,
        warnings,
        store,
        segments,
    })
}

/// Opens the store directory; anything there that is not a directory is not
/// a store.
fn open_dir(dir: &Path) -> Result<sled::Db> {
    if dir.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        bail!("{} is not a directory", dir.display());
    }
    sled::open(dir).map_err(sled_err)
}

/// Renames an unusable store out of the way (never deletes it: what is in
/// it may be worth a look) and returns where it went.
fn set_aside(dir: &Path) -> Result<std::path::PathBuf> {
    let free = (1..=SET_ASIDE_MAX)
        .map(|n| match n {
            1 => dir.with_file_name("index.set-aside"),
            n => dir.with_file_name(format!("index.set-aside.{n}")),
        })
        .find(|p| p.symlink_metadata().is_err())
        .ok_or_else(|| anyhow!("{SET_ASIDE_MAX} set-aside stores already exist"))?;
    std::fs::rename(dir, &free)
        .with_context(|| format!("cannot rename {} to {}", dir.display(), free.display()))?;
    Ok(free)
}

/// Deletes and rebuilds the store from the whole journal (a store that is
/// not a directory is set aside instead).
pub fn reindex(journal: &Path) -> Result<Loaded> {
    let dir = journal.join("index");
    match dir.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?,
        Ok(_) => {
            set_aside(&dir)?;
        }
        Err(_) => {}
    }
    load(journal, LoadOptions::HEAD)
}
