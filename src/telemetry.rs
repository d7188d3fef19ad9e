//! Logging, tracing and metrics: human or JSON log lines on stderr, and OpenTelemetry
//! traces and metrics over OTLP/gRPC, configured by the standard `OTEL_*` variables:
//! traces when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, metrics
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._METRICS_ENDPOINT`) is set, every
//! `OTEL_METRIC_EXPORT_INTERVAL` ms; `OTEL_SDK_DISABLED=true` exports nothing, and
//! `OTEL_TRACES_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none` turn one signal off.

use std::fmt::Debug;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Flushes and stops trace and metric export when dropped.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing OpenTelemetry traces at shutdown failed");
        }
        if let Some(meters) = self.meters.take()
            && let Err(error) = meters.shutdown()
        {
            tracing::warn!(%error, "flushing OpenTelemetry metrics at shutdown failed");
        }
    }
}

/// A set, non-blank environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether the standard variables switch a signal on: the SDK not disabled, the
/// signal's exporter not `none`, and an endpoint for it.
fn signal_enabled(exporter_var: &str, endpoint_var: &str) -> Option<String> {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    if env(exporter_var).is_some_and(|v| v.trim().eq_ignore_ascii_case("none")) {
        return None;
    }
    env(endpoint_var).or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// Installs the global subscriber. Must run inside the Tokio runtime (the OTLP exporter
/// shares it).
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(filter).context("log_filter")?;
    let endpoint = signal_enabled("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let metrics_endpoint = signal_enabled(
        "OTEL_METRICS_EXPORTER",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    );
    let meters = match &metrics_endpoint {
        Some(_) => {
            // The exporter reads the endpoint, headers and temporality from OTEL_*; the
            // reader reads OTEL_METRIC_EXPORT_INTERVAL.
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .context("building the OTLP metric exporter")?;
            let meters = SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(LoggedExporter(exporter)).build())
                .with_resource(Resource::builder().with_service_name("safegate").build())
                .build();
            opentelemetry::global::set_meter_provider(meters.clone());
            Some(meters)
        }
        None => None,
    };
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
    if let Some(endpoint) = metrics_endpoint {
        tracing::info!(%endpoint, "exporting metrics over OTLP");
    }
    Ok(TelemetryGuard { provider, meters })
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

impl<E: PushMetricExporter + Debug> PushMetricExporter for LoggedExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.0.export(metrics).await;
        if let Err(error) = &result {
            tracing::warn!(%error, "OpenTelemetry metric export failed; this interval's metrics dropped");
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.0.temporality()
    }
}
