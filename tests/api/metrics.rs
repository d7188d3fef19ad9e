//! Metrics over OTLP: the gateway binary, configured only by the standard `OTEL_*`
//! variables, exports to a real OTLP/gRPC MetricsService built here from the published
//! OpenTelemetry protos; the test makes real calls and checks the metric names,
//! attributes and values received, and that nothing about a person is in any attribute.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use safegate::api::proto::{
    AcknowledgeNoticesRequest, ListNoticesRequest, ListReviewTasksRequest, PersonRef,
    PractitionerContext, Purpose, QueryRequest, ReviewBreakGlassRequest, ReviewOutcome, Role,
    WhoAmIRequest, audit_service_client::AuditServiceClient,
    identity_resolution_service_client::IdentityResolutionServiceClient,
    identity_service_client::IdentityServiceClient,
    notification_service_client::NotificationServiceClient,
    query_service_client::QueryServiceClient,
};
use safegate::demo::case::{self, DEAN_PNC};
use safegate::pki::{CertificateAuthority, Validity};
use tonic::Code;

use crate::helpers::{GatewayProcess, acting, auditor, channel_to, eventually, temp_dir};

/// What the receiver was sent, every export in arrival order.
#[derive(Debug, Clone, Default)]
struct Receiver {
    exports: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Serves OTLP/gRPC (plain HTTP/2, as a collector on loopback does) on a free port.
    async fn serve() -> (Receiver, std::net::SocketAddr) {
        let receiver = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let service = MetricsServiceServer::new(receiver.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (receiver, addr)
    }

    fn all(&self) -> Vec<ExportMetricsServiceRequest> {
        self.exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The metrics of the latest export (cumulative, so it holds every series).
    fn latest(&self) -> Exported {
        let exports = self.all();
        Exported(
            exports
                .last()
                .map(|export| {
                    export
                        .resource_metrics
                        .iter()
                        .flat_map(|r| &r.scope_metrics)
                        .flat_map(|s| &s.metrics)
                        .map(|m| (m.name.clone(), m.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// Waits until the latest export satisfies `check`.
    async fn until(&self, what: &str, check: impl Fn(&Exported) -> bool) -> Exported {
        let met = eventually(Duration::from_secs(30), || {
            let ok = check(&self.latest());
            async move { ok }
        })
        .await;
        assert!(
            met,
            "no export showed {what}: {:#?}",
            self.latest().0.keys()
        );
        self.latest()
    }
}

/// A data point's attributes as text, and its value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Histogram { count: u64, sum: f64 },
}

type Attributes = BTreeMap<String, String>;

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(list: &[KeyValue]) -> Attributes {
    list.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// One export's metrics by name.
struct Exported(BTreeMap<String, opentelemetry_proto::tonic::metrics::v1::Metric>);

impl Exported {
    fn points(&self, name: &str) -> Vec<(Attributes, Value)> {
        let Some(metric) = self.0.get(name) else {
            return Vec::new();
        };
        let number = |p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| match p.value {
            Some(number_data_point::Value::AsDouble(d)) => d,
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            None => f64::NAN,
        };
        match &metric.data {
            Some(metric::Data::Gauge(g)) => g
                .data_points
                .iter()
                .map(|p| (attributes(&p.attributes), Value::Number(number(p))))
                .collect(),
            Some(metric::Data::Sum(s)) => s
                .data_points
                .iter()
                .map(|p| (attributes(&p.attributes), Value::Number(number(p))))
                .collect(),
            Some(metric::Data::Histogram(h)) => h
                .data_points
                .iter()
                .map(|p| {
                    (
                        attributes(&p.attributes),
                        Value::Histogram {
                            count: p.count,
                            sum: p.sum.unwrap_or(f64::NAN),
                        },
                    )
                })
                .collect(),
            other => panic!("{name}: unexpected data {other:?}"),
        }
    }

    /// The value of the one point of `name` whose attributes include all of `with`.
    fn value(&self, name: &str, with: &[(&str, &str)]) -> Option<Value> {
        let matching: Vec<Value> = self
            .points(name)
            .into_iter()
            .filter(|(attrs, _)| {
                with.iter()
                    .all(|(k, v)| attrs.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .collect();
        assert!(matching.len() <= 1, "{name} {with:?}: {matching:?}");
        matching.into_iter().next()
    }

    fn number(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        match self.value(name, with) {
            None => None,
            Some(Value::Number(n)) => Some(n),
            Some(other) => panic!("{name} {with:?}: not a number: {other:?}"),
        }
    }

    fn calls(&self, with: &[(&str, &str)]) -> u64 {
        match self.value("rpc.server.call.duration", with) {
            Some(Value::Histogram { count, .. }) => count,
            None => 0,
            other => panic!("rpc.server.call.duration: {other:?}"),
        }
    }
}

fn rpc<'a>(service: &'a str, method: &'a str, code: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("rpc.system", "grpc"),
        ("rpc.service", service),
        ("rpc.method", method),
        ("rpc.grpc.status_code", code),
    ]
}

fn dean() -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(safegate::api::proto::person_ref::Ref::Identifier(
            safegate::api::proto::Identifier {
                scheme: safegate::api::proto::IdentifierScheme::PncId.into(),
                value: DEAN_PNC.into(),
                namespace: String::new(),
            },
        )),
    })
}

fn school(break_glass: bool) -> PractitionerContext {
    PractitionerContext {
        practitioner_id: "DSL-0900".into(),
        role: Role::SchoolDsl.into(),
        purpose: Purpose::ChildSafeguarding.into(),
        break_glass,
        justification: if break_glass {
            "Ben disclosed at breakfast club that his father visits at night".into()
        } else {
            String::new()
        },
    }
}

/// Every attribute value anywhere in the exports: resource, scope and data points.
fn every_attribute(exports: &[ExportMetricsServiceRequest]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let mut add = |list: &[KeyValue]| {
        all.extend(list.iter().map(|kv| (kv.key.clone(), text(&kv.value))));
    };
    for export in exports {
        for resource in &export.resource_metrics {
            if let Some(r) = &resource.resource {
                add(&r.attributes);
            }
            for scope in &resource.scope_metrics {
                if let Some(s) = &scope.scope {
                    add(&s.attributes);
                }
                for m in &scope.metrics {
                    match &m.data {
                        Some(metric::Data::Gauge(g)) => {
                            g.data_points.iter().for_each(|p| add(&p.attributes))
                        }
                        Some(metric::Data::Sum(s)) => {
                            s.data_points.iter().for_each(|p| add(&p.attributes))
                        }
                        Some(metric::Data::Histogram(h)) => {
                            h.data_points.iter().for_each(|p| add(&p.attributes))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    all
}

/// The metrics a data point may carry as attributes; anything else could be a leak.
const ALLOWED_POINT_ATTRIBUTES: &[&str] = &[
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
    "safegate.system",
    "safegate.outcome",
    "safegate.recipient_system",
    "safegate.review_queue",
    "safegate.review_state",
    "safegate.policy_version",
    "safegate.authority",
];

#[tokio::test(flavor = "multi_thread")]
async fn metrics_reach_a_real_otlp_receiver_with_values_and_no_personal_data() {
    let (receiver, receiver_addr) = Receiver::serve().await;
    let dir = temp_dir("metrics");
    let gateway = GatewayProcess::start(
        &dir,
        None,
        &[
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                format!("http://{receiver_addr}"),
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
        ],
    )
    .await;
    assert!(
        gateway.log().contains("exporting metrics over OTLP"),
        "{}",
        gateway.log()
    );

    // Real traffic: the whole case published through the API, then questions.
    let loaded = case::load(gateway.addr, &gateway.pki)
        .await
        .expect("the case loads");
    let whoami = IdentityServiceClient::new(gateway.channel("nursery").await);
    for _ in 0..3 {
        whoami
            .clone()
            .who_am_i(WhoAmIRequest {
                context: Some(acting("nursery")),
            })
            .await
            .expect("WhoAmI");
    }
    let school_channel = gateway.channel("primary-school").await;
    let refused = QueryServiceClient::new(school_channel.clone())
        .query(QueryRequest {
            context: Some(school(false)),
            subject: dean(),
            search: None,
        })
        .await
        .expect_err("the school has no involvement");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let break_glass = QueryServiceClient::new(school_channel)
        .query(QueryRequest {
            context: Some(school(true)),
            subject: dean(),
            search: None,
        })
        .await
        .expect("break-glass is answered")
        .into_inner();
    let unregistered = CertificateAuthority::load(&gateway.pki)
        .expect("the deployment's CA")
        .issue_client("not-in-the-registry", Validity::days(1))
        .expect("certificate");
    let unknown = IdentityServiceClient::new(
        channel_to(gateway.addr, &gateway.ca_pem(), Some(&unregistered))
            .await
            .expect("a trusted CA's certificate connects"),
    )
    .who_am_i(WhoAmIRequest::default())
    .await
    .expect_err("not registered");
    assert_eq!(unknown.code(), Code::Unauthenticated);
    let open_tasks = IdentityResolutionServiceClient::new(gateway.channel("mash").await)
        .list_review_tasks(ListReviewTasksRequest {
            context: Some(acting("mash")),
            include_closed: false,
        })
        .await
        .expect("review tasks")
        .into_inner()
        .tasks
        .len();
    // The recipient with the most notices waiting, and how many.
    let mut waiting = Vec::new();
    for system in [
        "police-iom",
        "health-visiting",
        "childrens-services",
        "gp-practice",
    ] {
        let listed = NotificationServiceClient::new(gateway.channel(system).await)
            .list_notices(ListNoticesRequest {
                context: Some(acting(system)),
                after_cursor: 0,
                limit: 500,
            })
            .await
            .expect("list notices")
            .into_inner()
            .notices;
        waiting.push((listed.len(), system, listed.last().map(|n| n.cursor)));
    }
    waiting.sort();
    let (backlog, recipient, last_cursor) = *waiting.last().expect("recipients");
    assert!(backlog > 0, "the case notifies someone: {waiting:?}");

    // The sampled gauges catch up with the database within an export or two.
    let exported = receiver
        .until("the break-glass query pending review", |e| {
            e.number(
                "safegate.review.backlog",
                &[
                    ("safegate.review_queue", "break_glass"),
                    ("safegate.review_state", "pending"),
                ],
            ) == Some(1.0)
        })
        .await;

    // Per RPC: count by service, method, status and calling system.
    let whoami_ok = [
        rpc("safegate.v1.IdentityService", "WhoAmI", "0"),
        vec![("safegate.system", "nursery")],
    ]
    .concat();
    assert_eq!(exported.calls(&whoami_ok), 3);
    let school_refused = [
        rpc("safegate.v1.QueryService", "Query", "7"),
        vec![("safegate.system", "primary-school")],
    ]
    .concat();
    assert_eq!(exported.calls(&school_refused), 1);
    let school_answered = [
        rpc("safegate.v1.QueryService", "Query", "0"),
        vec![("safegate.system", "primary-school")],
    ]
    .concat();
    assert_eq!(exported.calls(&school_answered), 1);
    let unauthenticated = exported
        .points("rpc.server.call.duration")
        .into_iter()
        .filter(|(a, _)| a.get("rpc.grpc.status_code").map(String::as_str) == Some("16"))
        .collect::<Vec<_>>();
    assert_eq!(unauthenticated.len(), 1, "{unauthenticated:?}");
    assert!(
        !unauthenticated[0].0.contains_key("safegate.system"),
        "an unregistered caller has no system"
    );
    assert!(matches!(unauthenticated[0].1, Value::Histogram { count: 1, sum } if sum > 0.0));
    // Review backlogs, the policy in force and the certificates' expiry.
    let review = |queue: &str, state: &str| {
        exported.number(
            "safegate.review.backlog",
            &[
                ("safegate.review_queue", queue),
                ("safegate.review_state", state),
            ],
        )
    };
    assert_eq!(review("break_glass", "overdue"), Some(0.0));
    assert_eq!(review("identity_review", "open"), Some(open_tasks as f64));
    assert_eq!(
        exported.number(
            "safegate.policy.in_force",
            &[(
                "safegate.policy_version",
                break_glass.policy_version.as_str()
            )]
        ),
        Some(1.0)
    );
    assert_eq!(exported.points("safegate.policy.in_force").len(), 1);
    let server_days = exported
        .number("safegate.tls.server_certificate.expiry", &[])
        .expect("server certificate expiry");
    assert!((364.0..=365.1).contains(&server_days), "{server_days}");
    let ca_days = exported
        .number(
            "safegate.registry.authority.expiry",
            &[("safegate.authority", "dev-ca")],
        )
        .expect("authority expiry");
    assert!(
        (5.0 * 365.0 - 1.0..=5.0 * 365.0 + 0.1).contains(&ca_days),
        "{ca_days}"
    );

    // Notifications: the backlog per recipient is what it can list, then drains.
    let recipient_attr = [("safegate.recipient_system", recipient)];
    assert_eq!(
        exported.number("safegate.notifications.backlog", &recipient_attr),
        Some(backlog as f64),
        "{recipient}"
    );
    let lag = exported
        .number("safegate.notifications.delivery_lag", &recipient_attr)
        .expect("lag");
    assert!(lag > 0.0, "{lag}");
    NotificationServiceClient::new(gateway.channel(recipient).await)
        .acknowledge_notices(AcknowledgeNoticesRequest {
            context: Some(acting(recipient)),
            cursor: last_cursor.expect("a last notice"),
        })
        .await
        .expect("acknowledge");
    AuditServiceClient::new(gateway.channel("ig-office").await)
        .review_break_glass(ReviewBreakGlassRequest {
            context: Some(auditor()),
            entry_id: break_glass.disclosure_entry_id.clone(),
            outcome: ReviewOutcome::Appropriate.into(),
            note: "Immediate risk was disclosed".into(),
        })
        .await
        .expect("review");
    let drained = receiver
        .until(
            "the acknowledged backlog and the reviewed break-glass",
            |e| {
                e.number("safegate.notifications.backlog", &recipient_attr) == Some(0.0)
                    && e.number(
                        "safegate.review.backlog",
                        &[
                            ("safegate.review_queue", "break_glass"),
                            ("safegate.review_state", "pending"),
                        ],
                    ) == Some(0.0)
            },
        )
        .await;
    assert_eq!(
        drained.number("safegate.notifications.delivery_lag", &recipient_attr),
        Some(0.0)
    );

    // The ledger: every entry committed is in exactly one batch.
    let entries = count_entries(&gateway).await;
    let ledger = receiver
        .until("every committed entry in the batch sizes", |e| {
            matches!(
                e.value("safegate.ledger.batch.size", &[("safegate.outcome", "committed")]),
                Some(Value::Histogram { sum, .. }) if sum == entries as f64
            )
        })
        .await;
    let Some(Value::Histogram { count: batches, .. }) = ledger.value(
        "safegate.ledger.batch.size",
        &[("safegate.outcome", "committed")],
    ) else {
        panic!("no batches");
    };
    assert!(
        batches >= 1 && batches <= entries,
        "{batches} batches of {entries}"
    );
    assert!(matches!(
        ledger.value("safegate.ledger.commit.duration", &[("safegate.outcome", "committed")]),
        Some(Value::Histogram { count, sum }) if count == batches && sum > 0.0
    ));

    // Every documented metric arrived.
    let names: BTreeSet<String> = ledger.0.keys().cloned().collect();
    for name in [
        "rpc.server.call.duration",
        "safegate.ledger.batch.size",
        "safegate.ledger.commit.duration",
        "safegate.notifications.backlog",
        "safegate.notifications.delivery_lag",
        "safegate.review.backlog",
        "safegate.policy.in_force",
        "safegate.tls.server_certificate.expiry",
        "safegate.registry.authority.expiry",
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }

    // Nothing about a person in any attribute of any export: no name, date of birth,
    // address, identifier, person id, practitioner id or free text from the requests.
    let mut personal: Vec<String> = [
        "Chloe",
        "Carter",
        "Dean",
        "Mills",
        "Milles",
        "Amy",
        "Ben ",
        "1995-08-23",
        "1990-04-12",
        "SO22",
        "SO23",
        "Willow",
        "Synthetic Close",
        "Exampletown",
        case::AMY_NHS,
        case::BEN_NHS,
        case::CHLOE_NHS,
        case::DEAN_NHS,
        DEAN_PNC,
        case::CHLOE_POLICE,
        case::CHLOE_CSC,
        case::AMY_CSC,
        case::BEN_CSC,
        case::DEAN_CSC,
        case::DEAN_PROBATION,
        "IOM-0001",
        "OM-0001",
        "HV-0001",
        "GP-0001",
        "SW-0001",
        "MASH-0001",
        "DSL-0001",
        "DSL-0900",
        "IG-0001",
        "breakfast club",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    personal.extend(loaded.persons.values().cloned());
    personal.extend(loaded.agency_persons.iter().map(|(_, id)| id.clone()));
    personal.push(break_glass.disclosure_entry_id.clone());
    let exports = receiver.all();
    let attributes = every_attribute(&exports);
    assert!(attributes.len() > 50, "{} attributes", attributes.len());
    for (key, value) in &attributes {
        for word in &personal {
            assert!(
                !value.contains(word.as_str()),
                "attribute {key} carries personal data"
            );
        }
    }
    for export in &exports {
        for point_key in export
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .flat_map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => g
                    .data_points
                    .iter()
                    .flat_map(|p| &p.attributes)
                    .collect::<Vec<_>>(),
                Some(metric::Data::Sum(s)) => {
                    s.data_points.iter().flat_map(|p| &p.attributes).collect()
                }
                Some(metric::Data::Histogram(h)) => {
                    h.data_points.iter().flat_map(|p| &p.attributes).collect()
                }
                _ => Vec::new(),
            })
            .map(|kv| kv.key.as_str())
        {
            assert!(
                ALLOWED_POINT_ATTRIBUTES.contains(&point_key),
                "unexpected attribute {point_key}"
            );
        }
    }

    let status = gateway.stop().await;
    assert!(status.success(), "exit status {status:?}");
}

/// Entries in the gateway's disclosure log, read from its database directly.
async fn count_entries(gateway: &GatewayProcess) -> u64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&gateway.database.url())
        .await
        .expect("connect to the gateway's database");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM disclosure_log")
        .fetch_one(&pool)
        .await
        .expect("count entries");
    pool.close().await;
    u64::try_from(count).expect("a count")
}
