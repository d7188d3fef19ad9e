//! Notification delivery with 100 subscribed agency systems: the time from a publish
//! commit to each subscriber receiving its notice (p50/p99), against a plain
//! `QueryService.Query` round trip measured in the same run.
//!
//! ```sh
//! cargo bench --bench notify                       # SQLite file in a temp dir
//! SAFEGATE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench --bench notify                     # a fresh database on that server
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SAFEGATE_BENCH_TRIGGERS` | 20 | measured triggers (after 2 unmeasured warm-up triggers) |
//! | `SAFEGATE_BENCH_QUERIES` | 20 | Query round trips after each measured trigger's fan-out |
//! | `SAFEGATE_BENCH_DATABASE_URL` | unset (SQLite) | a `postgres://` server: a database `safegate_bench_<uuid>` is created there and dropped at the end |
//!
//! **The systems.** The bench writes its own PKI (`safegate::pki::init`: CA, server
//! certificate, checkpoint key, a client certificate per system) and agency registry into
//! a temp dir: the demo registry (`policies/registry.toml`, unchanged) plus 100 generated
//! receiving systems with SAN `urn:safegate:system:<id>` from the same dev CA: 34 schools
//! (`school_dsl`), 33 health visiting teams (`health_visitor`) and 33 Children's Services
//! teams (`social_worker`). The sharing policy is the repository's `policies/`.
//!
//! **The fan-out.** One adult (published by `police-iom`, with its involvement: the team
//! and contact route a police indicator names) is `parent_of` 100 children;
//! `childrens-services` publishes the children, the links and a child-in-need legal
//! status for each (so every child is known to Children's Services). Receiving system
//! *i* then publishes its own fact about child *i*: an education placement (school), a
//! health-visitor health involvement (health visiting team) or an involvement (CSC team).
//! Each measured trigger is one `Publish` by `police-iom` of a `police_event` of type
//! `DOMESTIC_ABUSE_INCIDENT` naming the adult. Rule 3 (DOMAIN.md) finds the 100 linked
//! children known to CSC and notifies each child's school DSL, health visitor and social
//! worker: 100 notices, exactly one to each receiving system, none to anyone else (the
//! central `childrens-services` system holds the legal statuses but no involvement, and
//! the adult has no IOM lead).
//!
//! **The subscribers.** Each of the 100 systems opens its own mutual-TLS channel and holds
//! one `NotificationService.Subscribe` stream open for the whole run; none acknowledges
//! (acknowledging is a separate RPC and write, not part of delivery). Each subscriber
//! task takes `Instant::now()` as soon as its stream yields a notice and checks it: the
//! trigger's record id, its own child as subject, rule `police_event`, its role, the level
//! its role may see (social worker detail, health visitor and DSL indicator), a
//! disclosure-log entry id, and a cursor above the last one it saw. A missing notice
//! (15 s), a second copy, a notice nobody triggered or a failed stream stops the bench
//! with the evidence.
//!
//! **The clock.** For each trigger, `sent` is just before the `Publish` call and `t0` when
//! its response arrives; the commit happened before `t0`. Delivery latency is `t1 - t0`
//! for every (trigger, subscriber). It can be negative when a delivery overtakes the
//! publish response; if any is, the headline figure is taken from `sent` instead (both
//! are printed, with the count of negatives). Triggers are sequential: the next is
//! published only after all 100 notices of the last arrived, then the Query round trips
//! run, so the two sides alternate and drift on a busy machine hits both.
//!
//! **The query.** `QueryService.Query` as `police-iom` (`iom_officer`,
//! `offender_management`) about Dean of the demo case (loaded through the API first), the
//! same call as `benches/gateway.rs`, one at a time on its own connection: an mTLS
//! round trip with policy, reads and a disclosure-log append, like a delivery.
//!
//! The gateway runs in this process on its own Tokio runtime (`sg-server` threads, with
//! its logging as `safegate serve` installs it), the subscribers, publisher and querier
//! on another (`sg-client`). At the end the bench checks, in the database, that the
//! outbox holds exactly one notice per trigger for each receiving system and that every
//! delivered notice's disclosure-log entry exists.

mod common;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::{BenchDatabase, NhsNumbers, load_average};
use prost::Message;
use safegate::api::proto::{
    self, Fact, FactReceipt, Identifier, IdentifierScheme, Notice, PersonRef, PractitionerContext,
    PublishBatchRequest, PublishRequest, Purpose, QueryRequest, Role, SubscribeRequest,
    fact::Category, notification_service_client::NotificationServiceClient, person_ref,
    query_service_client::QueryServiceClient, records_service_client::RecordsServiceClient,
};
use safegate::config::Layers;
use safegate::pki::DEMO_SYSTEMS;
use safegate::startup::Application;
use sqlx::Row;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;

