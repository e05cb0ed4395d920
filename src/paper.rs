//! `anx paper`: the trader ([`crate::trader`]) with the simulated broker –
//! live Coinbase candles, orders filled by `SimExchange` on the same candles,
//! the production engine and a durable journal.

use crate::cli::PaperArgs;
use crate::trader::{file_config, Kind, Place};
use anx_journal::{RunMode, RunStarted, StoredEvent};
use anx_projections::engine::config::Config;
use anx_replays::exchange::{SimExchange, DRILL_SUFFIX};
use anyhow::Result;
use std::process::ExitCode;

struct Paper {
    drill_withhold_protection: bool,
}

impl Kind for Paper {
    type Broker = SimExchange;
    const RUN_MODE: RunMode = RunMode::PaperLive;
    const COMMAND: &'static str = "anx paper";

    fn identity(&self) -> Vec<u8> {
        b"anx-paper-v1\0".to_vec()
    }

    fn created_by_suffix(&self) -> &'static str {
        if self.drill_withhold_protection {
            DRILL_SUFFIX
        } else {
            ""
        }
    }

    fn first_config(&mut self, place: &Place) -> Result<Config> {
        file_config(place)
    }

    fn resume_config(&mut self, place: &Place, run: &RunStarted) -> Result<Config> {
        let mut config = crate::replay_cmd::load_config(place.config)?;
        config.run.symbols = run.symbols.clone();
        crate::replay_cmd::validated(config)
    }

    fn start_broker(&mut self, config: &Config, _run: &RunStarted) -> Result<SimExchange> {
        let exchange = SimExchange::new(config.clone());
        Ok(if self.drill_withhold_protection {
            exchange.withholding_protection()
        } else {
            exchange
        })
    }

    fn resume_broker(
        &mut self,
        config: &Config,
        run: &RunStarted,
        events: &[StoredEvent],
    ) -> Result<SimExchange> {
        // Named as this journal's answers are; a drill re-driven by a drill.
        Ok(SimExchange::of_journal(config.clone(), run, events))
    }
}

pub fn paper(args: &PaperArgs) -> Result<ExitCode> {
    crate::fetch::check_base_url("--market-url", &args.market_url)?;
    let place = Place {
        config: &args.config,
        symbols: &args.symbols,
        journal: &args.journal,
        market_url: &args.market_url,
        poll_interval_s: args.poll_interval,
        request_timeout_s: args.request_timeout,
        reference: args.edge.reference.as_deref(),
        thresholds: args.edge.thresholds.as_deref(),
        listen: args.ops.listen,
        alert_webhook: args.ops.alert_webhook.as_deref(),
        operations: args.ops.operations.as_deref(),
    };
    let kind = Paper {
        drill_withhold_protection: args.drill_withhold_protection,
    };
    crate::trader::trade(kind, &place)
}
