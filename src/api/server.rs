//! The gRPC server: the layers every call passes (metrics, the caller's identity, the
//! message size), health and reflection, and one tonic service per domain service, over
//! the mutual-TLS connections `crate::tls` accepts. `startup` builds the domain services
//! and hands them over; nothing outside `api` names tonic.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::api::alerts::AlertApi;
use crate::api::audit::AuditApi;
use crate::api::caller_layer::CallerLayer;
use crate::api::contact::ContactApi;
use crate::api::identity::IdentityApi;
use crate::api::message_size::MessageSizeLayer;
use crate::api::notifications::NotificationApi;
use crate::api::proto::{
    self, admin_service_server::AdminServiceServer, alert_service_server::AlertServiceServer,
    audit_service_server::AuditServiceServer, contact_service_server::ContactServiceServer,
    identity_resolution_service_server::IdentityResolutionServiceServer,
    identity_service_server::IdentityServiceServer,
    notification_service_server::NotificationServiceServer,
    query_service_server::QueryServiceServer, records_service_server::RecordsServiceServer,
};
use crate::api::query::{AdminApi, QueryApi};
use crate::api::records::RecordsApi;
use crate::api::resolution::ResolutionApi;
use crate::api::rpc_metrics::RpcMetricsLayer;
use crate::domain::alerts::Cases;
use crate::domain::contact::Contacts;
use crate::domain::identity::Steward;
use crate::domain::ledger::Ledger;
use crate::domain::notify::Deliveries;
use crate::domain::publish::Records;
use crate::domain::query::Queries;
use crate::registry::RegistryHolder;
use crate::reload::Reloader;
use crate::tls::TlsHolder;

/// The gRPC services whose health follows the database.
const SERVICES: &[&str] = &["safegate.v1.IdentityService", "safegate.v1.RecordsService"];

/// The domain services the gRPC services answer with.
pub struct Services {
    pub ledger: Ledger,
    pub registry: Arc<RegistryHolder>,
    pub reloader: Arc<Reloader>,
    pub cases: Cases,
    pub deliveries: Deliveries,
    pub queries: Queries,
    pub contacts: Contacts,
    pub records: Records,
    pub steward: Steward,
}

/// What the standard gRPC health service reports, for the whole server and for the
/// services that need the database.
pub struct Health {
    reporter: HealthReporter,
}

impl Health {
    /// SERVING or NOT_SERVING, as the database is reachable or not.
    pub async fn set_serving(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for service in SERVICES {
            self.reporter.set_service_status(*service, status).await;
        }
    }
}

/// A server ready to serve, and the health it reports.
pub struct Grpc {
    services: Services,
    health_service: HealthServer<HealthService>,
}

/// The server's health reporter and the server that reports it.
pub fn server(services: Services) -> (Health, Grpc) {
    let reporter = HealthReporter::new();
    let health_service = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
    (
        Health { reporter },
        Grpc {
            services,
            health_service,
        },
    )
}

impl Grpc {
    /// Serves on `listener` (TLS per connection from `tls`) until `signal` completes, then
    /// lets calls in flight finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Arc<TlsHolder>,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Grpc {
            services: s,
            health_service,
        } = self;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        Server::builder()
            .layer(RpcMetricsLayer::new())
            .layer(CallerLayer::new(s.registry, s.ledger.clone()))
            .layer(MessageSizeLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(AdminServiceServer::new(AdminApi::new(
                s.reloader,
                s.ledger.clone(),
            )))
            .add_service(AuditServiceServer::new(AuditApi::new(s.ledger.clone())))
            .add_service(AlertServiceServer::new(AlertApi::new(s.cases)))
            .add_service(NotificationServiceServer::new(NotificationApi::new(
                s.deliveries,
                s.ledger.clone(),
            )))
            .add_service(QueryServiceServer::new(QueryApi::new(
                s.queries,
                s.ledger.clone(),
            )))
            .add_service(ContactServiceServer::new(ContactApi::new(
                s.contacts,
                s.ledger.clone(),
            )))
            .add_service(IdentityServiceServer::new(IdentityApi::new(
                s.ledger.clone(),
            )))
            .add_service(RecordsServiceServer::new(RecordsApi::new(
                s.records,
                s.ledger.clone(),
            )))
            .add_service(IdentityResolutionServiceServer::new(ResolutionApi::new(
                s.steward, s.ledger,
            )))
            .serve_with_incoming_shutdown(incoming(listener, tls), signal)
            .await
            .map_err(|error| anyhow::anyhow!("serving gRPC: {error}"))
    }
}

/// Accepted connections with Nagle's algorithm off, so a response's small trailer frame
/// is not held back waiting for the client's delayed ACK (about 40 ms per call), and
/// with TCP keepalive so dead peers are noticed.
/// Each one's TLS handshake uses the configuration in force when it arrives.
fn incoming(
    listener: TcpListener,
    tls: Arc<TlsHolder>,
) -> impl tokio_stream::Stream<
    Item = Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, std::io::Error>,
> {
    let tcp = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    crate::tls::incoming(tcp, tls)
}
