//! The IG console's page times on a large log: a search by person, a search by
//! practitioner and an entry with its inclusion proof, each over HTTPS with an officer's
//! certificate and each writing its own log-read entry, as in use. The baseline, measured
//! in the same run on the same console, is the signed-in search form (TLS, sign-in,
//! templating, no log read and no log write): the ratio is what the log adds.
//!
//!   cargo bench --bench console
//!   SAFEGATE_BENCH_CONSOLE_ENTRIES  log size (default 1,000,000)
//!   SAFEGATE_BENCH_CONSOLE_REQUESTS requests per page (default 200)
//!   SAFEGATE_BENCH_DATABASE_URL     a PostgreSQL server instead of SQLite

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use safegate::config::Layers;
use safegate::domain::ledger::{CheckpointSigner, Decision, Disclosed, Entry, EntryKind};
use safegate::domain::records::PersonRef;
use safegate::domain::records::identifiers::Identifier;
use safegate::startup::Application;
use safegate::store::Store;

use common::{BenchDatabase, command, thousands};

/// Entries appended per transaction while building the log.
const BUILD_BATCH: usize = 5_000;
/// Persons the synthetic log is about (published first, so the console finds them by
/// NHS number as an officer would), and practitioners who ask.
const PERSONS: usize = 10_000;
const PRACTITIONERS: usize = 2_000;
/// The goal for each page's 95th percentile.
const GOAL: Duration = Duration::from_millis(200);

fn number(var: &str, default: usize) -> Result<usize> {
    match std::env::var(var) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{var} must be a whole number")),
        Err(_) => Ok(default),
    }
}

fn synthetic(i: usize, persons: &[String]) -> Entry {
    let person = |k: usize| persons[(i * 7 + k * 13) % persons.len()].clone();
    let mut entry = Entry::new(EntryKind::Query, Decision::Released);
    entry.rpc = "safegate.v1.QueryService/Query".into();
    entry.agency = "childrens_services".into();
    entry.system_id = "childrens-services".into();
    entry.practitioner_id = format!("SW-{:04}", i % PRACTITIONERS);
    entry.role = "social_worker".into();
    entry.purpose = "child_safeguarding".into();
    entry.lawful_basis = "UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18".into();
    entry.break_glass = i.is_multiple_of(97);
    entry.subject_person_id = person(0);
    entry.linked_person_ids = vec![person(1)];
    entry.released = vec![Disclosed {
        person_id: person(0),
        record_id: uuid::Uuid::new_v4().to_string(),
        category: "legal_status".into(),
        level: "detail".into(),
        rule_id: "matrix.social_worker.legal_status".into(),
    }];
    entry.rule_ids = vec!["matrix.social_worker.legal_status".into()];
    entry.policy_version = "bench".into();
    entry
}

/// An HTTPS client presenting the officer's certificate, one connection per request
/// (as a browser opening a page after idle).
struct Client {
    config: Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
}

impl Client {
    fn new(pki: &std::path::Path, addr: std::net::SocketAddr) -> Result<Self> {
        let read = |name: &str| std::fs::read(pki.join(name)).with_context(|| name.to_owned());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(&read("ca.pem")?)?)?;
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(&read(
                    "officer-ig-0001.pem",
                )?)?],
                PrivateKeyDer::from_pem_slice(&read("officer-ig-0001.key")?)?,
            )?;
        Ok(Client {
            config: Arc::new(config),
            addr,
        })
    }

    async fn request(&self, method: &str, path: &str, form: Option<String>) -> Result<String> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("localhost:{}", self.addr.port()))
            .header("sec-fetch-site", "same-origin");
        if form.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        let response = sender
            .send_request(request.body(Full::new(bytes::Bytes::from(form.unwrap_or_default())))?)
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            bail!("{method} {path}: {status}");
        }
        Ok(body)
    }
}

