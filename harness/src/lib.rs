//! rotcheck's library: the pieces of `DESIGN.md`, one module each.
//!
//! * [`model`]: the reference state machine of Secrets Manager secrets and staging labels;
//! * [`emulator`]: Secrets Manager over HTTP, backed by the model;
//! * [`function`]: running any rotation function (hosted Lambda Runtime API, HTTP, command);
//! * [`database`]: real database servers (docker, local, url), roles, probes, a fault proxy;
//! * [`schedule`], [`runner`], [`checker`]: what a case does, playing it, judging it;
//! * [`scenario`]: scenario files (a schedule and what a person expects of it);
//! * [`report`]: JSON, JUnit XML and Markdown reports of a run;
//! * [`redact`]: the one place secret values become aliases before they leave the process.

pub mod checker;
pub mod database;
pub mod emulator;
pub mod function;
pub mod model;
pub mod redact;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod schedule;
