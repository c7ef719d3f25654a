//! Status lines on stderr in cargo's voice (`     Packing hello (linux/amd64)`), and the
//! engine's progress events turned into them; or, for a library caller, handed to its listener.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use oci_pack::progress::{Event, Progress, Transfer};

use crate::cargo_build::Verbosity;

/// Hears each status line (`"Packing"`, `"hello (linux/amd64)"`) instead of stderr; warnings
/// come with the verb `"warning"`.
pub type StatusListener = std::sync::Arc<dyn Fn(&str, &str) + Send + Sync>;

#[derive(Clone)]
pub struct Shell {
    verbosity: Verbosity,
    color: bool,
    /// Whether stderr is a terminal, where a progress bar may be drawn and redrawn.
    terminal: bool,
    /// When the transfer under way began, and when its bar was last drawn.
    transfer: Option<(Instant, Option<Instant>)>,
    listener: Option<StatusListener>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("verbosity", &self.verbosity)
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

/// A transfer shorter than this shows no bar.
const BAR_AFTER: Duration = Duration::from_millis(500);
/// How often a bar is redrawn.
const BAR_EVERY: Duration = Duration::from_millis(100);

impl Shell {
    pub fn new(verbosity: Verbosity) -> Shell {
        let terminal = std::io::stderr().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none();
        Shell {
            verbosity,
            color,
            terminal,
            transfer: None,
            listener: None,
        }
    }

    /// A shell whose lines go to `listener` rather than stderr (and never draw a bar).
    pub fn with_listener(verbosity: Verbosity, listener: StatusListener) -> Shell {
        Shell {
            color: false,
            terminal: false,
            listener: Some(listener),
            ..Shell::new(verbosity)
        }
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
        if let Some(listener) = &self.listener {
            return listener("warning", &message.to_string());
        }
        let label = if self.color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        let _ = writeln!(std::io::stderr(), "{label}: {message}");
    }

    fn print(&self, verb: &str, color: &str, message: impl std::fmt::Display) {
        if let Some(listener) = &self.listener {
            return listener(verb, &message.to_string());
        }
        let mut stderr = std::io::stderr().lock();
        let _ = if self.color {
            writeln!(stderr, "\x1b[{color}m{verb:>12}\x1b[0m {message}")
        } else {
            writeln!(stderr, "{verb:>12} {message}")
        };
    }
}

impl Shell {
    /// A status line when a transfer starts; on a terminal, a bar while it lasts (cargo's),
    /// erased when it ends.
    fn transfer(&mut self, transfer: &Transfer) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let verb = if transfer.pushing {
            "Pushing"
        } else {
            "Pulling"
        };
        let now = Instant::now();
        let Some((started, drawn)) = self.transfer else {
            self.transfer = Some((now, None));
            self.status(
                verb,
                format_args!(
                    "{} ({} blobs, {})",
                    transfer.repository,
                    transfer.blobs,
                    mib(transfer.bytes)
                ),
            );
            return;
        };
        let finished = transfer.blobs_done == transfer.blobs;
        if finished {
            self.transfer = None;
            if drawn.is_some() {
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            }
            return;
        }
        let due = drawn.is_none_or(|at| now - at >= BAR_EVERY);
        if !self.terminal || now - started < BAR_AFTER || !due {
            return;
        }
        self.transfer = Some((started, Some(now)));
        const WIDTH: usize = 25;
        let filled = (WIDTH as u64 * transfer.bytes_done / transfer.bytes.max(1)) as usize;
        let bar: String = (0..WIDTH)
            .map(|i| match i.cmp(&filled) {
                std::cmp::Ordering::Less => '=',
                std::cmp::Ordering::Equal => '>',
                std::cmp::Ordering::Greater => ' ',
            })
            .collect();
        let verb = if self.color {
            format!("\x1b[1;36m{verb:>12}\x1b[0m")
        } else {
            format!("{verb:>12}")
        };
        let _ = write!(
            std::io::stderr(),
            "\r{verb} [{bar}] {}/{} blobs, {}/{}\x1b[K",
            transfer.blobs_done,
            transfer.blobs,
            mib(transfer.bytes_done),
            mib(transfer.bytes)
        );
    }
}

/// `12.3 MiB`
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

impl Progress for Shell {
    fn on_event(&mut self, event: &Event<'_>) {
        match event {
            Event::Transfer(transfer) => self.transfer(transfer),
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
