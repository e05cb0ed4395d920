//! Coinbase Advanced Trade: API keys and request tokens ([`auth`]),
//! authenticated requests with Coinbase's retry rules ([`rest`]), the
//! answers' shapes ([`model`]) and the broker the live trader uses
//! ([`broker`]).

pub mod auth;
pub mod broker;
pub mod model;
pub mod rest;
