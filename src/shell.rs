//! Status lines on stderr in cargo's voice (`     Packing hello (linux/amd64)`), coloured as
//! cargo colours them and when it would (`--color`, `CARGO_TERM_COLOR`, `NO_COLOR`, a terminal);
//! errors with cargo's `Caused by:` list; the engine's progress events turned into status lines;
//! or, for a library caller, everything handed to its listener.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Effects, Style};
use anyhow::{bail, Result};
use oci_pack::progress::{Event, Transfer};
use oci_pack::Progress;

use crate::text::escape_lines;

/// cargo's palette (`cargo::util::style`).
mod style {
    use super::*;
    /// Status verbs: `   Compiling`, `     Packing`.
    pub const STATUS: Style = AnsiColor::BrightGreen.on_default().effects(Effects::BOLD);
    pub const WARN: Style = AnsiColor::Yellow.on_default().effects(Effects::BOLD);
    pub const ERROR: Style = AnsiColor::BrightRed.on_default().effects(Effects::BOLD);
    /// A progress bar's verb, redrawn in place.
    pub const TRANSIENT: Style = AnsiColor::BrightCyan.on_default().effects(Effects::BOLD);
    /// The `:` after `error` and `warning`.
    pub const BOLD: Style = Style::new().effects(Effects::BOLD);
}

/// Erases the rest of the line (a progress bar's leftovers): a terminal control, not a colour,
/// which anstyle has no name for.
const ERASE_LINE: &str = "\x1b[K";

/// How much is said on stderr (cargo's own messages included), least first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Nothing but errors (cargo's `--quiet`).
    Quiet,
    /// Status lines, as cargo prints them.
    #[default]
    Normal,
    /// Also each layer and manifest as it is written (cargo's `--verbose`).
    Verbose,
    /// As `Verbose`, and cargo's `-vv` (build scripts' output too).
    VeryVerbose,
}

/// `--color WHEN`, and `CARGO_TERM_COLOR`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// Colour on a terminal, unless `NO_COLOR` is set
    Auto,
    /// Colour, even in a pipe
    Always,
    /// No colour, and no escape at all
    Never,
}

impl ColorWhen {
    fn name(self) -> &'static str {
        match self {
            ColorWhen::Auto => "auto",
            ColorWhen::Always => "always",
            ColorWhen::Never => "never",
        }
    }
}

/// What every subcommand takes, as cargo does: how much to say, and in colour or not.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShellOptions {
    /// Use verbose output (-vv very verbose: cargo's too, build scripts' output included)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print nothing but the results and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Coloring [default: `CARGO_TERM_COLOR`, else auto]
    #[arg(long, value_enum, value_name = "WHEN", global = true)]
    pub color: Option<ColorWhen>,
}

impl ShellOptions {
    /// The shell these flags ask for; where a flag is not given, cargo's variables
    /// (`CARGO_TERM_VERBOSE`, `CARGO_TERM_QUIET`, `CARGO_TERM_COLOR`) decide, as for cargo.
    pub fn shell(&self) -> Result<Shell> {
        let env = |name: &str| std::env::var(name).ok();
        let verbosity = self.verbosity(&env)?;
        let color = match self.color {
            Some(when) => Some(when),
            None => color_from_env(&env)?,
        };
        let mut shell = Shell::with_color(verbosity, color);
        shell.color_flag = self.color;
        Ok(shell)
    }

