//! What the verbs print on stderr, in flux's words and symbols (`►` doing,
//! `✔` done, `◎` waiting, `✗` failed), a spinner while waiting, and the
//! terminal facts the table needs. Colour and the spinner only on a
//! terminal, never with `NO_COLOR` set (<https://no-color.org>).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether to colour a stream that is (or is not) a terminal.
pub fn colour(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// stdout's terminal width, when stdout is a terminal.
pub fn stdout_width() -> Option<usize> {
    let term = console::Term::stdout();
    if !std::io::stdout().is_terminal() {
        return None;
    }
    term.size_checked().map(|(_rows, cols)| usize::from(cols))
}

/// The stderr logger.
#[derive(Clone, Copy, Debug)]
pub struct Log {
    tty: bool,
    colour: bool,
}

impl Default for Log {
    fn default() -> Self {
        let tty = std::io::stderr().is_terminal();
        Log {
            tty,
            colour: colour(tty),
        }
    }
}

impl Log {
    fn line(&self, symbol: &str, colour: &str, message: &str) {
        if self.colour {
            eprintln!("\x1b[{colour}m{symbol}\x1b[0m {message}");
        } else {
            eprintln!("{symbol} {message}");
        }
    }

    /// `► message`: something is being done.
    pub fn action(&self, message: &str) {
        self.line("►", "36", message);
    }

    /// `✔ message`.
    pub fn success(&self, message: &str) {
        self.line("✔", "32", message);
    }

    /// `✗ message`.
    pub fn failure(&self, message: &str) {
        self.line("✗", "31", message);
    }

    /// `◎ message`, then a spinner (on a terminal) until the returned guard
    /// is dropped.
    pub fn waiting(&self, message: &str) -> Spinner {
        self.line("◎", "33", message);
        if !self.tty {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(bar))
    }
}

/// A running spinner, cleared when dropped.
pub struct Spinner(Option<ProgressBar>);

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