/// Subscribed receiving systems, and notices per trigger.
const RECEIVERS: usize = 100;
/// Unmeasured triggers first (connections, statement caches, page cache).
const WARM_UP_TRIGGERS: usize = 2;
/// Unmeasured Query calls before the first trigger.
const WARM_UP_QUERIES: usize = 20;
/// How long all 100 notices of one trigger may take before the bench calls them missing.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// Quiet period after the last trigger in which no further notice may arrive; longer
/// than the Subscribe loop's 1 s poll, so a late duplicate would show.
const SETTLE: Duration = Duration::from_secs(2);
/// Any one setup step.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// The publisher of the triggers and the querier.
const POLICE: &str = "police-iom";
const CSC: &str = "childrens-services";

fn main() -> Result<()> {
    let settings = BenchSettings::from_env()?;
    common::on_split_runtimes("notify", async |work, database, server| {
        measure(&settings, work, database, server).await
    })
}

struct BenchSettings {
    triggers: usize,
    queries: usize,
}

impl BenchSettings {
    fn from_env() -> Result<Self> {
        let number = |name: &str, default: usize, max: usize| -> Result<usize> {
            match std::env::var(name) {
                Ok(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .with_context(|| format!("{name} must be a number from 1 to {max}")),
                Err(_) => Ok(default),
            }
        };
        Ok(BenchSettings {
            triggers: number("SAFEGATE_BENCH_TRIGGERS", 20, 200)?,
            queries: number("SAFEGATE_BENCH_QUERIES", 20, 200)?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The database
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// The receiving systems and their data
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    School,
    HealthVisiting,
    ChildrensServices,
}

impl Kind {
    fn of(index: usize) -> Kind {
        match index % 3 {
            0 => Kind::School,
            1 => Kind::HealthVisiting,
            _ => Kind::ChildrensServices,
        }
    }

    fn id(self, index: usize) -> String {
        match self {
            Kind::School => format!("school-{index:03}"),
            Kind::HealthVisiting => format!("hv-team-{index:03}"),
            Kind::ChildrensServices => format!("csc-team-{index:03}"),
        }
    }

    fn name(self, index: usize) -> String {
        match self {
            Kind::School => format!("Synthetic primary school {index:03} safeguarding lead"),
            Kind::HealthVisiting => format!("Synthetic health visiting team {index:03}"),
            Kind::ChildrensServices => format!("Synthetic Children's Services team {index:03}"),
        }
    }

    fn agency(self) -> &'static str {
        match self {
            Kind::School => "education",
            Kind::HealthVisiting => "health",
            Kind::ChildrensServices => "childrens_services",
        }
    }

    fn role(self) -> Role {
        match self {
            Kind::School => Role::SchoolDsl,
            Kind::HealthVisiting => Role::HealthVisitor,
            Kind::ChildrensServices => Role::SocialWorker,
        }
    }

    fn role_word(self) -> &'static str {
        match self {
            Kind::School => "school_dsl",
            Kind::HealthVisiting => "health_visitor",
            Kind::ChildrensServices => "social_worker",
        }
    }

    /// The level the repository's policy gives the role for a police event.
    fn expected_level(self) -> proto::Level {
        match self {
            Kind::ChildrensServices => proto::Level::Detail,
            _ => proto::Level::Indicator,
        }
    }

    /// The fact by which the system says it works with the child.
    fn own_fact(self, index: usize, child_nhs: &str) -> Category {
        let route = format!("{}@bench.example.test", self.id(index));
        match self {
            Kind::School => Category::Education(proto::Education {
                child: nhs_ref(child_nhs),
                setting_type: proto::SettingType::School.into(),
                setting_name: self.name(index),
                dsl_contact_route: route,
                start_date: "2023-09-04".into(),
                end_date: String::new(),
            }),
            Kind::HealthVisiting => Category::HealthInvolvement(proto::HealthInvolvement {
                person: nhs_ref(child_nhs),
                role: proto::HealthRole::HealthVisitor.into(),
                team: self.name(index),
                contact_route: route,
                start_date: "2020-01-10".into(),
                end_date: String::new(),
            }),
            Kind::ChildrensServices => Category::Involvement(proto::Involvement {
                person: nhs_ref(child_nhs),
                team: self.name(index),
                contact_route: route,
                practitioner_id: format!("SW-{index:04}"),
                start_date: "2022-03-01".into(),
                end_date: String::new(),
            }),
        }
    }
}

/// One receiving agency system and the child it works with.
struct Receiver {
    id: String,
    kind: Kind,
    child_nhs: String,
    child_person_id: String,
}

impl Receiver {
    fn context(&self, index: usize) -> PractitionerContext {
        PractitionerContext {
            practitioner_id: format!("BENCH-{index:04}"),
            role: self.kind.role().into(),
            ..Default::default()
        }
    }
}

fn nhs_person(value: &str) -> PersonRef {
    PersonRef {
        r#ref: Some(person_ref::Ref::Identifier(Identifier {
            scheme: IdentifierScheme::NhsNumber.into(),
            value: value.to_owned(),
            namespace: String::new(),
        })),
    }
}

fn nhs_ref(value: &str) -> Option<PersonRef> {
    Some(nhs_person(value))
}