    fn verbosity(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Verbosity> {
        Ok(match (self.verbose, self.quiet) {
            (1.., true) => bail!("cannot set both --verbose and --quiet"),
            (0, true) => Verbosity::Quiet,
            (1, false) => Verbosity::Verbose,
            (2.., false) => Verbosity::VeryVerbose,
            (0, false) => {
                let setting = |name: &str| match env(name).as_deref() {
                    None | Some("false") => Ok(false),
                    Some("true") => Ok(true),
                    Some(other) => bail!(
                        "error in environment variable `{name}`: `{other}` is not `true` or \
                         `false`"
                    ),
                };
                match (setting("CARGO_TERM_VERBOSE")?, setting("CARGO_TERM_QUIET")?) {
                    (true, true) => bail!(
                        "cannot set both `CARGO_TERM_VERBOSE` and `CARGO_TERM_QUIET` to `true`"
                    ),
                    (true, false) => Verbosity::Verbose,
                    (false, true) => Verbosity::Quiet,
                    (false, false) => Verbosity::Normal,
                }
            }
        })
    }
}

/// `CARGO_TERM_COLOR`, if set.
fn color_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<ColorWhen>> {
    use clap::ValueEnum as _;
    match env("CARGO_TERM_COLOR") {
        None => Ok(None),
        Some(value) => match ColorWhen::from_str(&value, false) {
            Ok(when) => Ok(Some(when)),
            Err(_) => bail!(
                "error in environment variable `CARGO_TERM_COLOR`: `{value}` is not one of \
                 `auto`, `always`, `never`"
            ),
        },
    }
}

/// Hears each status line (`"Packing"`, `"hello (linux/amd64)"`) instead of stderr; warnings
/// come with the verb `"warning"`.
pub type StatusListener = std::sync::Arc<dyn Fn(&str, &str) + Send + Sync>;

#[derive(Clone)]
pub struct Shell {
    verbosity: Verbosity,
    /// `Always` or `Never` (`AlwaysAnsi` on a terminal that takes escapes), never `Auto`.
    color: ColorChoice,
    /// `--color` as given, for the cargo runs.
    color_flag: Option<ColorWhen>,
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
            .field("color", &self.color)
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

/// A transfer shorter than this shows no bar.
const BAR_AFTER: Duration = Duration::from_millis(500);
/// How often a bar is redrawn.
const BAR_EVERY: Duration = Duration::from_millis(100);

impl Shell {
    /// The library's shell: coloured as `CARGO_TERM_COLOR` says (a value it does not know is
    /// `auto`), else when stderr is a terminal and `NO_COLOR` is not set.
    pub fn new(verbosity: Verbosity) -> Shell {
        let color = color_from_env(&|name| std::env::var(name).ok()).unwrap_or(None);
        Shell::with_color(verbosity, color)
    }

    /// `color`: `None` is `auto`.
    fn with_color(verbosity: Verbosity, color: Option<ColorWhen>) -> Shell {
        let stderr = std::io::stderr();
        let color = match color.unwrap_or(ColorWhen::Auto) {
            // anstream's rules for `auto` are cargo's: `NO_COLOR`, `CLICOLOR_FORCE`,
            // `TERM=dumb`, a terminal or not.
            ColorWhen::Auto => AutoStream::choice(&stderr),
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Never => ColorChoice::Never,
        };
        Shell {
            verbosity,
            color,
            color_flag: None,
            terminal: stderr.is_terminal(),
            transfer: None,
            listener: None,
        }
    }

    /// A shell whose lines go to `listener` rather than stderr (and never draw a bar).
    pub fn with_listener(verbosity: Verbosity, listener: StatusListener) -> Shell {
        Shell {
            color: ColorChoice::Never,
            terminal: false,
            listener: Some(listener),
            ..Shell::new(verbosity)
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// `--color WHEN` for cargo, when it was given to us: cargo reads `CARGO_TERM_COLOR`
    /// itself.
    pub fn cargo_color(&self) -> Option<&'static str> {
        self.color_flag.map(ColorWhen::name)
    }

    /// stderr, its escapes passed or stripped as the colour choice says.
    fn stderr(&self) -> AutoStream<std::io::StderrLock<'static>> {
        AutoStream::new(std::io::stderr().lock(), self.color)
    }

    /// A right-aligned green verb and a message, unless `--quiet`.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity != Verbosity::Quiet {
            self.print(verb, message);
        }
    }

    /// Extra detail, only with `--verbose`.
    pub fn detail(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.print(verb, message);
        }
    }

    pub fn warn(&self, message: impl std::fmt::Display) {
        if let Some(listener) = &self.listener {
            return listener("warning", &message.to_string());
        }
        let (warn, bold) = (style::WARN, style::BOLD);
        let message = escape_lines(&message.to_string());
        let _ = writeln!(
            self.stderr(),
            "{warn}warning{warn:#}{bold}:{bold:#} {message}"
        );
    }

    /// `error: …` and each cause under its own `Caused by:`, indented, as cargo prints them.
    pub fn error(&self, error: &anyhow::Error) {
        let _ = self.stderr().write_all(error_text(error).as_bytes());
    }

    fn print(&self, verb: &str, message: impl std::fmt::Display) {
        if let Some(listener) = &self.listener {
            return listener(verb, &message.to_string());
        }
        let status = style::STATUS;
        let message = escape_lines(&message.to_string());
        let _ = writeln!(self.stderr(), "{status}{verb:>12}{status:#} {message}");
    }
}

