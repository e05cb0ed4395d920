//! The self-contained HTML report (placeholder until the charts land).
use crate::render::ReplayView;
use anyhow::Result;
use std::path::Path;

pub fn report(_journal: &Path, _view: &ReplayView) -> Result<String> {
    anyhow::bail!("--report-format html is not available yet")
}