fn person(nhs_number: &str, given: &str, born: &str) -> Category {
    Category::Person(proto::PersonDetails {
        identifiers: vec![Identifier {
            scheme: IdentifierScheme::NhsNumber.into(),
            value: nhs_number.to_owned(),
            namespace: String::new(),
        }],
        given_name: given.to_owned(),
        family_name: "Benchmark".into(),
        date_of_birth: born.into(),
        address: "1 Synthetic Row, Benchtown".into(),
        ..Default::default()
    })
}

/// The demo registry plus one `[[system]]` per receiver, issued by the same dev CA.
fn write_registry(path: &Path, receivers: &[(String, Kind, usize)]) -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut registry = std::fs::read_to_string(repo.join("policies/registry.toml"))
        .context("reading policies/registry.toml")?;
    registry.push_str("\n# Generated by benches/notify.rs: the receiving systems.\n");
    for (id, kind, index) in receivers {
        write!(
            registry,
            "\n[[system]]\nid = \"{id}\"\nname = \"{}\"\nagency = \"{}\"\nroles = [\"{}\"]\n\
             authority = \"dev-ca\"\nsan_uri = \"{}\"\ncontact_route = \"{id}@bench.example.test\"\n",
            kind.name(*index),
            kind.agency(),
            kind.role_word(),
            safegate::pki::system_uri(id)
        )?;
    }
    std::fs::write(path, registry).context("writing the generated registry")?;
    Ok(())
}

fn police_context() -> PractitionerContext {
    PractitionerContext {
        practitioner_id: "IOM-0001".into(),
        role: Role::IomOfficer.into(),
        ..Default::default()
    }
}

fn query_request() -> QueryRequest {
    QueryRequest {
        context: Some(PractitionerContext {
            practitioner_id: "IOM-0001".into(),
            role: Role::IomOfficer.into(),
            purpose: Purpose::OffenderManagement.into(),
            ..Default::default()
        }),
        subject: Some(PersonRef {
            r#ref: Some(person_ref::Ref::Identifier(Identifier {
                scheme: IdentifierScheme::PncId.into(),
                value: safegate::demo::case::DEAN_PNC.into(),
                namespace: String::new(),
            })),
        }),
        search: None,
    }
}

fn incident(adult_nhs: &str, n: usize) -> Category {
    Category::PoliceEvent(proto::PoliceEvent {
        r#type: proto::PoliceEventType::DomesticAbuseIncident.into(),
        occurred_date: "2024-06-01".into(),
        persons: vec![nhs_person(adult_nhs)],
        court_order_record_id: String::new(),
        summary: format!("Benchmark incident {n}: neighbours reported shouting"),
    })
}

async fn publish(
    client: &mut RecordsServiceClient<Channel>,
    context: PractitionerContext,
    request_id: String,
    category: Category,
) -> Result<FactReceipt> {
    client
        .publish(PublishRequest {
            context: Some(context),
            client_request_id: request_id,
            fact: Some(Fact {
                category: Some(category),
            }),
        })
        .await
        .map_err(status_error)?
        .into_inner()
        .receipt
        .context("Publish returned no receipt")
}

fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "gRPC {:?}: {} ({} detail bytes)",
        status.code(),
        status.message(),
        status.details().len()
    )
}

// ---------------------------------------------------------------------------------------
// The subscribers
// ---------------------------------------------------------------------------------------

/// What a subscriber task reports.
enum Event {
    Notice {
        receiver: usize,
        at: Instant,
        notice: Box<Notice>,
    },
    Ended {
        receiver: usize,
        error: Option<String>,
    },
}

/// Holds one Subscribe stream open and reports every notice with its arrival time.
async fn subscriber(
    receiver: usize,
    mut client: NotificationServiceClient<Channel>,
    context: PractitionerContext,
    opened: oneshot::Sender<Result<()>>,
    events: mpsc::UnboundedSender<Event>,
) {
    let stream = client
        .subscribe(SubscribeRequest {
            context: Some(context),
            after_cursor: 0,
        })
        .await;
    let mut stream = match stream {
        Ok(response) => {
            let _ = opened.send(Ok(()));
            response.into_inner()
        }
        Err(status) => {
            let _ = opened.send(Err(status_error(status)));
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                let at = Instant::now();
                let event = match response.notice {
                    Some(notice) => Event::Notice {
                        receiver,
                        at,
                        notice: Box::new(notice),
                    },
                    None => Event::Ended {
                        receiver,
                        error: Some("a SubscribeResponse without a notice".into()),
                    },
                };
                if events.send(event).is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = events.send(Event::Ended {
                    receiver,
                    error: None,
                });
                return;
            }
            Err(status) => {
                let _ = events.send(Event::Ended {
                    receiver,
                    error: Some(status_error(status).to_string()),
                });
                return;
            }
        }
    }
}

/// One delivered notice, timed.
struct Delivery {
    /// t1 - t0 (publish response received), ns; negative if the notice came first.
    from_response_ns: i64,
    /// t1 - sent (just before the Publish call), ns.
    from_send_ns: i64,
}