/// Publishes one person per NHS number in `numbers`, as Children's Services.
async fn publish_persons(
    addr: std::net::SocketAddr,
    pki: &std::path::Path,
    numbers: &[String],
) -> Result<()> {
    use safegate::api::proto::{
        self, Fact, PractitionerContext, PublishBatchRequest, Role, fact::Category,
        records_service_client::RecordsServiceClient,
    };
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let read = |name: &str| std::fs::read_to_string(pki.join(name));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")?))
        .domain_name("localhost")
        .identity(Identity::from_pem(
            read("childrens-services.pem")?,
            read("childrens-services.key")?,
        ));
    let channel = Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .timeout(Duration::from_secs(600))
        .connect()
        .await?;
    let mut client = RecordsServiceClient::new(channel);
    for (batch, chunk) in numbers.chunks(5_000).enumerate() {
        let facts = chunk
            .iter()
            .enumerate()
            .map(|(i, number)| Fact {
                category: Some(Category::Person(proto::PersonDetails {
                    identifiers: vec![proto::Identifier {
                        scheme: proto::IdentifierScheme::NhsNumber.into(),
                        value: number.clone(),
                        namespace: String::new(),
                    }],
                    given_name: format!("Given{batch}x{i:05}"),
                    family_name: format!("Synthetic{}", i % 997),
                    date_of_birth: format!(
                        "20{:02}-{:02}-{:02}",
                        10 + i % 12,
                        1 + i % 12,
                        1 + i % 28
                    ),
                    ..Default::default()
                })),
            })
            .collect();
        client
            .publish_batch(PublishBatchRequest {
                context: Some(PractitionerContext {
                    practitioner_id: "SW-BENCH".into(),
                    role: Role::SocialWorker.into(),
                    ..Default::default()
                }),
                client_request_id: format!("bench-console-{batch}"),
                facts,
            })
            .await
            .context("publishing the persons")?;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Times `requests` pages; each must contain `shows` (so a page that found nothing is
/// not measured as a fast one).
async fn timed(
    client: &Client,
    requests: usize,
    shows: &str,
    page: impl Fn(usize) -> (String, String, Option<String>),
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(requests);
    for i in 0..requests {
        let (method, path, form) = page(i);
        let started = Instant::now();
        let body = client.request(&method, &path, form).await?;
        times.push(started.elapsed());
        if !body.contains(shows) {
            bail!("{method} {path}: the page does not show {shows:?}");
        }
    }
    times.sort();
    Ok(times)
}

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<()> {
    let entries = number("SAFEGATE_BENCH_CONSOLE_ENTRIES", 1_000_000)?;
    let requests = number("SAFEGATE_BENCH_CONSOLE_REQUESTS", 200)?.max(20);
    let work =
        std::env::temp_dir().join(format!("safegate-bench-console-{}", uuid::Uuid::new_v4()));
    let pki = work.join("pki");
    std::fs::create_dir_all(&work)?;
    safegate::pki::init(&pki, safegate::pki::DEMO_SYSTEMS, false)?;
    let database = BenchDatabase::create(&work, "console").await?;
    println!("{}", command("console"));
    println!("  database : {}", database.describe());

    let settings = Layers::defaults()
        .flag("listen_addr", Some("127.0.0.1:0".into()))
        .flag("console_listen_addr", Some("127.0.0.1:0".into()))
        .flag("data_dir", Some(work.display().to_string()))
        .flag("database_url", Some(database.url()))
        .flag(
            "registry",
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/registry.toml").into()),
        )
        .flag(
            "policy_dir",
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/policies").into()),
        )
        .flag("pki_dir", Some(pki.display().to_string()))
        .flag("log_filter", Some("warn".into()))
        .resolve()?;

    // The persons, published through the gateway as Children's Services would.
    let numbers: Vec<String> = {
        let mut numbers = common::NhsNumbers::from(400_000_000);
        (0..PERSONS).map(|_| numbers.next_valid()).collect()
    };
    let app = Application::build(settings.clone()).await?;
    let grpc = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let published = Instant::now();
    publish_persons(grpc, &pki, &numbers).await?;
    let _ = stop.send(());
    server.await??;
    println!(
        "  persons  : {} published in {:.0} s",
        thousands(PERSONS as f64),
        published.elapsed().as_secs_f64()
    );

    // The log, built on the committer's path with the gateway's own checkpoint key.
    let store = Store::connect(&database.url(), 2).await?;
    let signer = CheckpointSigner::load(&pki.join("checkpoint.key"))?
        .with_origin("safegate.local/disclosure-log")
        .context("origin")?;
    let mut persons = Vec::with_capacity(PERSONS);
    for number in &numbers {
        let reference = PersonRef::Identifier(Identifier::NhsNumber {
            value: number.clone(),
        });
        persons.push(
            store
                .find_person(&reference)
                .await?
                .context("a published person")?,
        );
    }
    let started = Instant::now();
    let mut built = 0;
    let mut probe_entry = String::new();
    while built < entries {
        let count = BUILD_BATCH.min(entries - built);
        let batch: Vec<Entry> = (built..built + count)
            .map(|i| synthetic(i, &persons))
            .collect();
        if built + count >= entries / 2 && probe_entry.is_empty() {
            probe_entry = batch[0].entry_id.clone();
        }
        store.append_entries(&batch, &signer).await?;
        built += count;
        if built.is_multiple_of(100_000) {
            println!(
                "  built {} entries in {:.0} s",
                thousands(built as f64),
                started.elapsed().as_secs_f64()
            );
        }
    }
    store.close().await;
    println!(
        "  log      : {} entries built in {:.0} s",
        thousands(entries as f64),
        started.elapsed().as_secs_f64()
    );

    let app = Application::build(settings).await?;
    let console = app.console_addr().context("the console is served")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = Client::new(&pki, console)?;
    let form = client.request("GET", "/", None).await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = form.find(marker).context("token")? + marker.len();
    let token = form[start..start + 64].to_owned();

    let baseline = timed(&client, requests, "Search the disclosure log", |_| {
        ("GET".into(), "/".into(), None)
    })
    .await?;
    let by_person = timed(&client, requests, "oldest first", |i| {
        let number = &numbers[(i * 7919) % PERSONS];
        (
            "POST".into(),
            "/search".into(),
            Some(format!("csrf_token={token}&person={number}")),
        )
    })
    .await?;
    let by_practitioner = timed(&client, requests, "50 entries, oldest first", |i| {
        let practitioner = format!("SW-{:04}", (i * 37) % PRACTITIONERS);
        (
            "POST".into(),
            "/search".into(),
            Some(format!("csrf_token={token}&practitioner_id={practitioner}")),
        )
    })
    .await?;
    let entry = timed(&client, requests, "Proof checked", |_| {
        ("GET".into(), format!("/entries/{probe_entry}"), None)
    })
    .await?;
    let _ = stop.send(());
    let _ = server.await;

    let floor = percentile(&baseline, 0.95);
    println!();
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>12} {:>6}",
        "page (a new connection each, TLS resumed)",
        "p50 ms",
        "p95 ms",
        "max ms",
        "p95 / floor",
        "goal"
    );
    let row = |name: &str, times: &[Duration], goal: bool| {
        let p95 = percentile(times, 0.95);
        println!(
            "{:<46} {:>9.1} {:>9.1} {:>9.1} {:>11.1}x {:>6}",
            name,
            percentile(times, 0.5).as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            p95.as_secs_f64() / floor.as_secs_f64().max(1e-9),
            if !goal {
                "-"
            } else if p95 <= GOAL {
                "met"
            } else {
                "MISSED"
            }
        );
    };
    row(
        "floor: the search form (no log read or write)",
        &baseline,
        false,
    );
    row("search by person (logged read)", &by_person, true);
    row(
        "search by practitioner, 50 a page (logged)",
        &by_practitioner,
        true,
    );
    row("entry with its inclusion proof (logged)", &entry, true);
    println!(
        "  {} requests per page on a log of {} entries; goal p95 <= {} ms",
        requests,
        thousands(entries as f64),
        GOAL.as_millis()
    );
    database.drop_database().await.ok();
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
