//! The subcommands, one module each: its clap flags and an `exec` that makes them into the
//! options of its operation, runs it, and reports.

pub mod build;
pub mod index;
pub mod init;
pub mod inspect;
pub mod push;
pub mod run;
pub mod verify;