fn signed_ns(later: Instant, earlier: Instant) -> i64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_nanos() as i64,
        None => -(earlier.duration_since(later).as_nanos() as i64),
    }
}

/// Checks one notice against what its receiver should have been sent for `trigger`.
fn check_notice(
    receiver: &Receiver,
    notice: &Notice,
    trigger_record: &str,
    last_cursor: u64,
) -> Result<()> {
    let record = notice.facts.first().map(|f| f.record_id.as_str());
    ensure!(
        record == Some(trigger_record),
        "{}: received a notice (id {}, cursor {}, rule {}) for record {:?}, expected the current \
         trigger {trigger_record}",
        receiver.id,
        notice.notice_id,
        notice.cursor,
        notice.rule,
        record
    );
    ensure!(
        notice.facts.len() == 1,
        "{}: notice {} shows {} facts, expected the trigger only",
        receiver.id,
        notice.notice_id,
        notice.facts.len()
    );
    ensure!(
        notice.rule == "police_event",
        "{}: notice {} has rule {:?}",
        receiver.id,
        notice.notice_id,
        notice.rule
    );
    ensure!(
        notice.subject_person_id == receiver.child_person_id,
        "{}: notice {} is about {}, not its child {}",
        receiver.id,
        notice.notice_id,
        notice.subject_person_id,
        receiver.child_person_id
    );
    ensure!(
        notice.recipient_role() == receiver.kind.role(),
        "{}: notice {} shaped for {:?}, expected {:?}",
        receiver.id,
        notice.notice_id,
        notice.recipient_role(),
        receiver.kind.role()
    );
    let fact = &notice.facts[0];
    ensure!(
        fact.level() == receiver.kind.expected_level(),
        "{}: notice {} shows the police event at {:?}, the policy gives {:?}",
        receiver.id,
        notice.notice_id,
        fact.level(),
        receiver.kind.expected_level()
    );
    match fact.level() {
        proto::Level::Detail => ensure!(
            fact.fact.is_some() && fact.indicator.is_none(),
            "{}: detail without the fact",
            receiver.id
        ),
        _ => ensure!(
            fact.fact.is_none()
                && fact
                    .indicator
                    .as_ref()
                    .is_some_and(|i| !i.contact_route.is_empty()),
            "{}: an indicator must carry a contact route and no content",
            receiver.id
        ),
    }
    ensure!(
        !notice.disclosure_entry_id.is_empty(),
        "{}: notice {} has no disclosure-log entry id",
        receiver.id,
        notice.notice_id
    );
    ensure!(
        notice.cursor > last_cursor,
        "{}: cursor {} after {last_cursor} (out of order or repeated)",
        receiver.id,
        notice.cursor
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Summary {
    n: usize,
    p50: f64,
    p99: f64,
    min: f64,
    max: f64,
}

impl Summary {
    fn of(values: &[i64]) -> Summary {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let ms = |ns: i64| ns as f64 / 1e6;
        Summary {
            n: sorted.len(),
            p50: ms(percentile(&sorted, 50.0)),
            p99: ms(percentile(&sorted, 99.0)),
            min: ms(sorted.first().copied().unwrap_or_default()),
            max: ms(sorted.last().copied().unwrap_or_default()),
        }
    }

    fn row(&self, backend: &str, what: &str) -> String {
        format!(
            "| {backend} | {what} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            self.n, self.p50, self.p99, self.min, self.max
        )
    }
}

/// How many values fall in each latency band, so a bimodal spread shows.
fn bands(values: &[i64]) -> String {
    const EDGES_MS: [i64; 6] = [5, 10, 20, 40, 60, 100];
    let mut counts = [0usize; EDGES_MS.len() + 1];
    for ns in values {
        let band = EDGES_MS
            .iter()
            .position(|edge| *ns < edge * 1_000_000)
            .unwrap_or(EDGES_MS.len());
        counts[band] += 1;
    }
    let mut out = Vec::new();
    let mut lower = None;
    for (i, count) in counts.iter().enumerate() {
        let label = match (lower, EDGES_MS.get(i)) {
            (None, Some(upper)) => format!("<{upper}"),
            (Some(lower), Some(upper)) => format!("{lower}-{upper}"),
            (Some(lower), None) => format!(">={lower}"),
            (None, None) => String::new(),
        };
        out.push(format!("{label}: {count}"));
        lower = EDGES_MS.get(i).copied();
    }
    out.join(", ")
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

async fn step<T>(what: &str, future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .with_context(|| format!("{what} timed out"))?
        .with_context(|| what.to_owned())
}

async fn measure(
    settings: &BenchSettings,
    work: &Path,
    database: &BenchDatabase,
    server_runtime: &tokio::runtime::Handle,
) -> Result<()> {
    let run_started = Instant::now();
    let layout: Vec<(String, Kind, usize)> = (0..RECEIVERS)
        .map(|i| (Kind::of(i).id(i), Kind::of(i), i))
        .collect();

    // PKI and registry: the demo systems and the receivers, one dev CA.
    let pki = work.join("pki");
    let mut systems: Vec<&str> = DEMO_SYSTEMS.to_vec();
    systems.extend(layout.iter().map(|(id, _, _)| id.as_str()));
    safegate::pki::init(&pki, &systems, false).context("writing the PKI")?;
    let registry = work.join("registry.toml");
    write_registry(&registry, &layout)?;

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gateway_settings = Layers::defaults()
        .flag("listen_addr", Some("127.0.0.1:0".into()))
        .flag("data_dir", Some(work.display().to_string()))
        .flag("database_url", Some(database.url()))
        .flag("registry", Some(registry.display().to_string()))
        .flag(
            "policy_dir",
            Some(repo.join("policies").display().to_string()),
        )
        .flag("pki_dir", Some(pki.display().to_string()))
        .flag("shutdown_grace_secs", Some("5".into()))
        .resolve()?;
    let pool_size = gateway_settings.database_max_connections;
    let app = server_runtime
        .spawn(Application::build(gateway_settings))
        .await
        .context("gateway build task")?
        .context("building the gateway")?;
    let addr: SocketAddr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = server_runtime.spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let outcome = run_against(settings, &pki, addr, &layout, database, pool_size).await;

    let _ = stop.send(());
    let stopped = tokio::time::timeout(Duration::from_secs(20), server).await;
    let (deliveries, started_measuring) = outcome?;
    match stopped {
        Ok(joined) => joined.context("gateway task")??,
        Err(_) => bail!("the gateway did not stop within 20 s"),
    }

    // The database, after the gateway stopped: the outbox and the disclosure log.
    let checks = database_checks(database, &layout, &deliveries).await?;
    println!();
    println!("{checks}");
    println!(
        "  run took {:.1} s in all ({:.1} s from the first warm-up trigger); load avg now {}",
        run_started.elapsed().as_secs_f64(),
        started_measuring.elapsed().as_secs_f64(),
        load_average()
    );
    println!();
    println!("command: {}", common::command("notify"));
    Ok(())
}

/// Per receiver: (trigger number, notice id, disclosure entry id) of every notice received.
type Received = Vec<Vec<(usize, String, String)>>;

async fn run_against(
    settings: &BenchSettings,
    pki: &Path,
    addr: SocketAddr,
    layout: &[(String, Kind, usize)],
    database: &BenchDatabase,
    pool_size: u32,
) -> Result<(Received, Instant)> {
    let channel = |system: String| async move {
        safegate::api::client::channel(addr, pki, &system)
            .await
            .with_context(|| format!("connecting as {system}"))
    };

    // The demo case, for the query baseline.
    let case = step(
        "loading the demo case",
        safegate::demo::case::load(addr, pki),
    )
    .await?;
    let case_facts: usize = case.published_by.iter().map(|(_, n)| n).sum();

    // The family: one adult, parent of 100 children, each a child in need.
    // Above the demo case's numbers, so the bench's persons never collide with it.
    let mut numbers = NhsNumbers::from(999_500_000);
    let adult_nhs = numbers.next_valid();
    let mut police = RecordsServiceClient::new(channel(POLICE.into()).await?);
    step(
        "publishing the adult",
        publish(
            &mut police,
            police_context(),
            "bench-notify/adult".into(),
            person(&adult_nhs, "Adult", "1985-02-03"),
        ),
    )
    .await?;
    // The police team working with the adult: what a police indicator's contact route is
    // taken from (without it the indicator names the system and no route).
    step(
        "publishing the police involvement with the adult",
        publish(
            &mut police,
            police_context(),
            "bench-notify/adult-involvement".into(),
            Category::Involvement(proto::Involvement {
                person: nhs_ref(&adult_nhs),
                team: "Police domestic abuse unit".into(),
                contact_route: "da.unit@police.example.test".into(),
                practitioner_id: "IOM-0001".into(),
                start_date: "2024-01-02".into(),
                end_date: String::new(),
            }),
        ),
    )
    .await?;
    let child_numbers: Vec<String> = (0..RECEIVERS).map(|_| numbers.next_valid()).collect();
    let mut facts: Vec<Fact> = child_numbers
        .iter()
        .enumerate()
        .map(|(i, n)| Fact {
            category: Some(person(n, &format!("Child{i:03}"), "2019-07-01")),
        })
        .collect();
    facts.extend(child_numbers.iter().map(|n| Fact {
        category: Some(Category::Link(proto::Link {
            from: nhs_ref(&adult_nhs),
            to: nhs_ref(n),
            r#type: proto::LinkType::ParentOf.into(),
        })),
    }));
    facts.extend(child_numbers.iter().map(|n| Fact {
        category: Some(Category::LegalStatus(proto::LegalStatus {
            child: nhs_ref(n),
            r#type: proto::LegalStatusType::ChildInNeed.into(),
            start_date: "2024-01-15".into(),
            ..Default::default()
        })),
    }));
    let family_facts = facts.len();
    let mut csc = RecordsServiceClient::new(channel(CSC.into()).await?);
    let receipts = step("publishing the children", async {
        csc.publish_batch(PublishBatchRequest {
            context: Some(PractitionerContext {
                practitioner_id: "SW-0001".into(),
                role: Role::SocialWorker.into(),
                ..Default::default()
            }),
            client_request_id: "bench-notify/children".into(),
            facts,
        })
        .await
        .map_err(status_error)
    })
    .await?
    .into_inner()
    .receipts;
    ensure!(receipts.len() == family_facts, "batch receipts");
    let mut receivers = Vec::with_capacity(RECEIVERS);
    for (i, (id, kind, _)) in layout.iter().enumerate() {
        let child_person_id = receipts[i]
            .person_ids
            .first()
            .cloned()
            .context("a child's receipt has no person id")?;
        receivers.push(Receiver {
            id: id.clone(),
            kind: *kind,
            child_nhs: child_numbers[i].clone(),
            child_person_id,
        });
    }

    // Each receiver's own channel; it publishes its fact about its child, then subscribes.
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let mut subscribers = tokio::task::JoinSet::new();
    let setup_started = Instant::now();
    for (i, receiver) in receivers.iter().enumerate() {
        let channel = channel(receiver.id.clone()).await?;
        let mut records = RecordsServiceClient::new(channel.clone());
        step(
            &format!("{} publishing its fact", receiver.id),
            publish(
                &mut records,
                receiver.context(i),
                format!("bench-notify/own-{i}"),
                receiver.kind.own_fact(i, &receiver.child_nhs),
            ),
        )
        .await?;
        let (opened_tx, opened) = oneshot::channel();
        subscribers.spawn(subscriber(
            i,
            NotificationServiceClient::new(channel),
            receiver.context(i),
            opened_tx,
            events_tx.clone(),
        ));
        step(&format!("{} subscribing", receiver.id), async {
            opened.await.context("subscriber task ended")?
        })
        .await?;
    }
    drop(events_tx);
    let setup_time = setup_started.elapsed();

    // The querier, on its own connection; warm up and size the answer.
    let mut querier = QueryServiceClient::new(channel(POLICE.into()).await?);
    let mut answer_bytes = 0;
    let mut answer_facts = 0;
    for _ in 0..WARM_UP_QUERIES {
        let answer = querier
            .query(query_request())
            .await
            .map_err(status_error)
            .context("warm-up Query")?
            .into_inner();
        answer_bytes = answer.encoded_len();
        answer_facts = answer.subject.as_ref().map_or(0, |s| s.facts.len())
            + answer
                .linked
                .iter()
                .filter_map(|l| l.person.as_ref())
                .map(|p| p.facts.len())
                .sum::<usize>();
    }

    let counts = |kind: Kind| layout.iter().filter(|(_, k, _)| *k == kind).count();
    println!("safegate notification delivery benchmark");
    println!("  command   : {}", common::command("notify"));
    println!("  database  : {}", database.describe());
    println!(
        "  gateway   : in-process on {addr} (sg-server runtime), database pool {pool_size}; \
         clients on the sg-client runtime; {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  systems   : {} demo + {RECEIVERS} generated receivers ({} school_dsl, {} health_visitor, \
         {} social_worker), each its own mTLS connection and open Subscribe stream",
        DEMO_SYSTEMS.len(),
        counts(Kind::School),
        counts(Kind::HealthVisiting),
        counts(Kind::ChildrensServices)
    );
    println!(
        "  data      : demo case ({case_facts} facts); one adult parent_of {RECEIVERS} children \
         ({family_facts} facts in one batch), {RECEIVERS} receiver facts; connect + publish + \
         subscribe of the receivers took {:.2} s",
        setup_time.as_secs_f64()
    );
    println!(
        "  trigger   : Publish by {POLICE} of a police_event DOMESTIC_ABUSE_INCIDENT naming the \
         adult -> rule 3 -> {RECEIVERS} notices, one to each receiver"
    );
    println!(
        "  schedule  : {WARM_UP_TRIGGERS} warm-up + {} measured triggers, one at a time; after \
         each, {} Query round trips",
        settings.triggers, settings.queries
    );
    println!(
        "  query     : QueryService.Query as {POLICE} (iom_officer, offender_management) about \
         Dean: answer {answer_bytes} bytes, {answer_facts} facts ({WARM_UP_QUERIES} warm-up calls)"
    );
    println!("  load avg  : {}", load_average());
    println!();
    println!(
        "{:>7} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "trigger", "Publish ms", "first ms", "p50 ms", "last ms", "negatives", "query p50"
    );

    let measuring_started = Instant::now();
    let mut received: Received = vec![Vec::new(); RECEIVERS];
    let mut last_cursor = vec![0u64; RECEIVERS];
    let mut deliveries: Vec<Delivery> = Vec::new();
    let mut publish_ns: Vec<i64> = Vec::new();
    let mut fan_out_ns: Vec<i64> = Vec::new();
    let mut query_ns: Vec<i64> = Vec::new();
    let total = WARM_UP_TRIGGERS + settings.triggers;
    for trigger in 0..total {
        let measured = trigger >= WARM_UP_TRIGGERS;
        let sent = Instant::now();
        let receipt = publish(
            &mut police,
            police_context(),
            format!("bench-notify/incident-{trigger}"),
            incident(&adult_nhs, trigger),
        )
        .await
        .with_context(|| format!("publishing trigger {trigger}"))?;
        let t0 = Instant::now();

        let deadline = tokio::time::Instant::from_std(t0 + DELIVERY_TIMEOUT);
        let mut arrived: Vec<Option<Instant>> = vec![None; RECEIVERS];
        let mut count = 0;
        while count < RECEIVERS {
            let event = match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) => bail!("every subscriber task has ended"),
                Err(_) => {
                    let missing: Vec<&str> = arrived
                        .iter()
                        .zip(&receivers)
                        .filter(|(a, _)| a.is_none())
                        .map(|(_, r)| r.id.as_str())
                        .collect();
                    bail!(
                        "trigger {trigger} (record {}): {} of {RECEIVERS} subscribers did not \
                         receive their notice within {} s; missing: {:?}",
                        receipt.record_id,
                        missing.len(),
                        DELIVERY_TIMEOUT.as_secs(),
                        missing
                    );
                }
            };
            match event {
                Event::Ended { receiver, error } => bail!(
                    "trigger {trigger}: the Subscribe stream of {} ended: {}",
                    receivers[receiver].id,
                    error.unwrap_or_else(|| "closed by the gateway".into())
                ),
                Event::Notice {
                    receiver,
                    at,
                    notice,
                } => {
                    let who = &receivers[receiver];
                    if arrived[receiver].is_some() {
                        bail!(
                            "trigger {trigger}: {} received a second notice (id {}, cursor {}) \
                             for record {}",
                            who.id,
                            notice.notice_id,
                            notice.cursor,
                            receipt.record_id
                        );
                    }
                    check_notice(who, &notice, &receipt.record_id, last_cursor[receiver])
                        .with_context(|| format!("trigger {trigger}"))?;
                    last_cursor[receiver] = notice.cursor;
                    received[receiver].push((
                        trigger,
                        notice.notice_id.clone(),
                        notice.disclosure_entry_id.clone(),
                    ));
                    arrived[receiver] = Some(at);
                    count += 1;
                }
            }
        }
        let times: Vec<Instant> = arrived.into_iter().flatten().collect();
        let mut from_response: Vec<i64> = times.iter().map(|t| signed_ns(*t, t0)).collect();
        from_response.sort_unstable();
        let negatives = from_response.iter().filter(|ns| **ns < 0).count();
        let publish_time = signed_ns(t0, sent);

        let mut gap_queries = Vec::new();
        if measured {
            publish_ns.push(publish_time);
            fan_out_ns.push(from_response.last().copied().unwrap_or_default());
            deliveries.extend(times.iter().map(|t| Delivery {
                from_response_ns: signed_ns(*t, t0),
                from_send_ns: signed_ns(*t, sent),
            }));
            for _ in 0..settings.queries {
                let started = Instant::now();
                querier
                    .query(query_request())
                    .await
                    .map_err(status_error)
                    .context("Query")?;
                gap_queries.push(signed_ns(Instant::now(), started));
            }
            query_ns.extend(&gap_queries);
        }
        gap_queries.sort_unstable();
        println!(
            "{:>7} {:>12.2} {:>12.2} {:>12.2} {:>12.2} {:>12} {:>12}",
            if measured {
                format!("{}", trigger - WARM_UP_TRIGGERS + 1)
            } else {
                format!("w{}", trigger + 1)
            },
            publish_time as f64 / 1e6,
            from_response.first().copied().unwrap_or_default() as f64 / 1e6,
            percentile(&from_response, 50.0) as f64 / 1e6,
            from_response.last().copied().unwrap_or_default() as f64 / 1e6,
            negatives,
            if measured {
                format!("{:.2}", percentile(&gap_queries, 50.0) as f64 / 1e6)
            } else {
                "-".into()
            }
        );
    }

    // Nothing more may arrive: no late duplicate, no notice nobody triggered.
    match tokio::time::timeout(SETTLE, events.recv()).await {
        Err(_) => {}
        Ok(None) => bail!("every subscriber task ended after the last trigger"),
        Ok(Some(Event::Ended { receiver, error })) => bail!(
            "after the last trigger the Subscribe stream of {} ended: {}",
            receivers[receiver].id,
            error.unwrap_or_else(|| "closed by the gateway".into())
        ),
        Ok(Some(Event::Notice {
            receiver, notice, ..
        })) => bail!(
            "after the last trigger {} received another notice (id {}, cursor {}, record {:?}): \
             a duplicate or a notice nobody triggered",
            receivers[receiver].id,
            notice.notice_id,
            notice.cursor,
            notice.facts.first().map(|f| f.record_id.clone())
        ),
    }
    subscribers.abort_all();
    while subscribers.join_next().await.is_some() {}

    // Summary.
    let from_response: Vec<i64> = deliveries.iter().map(|d| d.from_response_ns).collect();
    let from_send: Vec<i64> = deliveries.iter().map(|d| d.from_send_ns).collect();
    let negatives = from_response.iter().filter(|ns| **ns < 0).count();
    let response = Summary::of(&from_response);
    let send = Summary::of(&from_send);
    let publish = Summary::of(&publish_ns);
    let fan_out = Summary::of(&fan_out_ns);
    let query = Summary::of(&query_ns);
    let backend = database.backend();
    println!();
    println!(
        "  {} deliveries ({} triggers x {RECEIVERS} subscribers), none missing or repeated; \
         {negatives} arrived before the Publish response (min {:.2} ms)",
        deliveries.len(),
        settings.triggers,
        response.min
    );
    println!();
    println!("| backend | measurement | n | p50 ms | p99 ms | min ms | max ms |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        response.row(
            backend,
            "delivery: Publish response received -> notice received (t1 - t0)"
        )
    );
    println!(
        "{}",
        send.row(
            backend,
            "delivery: just before Publish sent -> notice received"
        )
    );
    println!(
        "{}",
        fan_out.row(
            backend,
            "fan-out complete: t0 -> last of the 100 notices (per trigger)"
        )
    );
    println!(
        "{}",
        publish.row(
            backend,
            "Publish RPC (police_event, 100 notices in its transaction)"
        )
    );
    println!(
        "{}",
        query.row(backend, "Query round trip (police-iom about Dean)")
    );
    println!();
    println!(
        "  spread (count per band, ms): deliveries {}; Query {}",
        bands(&from_response),
        bands(&query_ns)
    );
    let (headline, label) = if negatives == 0 {
        (&response, "t1 - t0")
    } else {
        (
            &send,
            "from just before the Publish was sent, as some t1 - t0 were negative",
        )
    };
    println!(
        "  delivery ({label}) / Query: p50 {:.2}x, p99 {:.2}x; Publish RPC / Query: p50 {:.2}x, \
         p99 {:.2}x",
        headline.p50 / query.p50,
        headline.p99 / query.p99,
        publish.p50 / query.p50,
        publish.p99 / query.p99
    );
    Ok((received, measuring_started))
}

