//! Wiring and lifecycle: open the store, build the providers, start the scheduler, bind HTTP, and shut down
//! in order on SIGTERM or Ctrl-C. The only place that constructs things.

use crate::clock::{Clock, SystemClock};
use crate::config::Loaded;
use crate::http::{self, AppState};
use crate::providers::Providers;
use crate::scheduler;
use crate::store::Store;
use crate::systemd;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::sync::Arc;

/// Send workers: enough that one slow provider call never holds back every other text.
const SEND_WORKERS: usize = 4;
/// Password hashes computed at once (each takes ~19 MiB for ~40 ms: one thread signs in 25 people a second),
/// and sign-ins that may wait for one.
const HASH_THREADS: usize = 1;
const HASH_QUEUE: usize = 4;
/// After SIGTERM, open HTTP requests get this long to finish.
const GRACEFUL_SECS: u64 = 3;
/// After SIGTERM the process is gone within this, whatever its threads are doing (a provider call that
/// hangs, a stuck worker): everything acknowledged is committed, and a send cut off mid-way is reconciled
/// at the next start, exactly as after a crash.
const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the watchdog's request to our own `/healthz` may take.
const SELF_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs the appliance until SIGTERM or Ctrl-C.
pub fn serve(loaded: Loaded) -> anyhow::Result<()> {
    actix_rt::System::new().block_on(run(loaded))
}

