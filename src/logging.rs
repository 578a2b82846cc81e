//! Logging set-up: `tracing` to standard error, and GDAL's own messages routed into it.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber (filter from `RUST_LOG`, default `info` for Tessera and `warn`
/// for the rest) and sends GDAL's errors and warnings to `tracing`.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,tessera=info"));
    // A second call (tests starting several servers) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    route_gdal_messages();
}

/// Sends GDAL's messages to `tracing` instead of standard error. Only the first call
/// installs the handler: replacing it while another thread reports an error is unsafe.
pub fn route_gdal_messages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_gdal_handler);
}

fn install_gdal_handler() {
    gdal::config::set_error_handler(|class, number, message| {
        use gdal::errors::CplErrType;
        match class {
            CplErrType::Failure | CplErrType::Fatal => {
                tracing::debug!(target: "gdal", number, message, "GDAL error");
            }
            CplErrType::Warning => tracing::debug!(target: "gdal", number, message, "GDAL warning"),
            CplErrType::None | CplErrType::Debug => {}
        }
    });
}