/// The outbox holds exactly one notice per trigger for each receiver, and every delivered
/// notice's disclosure-log entry exists.
async fn database_checks(
    database: &BenchDatabase,
    layout: &[(String, Kind, usize)],
    received: &Received,
) -> Result<String> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect_with(AnyConnectOptions::from_str(&database.url())?)
        .await
        .context("opening the database for the checks")?;
    let rows = sqlx::query(
        "SELECT recipient_system, COUNT(*), COUNT(DISTINCT trigger_record_id) FROM notice \
         GROUP BY recipient_system",
    )
    .fetch_all(&pool)
    .await?;
    let mut outbox: HashMap<String, (i64, i64)> = HashMap::new();
    for row in &rows {
        let system: String = row.try_get(0)?;
        outbox.insert(system, (row.try_get(1)?, row.try_get(2)?));
    }
    let triggers = received.first().map_or(0, Vec::len);
    for ((id, _, _), got) in layout.iter().zip(received) {
        let (stored, distinct) = outbox.get(id).copied().unwrap_or_default();
        ensure!(
            got.len() == triggers && stored == triggers as i64 && distinct == triggers as i64,
            "{id}: received {} notices, the outbox holds {stored} for {distinct} triggers, \
             expected {triggers}",
            got.len()
        );
        let ids: HashSet<&str> = got.iter().map(|(_, n, _)| n.as_str()).collect();
        ensure!(
            ids.len() == got.len(),
            "{id}: a notice id was received twice"
        );
    }
    let entries = sqlx::query("SELECT entry_id, system_id FROM disclosure_log WHERE kind = $1")
        .bind("notification")
        .fetch_all(&pool)
        .await?;
    let mut logged: HashMap<String, String> = HashMap::new();
    for row in &entries {
        logged.insert(row.try_get(0)?, row.try_get(1)?);
    }
    let mut delivered = 0;
    for ((id, _, _), got) in layout.iter().zip(received) {
        for (trigger, notice, entry) in got {
            ensure!(
                logged.get(entry) == Some(id),
                "{id}: notice {notice} of trigger {trigger} names disclosure-log entry {entry}, \
                 which is not a notification entry for {id}"
            );
            delivered += 1;
        }
    }
    let to_receivers = logged
        .values()
        .filter(|s| layout.iter().any(|(id, _, _)| id == *s))
        .count();
    ensure!(
        to_receivers == delivered,
        "{to_receivers} notification entries for the receivers, {delivered} notices received"
    );
    pool.close().await;
    Ok(format!(
        "  checks: outbox holds exactly {triggers} notices (one per trigger, warm-up included) \
         for each of the {RECEIVERS} receivers; all {delivered} received notices have their \
         notification entry in the disclosure log, and there are no other notification \
         entries for the receivers"
    ))
}
