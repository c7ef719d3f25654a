//! Status lines on stderr in cargo's voice (`     Packing hello (linux/amd64)`), and the
//! engine's progress events turned into them.

use std::io::{IsTerminal, Write};

use oci_pack::progress::{Event, Progress};

use crate::cargo_build::Verbosity;

#[derive(Debug, Clone)]
pub struct Shell {
    verbosity: Verbosity,
    color: bool,
}

impl Shell {
    pub fn new(verbosity: Verbosity) -> Shell {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Shell { verbosity, color }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// A right-aligned green verb and a message, unless `--quiet`.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity != Verbosity::Quiet {
            self.print(verb, "1;32", message);
        }
    }

    /// Extra detail, only with `--verbose`.
    pub fn detail(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity == Verbosity::Verbose {
            self.print(verb, "1;36", message);
        }
    }

    pub fn warn(&self, message: impl std::fmt::Display) {
        let label = if self.color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        let _ = writeln!(std::io::stderr(), "{label}: {message}");
    }

    fn print(&self, verb: &str, color: &str, message: impl std::fmt::Display) {
        let mut stderr = std::io::stderr().lock();
        let _ = if self.color {
            writeln!(stderr, "\x1b[{color}m{verb:>12}\x1b[0m {message}")
        } else {
            writeln!(stderr, "{verb:>12} {message}")
        };
    }
}

impl Progress for Shell {
    fn on_event(&mut self, event: &Event<'_>) {
        match event {
            Event::LayerWritten { layer, created_by } => self.detail(
                "Layer",
                format_args!(
                    "{} ({} bytes): {created_by}",
                    layer.descriptor.digest, layer.descriptor.size
                ),
            ),
            Event::ImageWritten { platform, manifest } => {
                self.detail("Manifest", format_args!("{} ({platform})", manifest.digest))
            }
            _ => {}
        }
    }
}
