//! Faults a test arms through `POST /fake/fault`: each hits the next `count`
//! requests it matches, then disarms itself.
//!
//! - Request faults (any Coinbase endpoint, optionally only paths starting
//!   with `path` and of `method`): `rate_limit` (429 with Retry-After),
//!   `server_error` (503 by default, or `status`), `stall` (sleeps, then
//!   answers normally: the client has given up by then).
//! - Create faults (the next POST /orders that would create an order):
//!   `insufficient_fund`, `post_only_reject`, `bracket_price_error`
//!   (refused with that reason), `lose_create_response` (the order is made,
//!   the answer is a 502), `withhold_bracket` (the entry's child never
//!   appears), `partial_fill` (the entry fills in `parts` parts).
//! - `restart`: the whole exchange answers 502 for `down_s` real seconds and
//!   comes back with its state.

use serde::Deserialize;

/// `POST /fake/fault`'s body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub kind: String,
    pub count: Option<u32>,
    pub retry_after_s: Option<u64>,
    pub path: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub seconds: Option<u64>,
    pub parts: Option<u32>,
    pub down_s: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    RateLimit { retry_after_s: u64 },
    ServerError { status: u16 },
    Stall { seconds: u64 },
    InsufficientFund,
    PostOnlyReject,
    BracketPriceError,
    LoseCreateResponse,
    WithholdBracket,
    PartialFill { parts: u32 },
}

impl Fault {
    fn is_request_fault(&self) -> bool {
        matches!(
            self,
            Fault::RateLimit { .. } | Fault::ServerError { .. } | Fault::Stall { .. }
        )
    }
}

/// What arming asked for: a fault to arm, or a restart to begin now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Armed {
    Fault(Fault),
    Restart { down_s: u64 },
}

/// Parses a fault request; a missing parameter or unknown kind is an error.
pub fn parse(request: &FaultRequest) -> Result<Armed, String> {
    let need = |value: Option<u64>, name: &str| {
        value.ok_or_else(|| format!("kind {} needs {name}", request.kind))
    };
    let fault = match request.kind.as_str() {
        "insufficient_fund" => Fault::InsufficientFund,
        "post_only_reject" => Fault::PostOnlyReject,
        "bracket_price_error" => Fault::BracketPriceError,
        "lose_create_response" => Fault::LoseCreateResponse,
        "withhold_bracket" => Fault::WithholdBracket,
        "rate_limit" => Fault::RateLimit {
            retry_after_s: need(request.retry_after_s, "retry_after_s")?,
        },
        "server_error" => {
            let status = request.status.unwrap_or(503);
            if !(500..=599).contains(&status) {
                return Err(format!("status {status} is not a 5xx"));
            }
            Fault::ServerError { status }
        }
        "stall" => Fault::Stall {
            seconds: need(request.seconds, "seconds")?,
        },
        "partial_fill" => {
            let parts = need(request.parts.map(u64::from), "parts")?;
            if parts < 2 {
                return Err("partial_fill needs parts >= 2".into());
            }
            Fault::PartialFill {
                parts: u32::try_from(parts).unwrap_or(u32::MAX),
            }
        }
        "restart" => {
            return Ok(Armed::Restart {
                down_s: need(request.down_s, "down_s")?,
            })
        }
        other => return Err(format!("unknown fault kind {other:?}")),
    };
    Ok(Armed::Fault(fault))
}

#[derive(Clone, Debug)]
struct Slot {
    fault: Fault,
    remaining: u32,
    path: Option<String>,
    method: Option<String>,
}

/// The armed faults, in the order they were armed.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    slots: Vec<Slot>,
}

impl Faults {
    pub fn arm(&mut self, fault: Fault, request: &FaultRequest) {
        self.slots.push(Slot {
            fault,
            remaining: request.count.unwrap_or(1).max(1),
            path: request.path.clone(),
            method: request.method.clone(),
        });
    }

    /// The first armed fault `wanted` accepts for this request, used once.
    fn take(&mut self, method: &str, path: &str, wanted: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let index = self.slots.iter().position(|slot| {
            wanted(&slot.fault)
                && slot.path.as_deref().is_none_or(|p| path.starts_with(p))
                && slot
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let slot = &mut self.slots[index];
        slot.remaining -= 1;
        let fault = slot.fault.clone();
        if slot.remaining == 0 {
            self.slots.remove(index);
        }
        Some(fault)
    }

    /// A rate limit, server error or stall for this request.
    pub fn take_request_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        self.take(method, path, Fault::is_request_fault)
    }

    /// A refusal armed for the next create.
    pub fn take_create_refusal(&mut self) -> Option<Fault> {
        self.take("POST", "/api/v3/brokerage/orders", |f| {
            matches!(
                f,
                Fault::InsufficientFund | Fault::PostOnlyReject | Fault::BracketPriceError
            )
        })
    }

    /// Whether `fault` (a create fault without parameters) is armed; used once.
    pub fn take_create_fault(&mut self, fault: &Fault) -> bool {
        self.take("POST", "/api/v3/brokerage/orders", |f| f == fault)
            .is_some()
    }

    /// The parts a partial-fill fault splits the next entry into.
    pub fn take_partial_fill(&mut self) -> Option<u32> {
        match self.take("POST", "/api/v3/brokerage/orders", |f| {
            matches!(f, Fault::PartialFill { .. })
        }) {
            Some(Fault::PartialFill { parts }) => Some(parts),
            _ => None,
        }
    }

    /// Descriptions of what is armed, for `/fake/state`.
    pub fn describe(&self) -> Vec<String> {
        self.slots
            .iter()
            .map(|s| format!("{:?} x{}", s.fault, s.remaining))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str) -> FaultRequest {
        FaultRequest {
            kind: kind.into(),
            count: Some(2),
            retry_after_s: Some(3),
            path: Some("/api/v3/brokerage/orders".into()),
            method: None,
            status: None,
            seconds: None,
            parts: None,
            down_s: None,
        }
    }

    #[test]
    fn a_fault_hits_count_matching_requests_then_disarms() {
        let mut faults = Faults::default();
        let r = request("rate_limit");
        let Armed::Fault(fault) = parse(&r).unwrap() else {
            panic!("not a fault")
        };
        faults.arm(fault, &r);
        assert_eq!(
            faults.take_request_fault("GET", "/api/v3/brokerage/accounts"),
            None
        );
        assert!(faults
            .take_request_fault("POST", "/api/v3/brokerage/orders")
            .is_some());
        assert!(faults
            .take_request_fault("GET", "/api/v3/brokerage/orders/historical/x")
            .is_some());
        assert_eq!(
            faults.take_request_fault("POST", "/api/v3/brokerage/orders"),
            None
        );
    }

    #[test]
    fn bad_fault_requests_are_errors() {
        assert!(parse(&FaultRequest {
            retry_after_s: None,
            ..request("rate_limit")
        })
        .is_err());
        assert!(parse(&request("no_such_fault")).is_err());
        assert!(parse(&FaultRequest {
            parts: Some(1),
            ..request("partial_fill")
        })
        .is_err());
    }
}
