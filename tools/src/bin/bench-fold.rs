//! Fold benchmark: events/s of the projection fold from an in-memory decoded
//! stream, and end to end from disk (read + verify + decode + fold). Medians of
//! several runs. `cargo run --release -p anx-tools --bin bench-fold [-- --events N --runs R]`.

use anx_journal::Reader;
use anx_projections::{Projection, Report};
use anx_tools::{arg, median, synthetic_run, write_synthetic_journal};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let events = arg("--events", 2_000_000);
    let runs = arg("--runs", 5) as usize;
    let mut stream = Vec::new();
    synthetic_run(events, |chunk| stream.extend(chunk));
    println!("anx fold benchmark: {} events (candles, decisions, bracket trades on 3 symbols), {runs} runs", stream.len());

    let mut seconds = Vec::new();
    let mut hash = None;
    for _ in 0..runs {
        let started = Instant::now();
        let mut projection = Projection::new();
        for (i, (ms, event)) in stream.iter().enumerate() {
            projection.apply(i as u64 + 1, *ms, event).expect("fold");
        }
        seconds.push(started.elapsed().as_secs_f64());
        let state_hash = projection.state_hash();
        assert!(
            hash.is_none_or(|h| h == state_hash),
            "the fold is not deterministic"
        );
        hash = Some(state_hash);
        std::hint::black_box(Report::from_state(&projection.state));
    }
    let mid = median(&mut seconds);
    println!(
        "fold (in-memory, decoded)   median {:>10.0} events/s",
        stream.len() as f64 / mid
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let written = write_synthetic_journal(dir.path(), events);
    assert_eq!(written, stream.len() as u64);
    drop(stream);
    let mut seconds = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut reader = Reader::open(dir.path()).expect("open");
        let mut projection = Projection::new();
        while let Some(record) = reader.next_record().expect("read") {
            let event = record.decode().expect("decode");
            projection
                .apply(record.seq, record.market_ms(), &event)
                .expect("fold");
        }
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(
            Some(projection.state_hash()),
            hash,
            "disk fold differs from the in-memory fold"
        );
    }
    let mid = median(&mut seconds);
    println!(
        "fold from disk, one thread  median {:>10.0} events/s",
        written as f64 / mid
    );

    // The path `anx journal replay` takes: reading and verifying on a second
    // core, decoding shared between the two.
    let mut seconds = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut reader = Reader::open(dir.path()).expect("open");
        let mut projection = Projection::new();
        let streamed = anx_journal::stream_events(&mut reader, u64::MAX, |e| {
            projection.apply(e.seq, e.market_ms, &e.event)
        });
        assert!(streamed.is_ok(), "stream failed");
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(Some(projection.state_hash()), hash, "streamed fold differs");
    }
    println!(
        "fold end to end from disk   median {:>10.0} events/s  (read+verify+decode+fold, 2 threads)",
        written as f64 / median(&mut seconds)
    );

    {
        let mut seconds = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let mut reader = Reader::open(dir.path()).expect("open");
            let mut n = 0u64;
            let streamed = anx_journal::stream_events(&mut reader, u64::MAX, |e| {
                n += e.seq & 1;
                std::hint::black_box(&e);
                Ok::<(), ()>(())
            });
            assert!(streamed.is_ok());
            seconds.push(started.elapsed().as_secs_f64());
        }
        println!(
            "  stream, no fold            median {:>10.0} events/s",
            written as f64 / median(&mut seconds)
        );
        println!(
            "  size of Event: {} bytes",
            std::mem::size_of::<anx_journal::Event>()
        );
    }
    // Where the end-to-end time goes: read + verify, then + decode.
    for decode in [false, true] {
        let mut seconds = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let mut reader = Reader::open(dir.path()).expect("open");
            while let Some(record) = reader.next_record().expect("read") {
                if decode {
                    std::hint::black_box(record.decode().expect("decode"));
                }
            }
            seconds.push(started.elapsed().as_secs_f64());
        }
        let label = if decode {
            "  of which read+verify+decode"
        } else {
            "  of which read+verify"
        };
        println!(
            "{label:<28} median {:>10.0} events/s",
            written as f64 / median(&mut seconds)
        );
    }
}
