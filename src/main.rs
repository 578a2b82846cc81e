//! The `tessera` command: `serve`, `render`, `atlas` and `info`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use tessera::config::Config;
use tessera::server::{self, AppState};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tile and map server for human-rights investigations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve tiles, TileJSON and the viewer. With no PATH and no --config, serves what is in
    /// ./geodata and ./tiles.
    Serve {
        /// Files and folders to serve instead of ./geodata and ./tiles.
        paths: Vec<PathBuf>,
        /// Address and port to listen on; port 0 picks a free port.
        #[arg(long, env = "TESSERA_LISTEN")]
        listen: Option<SocketAddr>,
        /// Configuration file (TOML) naming sources and options.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Rendering threads; 0 is one per core.
        #[arg(long)]
        workers: Option<usize>,
        /// Base URL that clients use to reach this server, when it is behind a proxy.
        #[arg(long, env = "TESSERA_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// Render a static map of a style to a PNG, JPEG, GeoTIFF or PDF file, without a server.
    Render(Box<tessera::map::cli::RenderArgs>),
    /// Write a PDF atlas: an overview map, an index and a map page per feature of a layer.
    Atlas(Box<tessera::map::atlas::AtlasArgs>),
    /// Render the tiles of an area into the disk cache; a second run after an interruption
    /// renders only what is left.
    Seed(tessera::offline::SeedArgs),
    /// Write the tiles of an area into a PMTiles or MBTiles archive for offline use.
    Export(tessera::offline::ExportArgs),
    /// Print what a file is: CRS, bounds, bands, data type, resolution, overviews, layers.
    Info {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make access keys for private sources: `tessera key new --groups camps`.
    Key(tessera::access::KeyCommand),
}

const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

fn main() -> ExitCode {
    tessera::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            paths,
            listen,
            config,
            workers,
            public_url,
        } => serve(paths, listen, config.as_deref(), workers, public_url),
        Command::Info { file, json } => tessera::info::print(&file, json),
        Command::Key(command) => tessera::access::run_key_command(command),
        Command::Render(args) => tessera::map::cli::run(&args),
        Command::Atlas(args) => tessera::map::atlas::run_and_report(&args),
        Command::Seed(args) => tessera::offline::run_seed(args),
        Command::Export(args) => tessera::offline::run_export(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    paths: Vec<PathBuf>,
    listen: Option<SocketAddr>,
    config_path: Option<&Path>,
    workers: Option<usize>,
    public_url: Option<String>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut config = match config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if !paths.is_empty() {
        config.paths = paths;
    } else if config_path.is_none() {
        config.paths = tessera::config::DEFAULT_FOLDERS
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect();
        if config.paths.is_empty() {
            tracing::warn!(
                "no ./geodata or ./tiles folder here: pass files or folders to serve, or --config"
            );
        }
    }
    if let Some(workers) = workers {
        config.workers = workers;
    }
    if public_url.is_some() {
        config.public_url = public_url;
    }
    let listen = listen.or(config.listen).unwrap_or_else(|| {
        DEFAULT_LISTEN
            .parse()
            .expect("the default address is valid")
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = AppState::load(config).await?;
        for failure in state.failures.iter() {
            eprintln!("not served: {}: {}", failure.path.display(), failure.reason);
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|error| anyhow::anyhow!("cannot listen on {listen}: {error}; choose another address with --listen"))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, sources = state.catalog.len(), elapsed_ms = started.elapsed().as_millis(), "listening");
        #[allow(clippy::print_stdout, reason = "the address is the command's output")]
        {
            println!("Tessera is serving {} sources at http://{address}/", state.catalog.len());
        }
        server::serve(listener, state).await?;
        Ok(())
    })
}
