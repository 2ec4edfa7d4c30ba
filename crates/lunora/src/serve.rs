//! `lunora serve`: wires the database, the media engine and the servers together, and stops them
//! in order on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use lunora_api::bootstrap::Bootstrap;

use crate::config::{Config, LogFormat};

/// Runs the server until a signal; the exit code says how it ended.
pub fn run(config: Config) -> ExitCode {
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lunora")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line a person can act on, with its causes.
            tracing::error!("{e:#}");
            eprintln!("lunora: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(version = lunora_api::VERSION, "starting lunora");
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;

    let db_config = lunora_store::DbConfig::new(&config.database_url);
    let db = lunora_store::Db::open(&db_config)
        .await
        .context("the database is not usable")?;
    tracing::info!(
        backend = db.backend().name(),
        target = db.target(),
        "database ready"
    );

    let secrets = lunora_store::SecretBox::load_or_create(&config.master_key_file)
        .context("the master key is not usable")?;
    match lunora_api::bootstrap::first_admin(
        &db,
        config.admin_email.as_deref(),
        config.admin_password.as_deref(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the first administrator: {}", e.detail))?
    {
        Bootstrap::Created { email } => tracing::info!(%email, "created the first administrator"),
        Bootstrap::NoAdministrator => tracing::warn!(
            "no accounts yet: set LUNORA_ADMIN_EMAIL and LUNORA_ADMIN_PASSWORD and restart to create the first administrator"
        ),
        Bootstrap::Existing => {}
    }

    let extra_ca = match &config.rtmps_extra_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the extra CA file {}", path.display()))?,
        ),
        None => None,
    };
    let engine = Arc::new(lunora_media::Engine::default());
    let metrics = lunora_api::install_metrics();
    // Bound before the API is configured: publish URLs name the port actually bound (port 0
    // in the configuration picks a free one).
    let rtmp = bind(config.rtmp_addr, "rtmp").await?;
    let rtmp_port = rtmp
        .local_addr()
        .map_or(config.rtmp_addr.port(), |a| a.port());
    let api_config = lunora_api::ApiConfig {
        data_dir: config.data_dir.clone(),
        body_limit: config.http_body_limit,
        request_timeout: config.http_request_timeout,
        disk_min_free_bytes: config.storage_min_free_bytes,
        rtmp_port,
        rtmp_public_url: config.rtmp_public_url.clone(),
        auth: config.auth.clone(),
        storage: config.storage.clone(),
        push_tls: Some(Arc::new(
            lunora_media::push::tls_config(extra_ca.as_deref())
                .map_err(|e| anyhow::anyhow!("RTMPS settings: {e}"))?,
        )),
        ..Default::default()
    };
    let state = lunora_api::AppState::new(db.clone(), engine.clone(), secrets, api_config, metrics);
    lunora_api::spawn_maintenance(state.clone());
    let closed = db.close_orphan_sessions().await?;
    if closed > 0 {
        tracing::warn!(
            sessions = closed,
            "closed streaming sessions left open by the last run"
        );
    }

    let (stop_media, media_stopped) = tokio::sync::watch::channel(false);
    // RTMP and SRT ingest share one authorizer (SRT publishers are judged by `sources`).
    let ingest_auth = lunora_api::sources::authorizer(
        &state,
        lunora_api::hls::OutputHooks::wrap(
            lunora_api::ingest::DbAuthorizer::new(
                db.clone(),
                state.play_tokens.clone(),
                state.events.clone(),
            ),
            &state,
        ),
    );
    let rtmp_task = tokio::spawn(lunora_media::rtmp_server::serve(
        rtmp,
        engine.clone(),
        ingest_auth.clone(),
        lunora_media::rtmp_server::RtmpServerConfig::default(),
        media_stopped.clone(),
    ));
    let srt = lunora_media::srt_server::bind(config.srt_addr)
        .await
        .with_context(|| format!("cannot listen for srt on {}", config.srt_addr))?;
    tracing::info!(service = "srt", addr = %srt.local_addr(), "listening");
    let srt_port = srt.local_addr().port();
    let srt_task = tokio::spawn(lunora_media::srt_server::serve(
        srt,
        engine.clone(),
        ingest_auth,
        lunora_media::srt_server::SrtServerConfig::default(),
        media_stopped,
    ));
    // Stored source redundancy settings, SRT callers and the switch event relay.
    let sources_relay = lunora_api::sources::start(&state, srt_port).await;
    // Live HLS, thumbnails and recordings: started per live channel, stopped with the media.
    lunora_api::hls::spawn(&state, stop_media.subscribe());
    lunora_api::recordings::spawn(&state, stop_media.subscribe());
    lunora_api::tiers::spawn(state.clone(), stop_media.subscribe());
    lunora_api::backups::spawn(state.clone(), stop_media.subscribe());
    lunora_api::viewer::subscriptions::spawn_settler(
        state.clone(),
        config.viewer_settle_interval,
        stop_media.subscribe(),
    );

    let camera_monitor = lunora_api::cameras::spawn_monitor(state.clone());
    let alert_rules = lunora_api::alerts::spawn_evaluator(state.clone());
    let camera_pulls = lunora_api::pull::spawn_reconciler(state.clone());
    let http = bind(config.http_addr, "http").await?;
    let shutdown = CancellationToken::new();
    let app = lunora_api::app(state.clone());
    let http_task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            axum::serve(
                http,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
        }
    });

    wait_for_signal().await;
    tracing::info!(
        grace_seconds = config.shutdown_grace.as_secs_f64(),
        "shutting down: draining in-flight requests"
    );
    shutdown.cancel();
    let _ = stop_media.send(true);
    match tokio::time::timeout(config.shutdown_grace, http_task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("in-flight requests did not finish within the grace period"),
    }
    camera_monitor.abort();
    alert_rules.abort();
    camera_pulls.abort();
    state.pulls.stop_all();
    state.streaming.stop_all(&state, "server_stopped").await;
    state
        .recordings
        .stop_all(std::time::Duration::from_secs(3))
        .await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), rtmp_task).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), srt_task).await;
    sources_relay.abort();
    engine.shutdown();
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: SocketAddr, service: &'static str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {service} on {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(service, addr = %bound, "listening");
    Ok(listener)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