async fn run(loaded: Loaded) -> anyhow::Result<()> {
    let mut config = loaded.config.clone();
    let listener = std::net::TcpListener::bind(&config.server.listen)
        .with_context(|| format!("while binding {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    if config.server.public_url.is_none() {
        // Signatures are computed over the URL the provider called; with no public URL configured that is
        // the address we actually bound (which matters when the port is 0).
        config.server.public_url = Some(format!("http://{addr}"));
    }
    let public_url = config.server.public_base();
    let config = crate::config::Shared::new(config);

    // Held until the process ends: `restore` refuses while it is, and a second server on the same file
    // is refused here.
    let _lock = crate::backup::lock(&loaded.database)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "another textback server is running on {}",
                loaded.database.display()
            )
        })?;
    let storage = config.get().storage.clone();
    let store = Store::open_server(
        &loaded.database,
        storage.busy_timeout.0,
        storage.checkpoints,
    )
    .with_context(|| format!("while opening the database {}", loaded.database.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let simulator = simulator_token(&store).await?;
    let providers = Providers::from_config(&config.get(), &simulator);
    let running = Arc::new(crate::reload::Live::new(
        config.clone(),
        providers.clone(),
        simulator,
        loaded.config.clone(),
        loaded.path.clone(),
    ));
    let scheduler = Arc::new(
        scheduler::spawn(
            scheduler::Deps::new(
                store.clone(),
                providers.clone(),
                config.clone(),
                public_url.clone(),
                Arc::clone(&clock),
            ),
            SEND_WORKERS,
        )
        .context("while starting the scheduler")?,
    );
    let state = web::Data::new(AppState {
        store: store.clone(),
        providers,
        config: config.clone(),
        running: Arc::clone(&running),
        clock,
        scheduler: Arc::clone(&scheduler),
        public_url: public_url.clone(),
        ui: crate::ui::Ui::new().context("while loading the admin UI templates")?,
        limiter: crate::auth::Limiter::default(),
        hasher: crate::auth::Hasher::new(HASH_THREADS, HASH_QUEUE)
            .context("while starting the password hashing threads")?,
        live: tokio::sync::broadcast::channel(256).0,
    });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let https = public_url.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(http::security_headers(&https))
            .app_data(state.clone())
            .configure(http::routes)
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(GRACEFUL_SECS)
    .listen(listener)
    .with_context(|| format!("while listening on {addr}"))?
    .run();

    // Signal handlers go in before the banner announces the server: a signal sent the moment it is up must
    // not meet the default action (SIGHUP would end the process).
    let term = actix_rt::signal::unix::signal(actix_rt::signal::unix::SignalKind::terminate())
        .context("while listening for SIGTERM")?;
    let hangup = actix_rt::signal::unix::signal(actix_rt::signal::unix::SignalKind::hangup())
        .context("while listening for SIGHUP")?;
    print_banner(&loaded, &config.get(), addr, &public_url);
    print_setup_link(&store, &public_url).await?;
    systemd::notify("READY=1");
    let handle = server.handle();
    actix_rt::spawn(async move {
        wait_for_signal(term).await;
        tracing::info!("shutting down");
        systemd::notify("STOPPING=1");
        force_exit_after(SHUTDOWN_DEADLINE);
        handle.stop(true).await;
    });
    if let Some(every) = systemd::watchdog_interval() {
        spawn_watchdog(every, systemd::self_check_url(addr));
    }
    actix_rt::spawn(reload_on_sighup(
        hangup,
        Arc::clone(&running),
        Arc::clone(&scheduler),
    ));
    server.await.context("while serving HTTP")?;
    scheduler.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// The key the built-in simulator signs webhooks with unless its config sets `auth_token`: made at random
/// on the first start and kept in the database, so no two installations share it.
async fn simulator_token(store: &Store) -> anyhow::Result<crate::providers::SimulatorToken> {
    let fresh = crate::auth::new_token();
    let token = store
        .write_async(move |c| {
            crate::store::meta::get_or_insert(c, crate::providers::simulator::TOKEN_KEY, &fresh)
        })
        .await
        .context("while preparing the simulator's signing key")?;
    Ok(crate::providers::SimulatorToken(token))
}

/// Reloads the config file on every SIGHUP, through the same validate-and-swap path as a settings save: an
/// invalid file is logged, problem by problem, and the running configuration stays.
async fn reload_on_sighup(
    mut hangup: actix_rt::signal::unix::Signal,
    running: Arc<crate::reload::Live>,
    scheduler: Arc<scheduler::Handle>,
) {
    while hangup.recv().await.is_some() {
        // The file can appear while running: the first settings save on the built-in defaults writes one.
        let Some(path) = running.path() else {
            tracing::warn!("SIGHUP: running on the built-in defaults, there is no file to reload");
            continue;
        };
        let (p, r) = (path.clone(), Arc::clone(&running));
        match web::block(move || r.reload(&p)).await {
            Ok(Ok(report)) => {
                scheduler.wake();
                tracing::info!(file = %path.display(), changes = %report.summary(), "configuration reloaded");
            }
            Ok(Err(errors)) => {
                for e in &errors.0 {
                    tracing::error!(problem = %e, "configuration not reloaded");
                }
                tracing::error!(
                    file = %path.display(),
                    problems = errors.0.len(),
                    "the file is not valid; the running configuration stays"
                );
            }
            Err(e) => tracing::error!(error = %e, "configuration reload did not finish"),
        }
    }
}

/// Pings the systemd watchdog only while the server proves it works: its own `/healthz`, asked over HTTP
/// like any client would, answers 200 in time (the database answers and takes writes, the scheduler loop
/// runs). A wedged server stops the pings, and systemd restarts it. The check runs on its own thread, so
/// it does not depend on the HTTP workers it is checking.
fn spawn_watchdog(every: std::time::Duration, url: String) {
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            if systemd::answers(&url, SELF_CHECK_TIMEOUT) {
                systemd::notify("WATCHDOG=1");
            } else {
                tracing::error!(%url, "health self-check failed; not pinging the watchdog");
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the watchdog thread");
    }
}

/// Ends the process after `deadline` if the orderly shutdown has not by then.
fn force_exit_after(deadline: std::time::Duration) {
    let _ = std::thread::Builder::new()
        .name("shutdown-deadline".into())
        .spawn(move || {
            std::thread::sleep(deadline);
            tracing::warn!(
                secs = deadline.as_secs(),
                "shutdown took too long; exiting now (work under way is reconciled at the next start)"
            );
            std::process::exit(0);
        });
}

/// While no user exists, prints a one-time link (valid 30 minutes) that creates the first owner.
#[allow(clippy::print_stdout)]
async fn print_setup_link(store: &Store, public_url: &str) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let token = crate::auth::new_token();
    let hash = crate::auth::token_hash(&token);
    let created = store
        .write_async(move |c| {
            if crate::store::users::count(c)? > 0 {
                return Ok(false);
            }
            crate::store::users::create_setup_token(c, &hash, now + crate::auth::SETUP_MS)?;
            Ok::<_, crate::store::Error>(true)
        })
        .await
        .context("while preparing the first-run setup link")?;
    if created {
        println!("No admin user yet. Open this link within 30 minutes to create the owner (it works once):");
        println!("  {public_url}/setup?token={token}");
    }
    Ok(())
}

async fn wait_for_signal(mut term: actix_rt::signal::unix::Signal) {
    tokio_select(term.recv(), actix_rt::signal::ctrl_c()).await;
}

/// Waits for whichever of two futures finishes first.
async fn tokio_select<A, B, RA, RB>(a: A, b: B)
where
    A: std::future::Future<Output = RA>,
    B: std::future::Future<Output = RB>,
{
    let a = std::pin::pin!(a);
    let b = std::pin::pin!(b);
    let mut a = a;
    let mut b = b;
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

#[allow(clippy::print_stdout)]
fn print_banner(
    loaded: &Loaded,
    config: &crate::config::Config,
    addr: std::net::SocketAddr,
    public_url: &str,
) {
    println!(
        "textback {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  config:     {}", loaded.source());
    println!("  database:   {}", loaded.database.display());
    println!("  public url: {public_url}");
    for b in &config.businesses {
        println!(
            "  business:   {} ({}) on {} via provider {:?}",
            b.name,
            b.id,
            b.numbers.join(", "),
            config.provider_name(b)
        );
    }
    if let Some(b) = config.businesses.first() {
        // `simulate` finds the server at server.listen unless told otherwise.
        let url = if addr.to_string() == loaded.config.server.listen {
            String::new()
        } else {
            format!(" --url http://{addr}")
        };
        println!(
            "Try it: textback simulate missed-call --from +14805550111 --to {}{url}",
            b.sender()
        );
    }
}
