//! Logging and tracing: human or JSON log lines on stderr, and OpenTelemetry traces over
//! OTLP when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use std::fmt::Debug;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Flushes and stops trace export when dropped.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing OpenTelemetry traces at shutdown failed");
        }
    }
}

/// Installs the global subscriber. Must run inside the Tokio runtime (the OTLP exporter
/// shares it).
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(filter).context("log_filter")?;
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty());
    let provider = match &endpoint {
        Some(_) => {
            // The exporter reads the endpoint and headers from the standard OTEL_* variables.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .context("building the OTLP span exporter")?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(LoggedExporter(exporter))
                    .with_resource(Resource::builder().with_service_name("safegate").build())
                    .build(),
            )
        }
        None => None,
    };
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("safegate")));
    // Colour only for a person at a terminal; files and collectors get plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt_layer = match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .context("installing the tracing subscriber")?;
    if let Some(endpoint) = endpoint {
        tracing::info!(%endpoint, "exporting traces over OTLP");
    }
    Ok(TelemetryGuard { provider })
}

/// Wraps an exporter so failed exports are logged; with the SDK's internal logs off
/// they would otherwise vanish silently.
#[derive(Debug)]
struct LoggedExporter<E>(E);

impl<E: SpanExporter + Debug> SpanExporter for LoggedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.0.export(batch).await;
        if let Err(error) = &result {
            tracing::warn!(%error, spans, "OpenTelemetry span export failed; spans dropped");
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}
