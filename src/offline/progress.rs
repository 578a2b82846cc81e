//! The progress bar of `seed` and `export`.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Returns a progress bar of `total` tiles on standard error, hidden when standard error is
/// not a terminal (a log file, a CI job, a test).
pub(super) fn progress_bar(total: u64, verb: &'static str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let style =
        ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} tiles, {per_sec}, {eta} left")
            .expect("the template is valid");
    bar.set_style(style);
    bar.set_message(verb);
    bar
}