/// What [`Shell::error`] prints, styled.
fn error_text(error: &anyhow::Error) -> String {
    let (red, bold) = (style::ERROR, style::BOLD);
    // An error may quote what an image holds (a tar entry's name): its controls are escaped.
    let message = escape_lines(&error.to_string());
    let mut text = format!("{red}error{red:#}{bold}:{bold:#} {message}\n");
    for cause in error.chain().skip(1) {
        text.push_str("\nCaused by:\n");
        for line in escape_lines(&cause.to_string()).lines() {
            match line.is_empty() {
                true => text.push('\n'),
                false => text.push_str(&format!("  {line}\n")),
            }
        }
    }
    text
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
                let _ = write!(std::io::stderr(), "\r{ERASE_LINE}");
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
        let transient = match self.color {
            ColorChoice::Never => Style::new(),
            _ => style::TRANSIENT,
        };
        let _ = write!(
            std::io::stderr(),
            "\r{transient}{verb:>12}{transient:#} [{bar}] {}/{} blobs, {}/{}{ERASE_LINE}",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(verbose: u8, quiet: bool) -> ShellOptions {
        ShellOptions {
            verbose,
            quiet,
            color: None,
        }
    }

    #[test]
    fn flags_win_over_cargo_term_variables() {
        let quiet = |name: &str| (name == "CARGO_TERM_QUIET").then(|| "true".to_owned());
        let verbose = |name: &str| (name == "CARGO_TERM_VERBOSE").then(|| "true".to_owned());
        let none = |_: &str| None;
        assert_eq!(
            options(0, false).verbosity(&quiet).unwrap(),
            Verbosity::Quiet
        );
        assert_eq!(
            options(0, false).verbosity(&verbose).unwrap(),
            Verbosity::Verbose
        );
        assert_eq!(
            options(1, false).verbosity(&quiet).unwrap(),
            Verbosity::Verbose
        );
        assert_eq!(
            options(0, true).verbosity(&verbose).unwrap(),
            Verbosity::Quiet
        );
        assert_eq!(
            options(2, false).verbosity(&none).unwrap(),
            Verbosity::VeryVerbose
        );
        assert_eq!(
            options(0, false).verbosity(&none).unwrap(),
            Verbosity::Normal
        );
        assert!(options(1, true).verbosity(&none).is_err());
        let both = |_: &str| Some("true".to_owned());
        assert!(options(0, false).verbosity(&both).is_err());
        let wrong = |_: &str| Some("yes".to_owned());
        let error = options(0, false).verbosity(&wrong).unwrap_err().to_string();
        assert!(error.contains("`CARGO_TERM_VERBOSE`: `yes`"), "{error}");
    }

    #[test]
    fn an_error_lists_each_cause_indented_under_caused_by() {
        let error = anyhow::anyhow!("no such file")
            .context("line one\n\nline three")
            .context("failed to read `x`");
        let text = error_text(&error);
        let plain =
            String::from_utf8(anstream::adapter::strip_bytes(text.as_bytes()).into_vec()).unwrap();
        assert_eq!(
            plain,
            "error: failed to read `x`\n\nCaused by:\n  line one\n\n  line three\n\n\
             Caused by:\n  no such file\n"
        );
        assert!(
            text.starts_with("\x1b[1m\x1b[91merror\x1b[0m\x1b[1m:\x1b[0m "),
            "{text:?}"
        );
    }

    #[test]
    fn an_error_quoting_an_image_moves_no_cursor_and_forges_no_line() {
        let error = anyhow::anyhow!("entry `a\u{1b}[2Jb` is hostile")
            .context("failed to read `evil\u{1b}]0;title\u{7}`");
        let text = error_text(&error);
        let plain =
            String::from_utf8(anstream::adapter::strip_bytes(text.as_bytes()).into_vec()).unwrap();
        assert_eq!(
            plain,
            "error: failed to read `evil\\x1b]0;title\\x07`\n\nCaused by:\n  \
             entry `a\\x1b[2Jb` is hostile\n"
        );
    }
}
