//! The pagemaker role: the dashboard (HTTP pages, JSON API, /metrics) and its logins.

pub mod auth;
pub mod metrics;
