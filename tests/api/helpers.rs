//! Spawns gateways for tests, each on its own port, PKI and fresh database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use safegate::api::proto::{
    PractitionerContext, Role, WhoAmIRequest, WhoAmIResponse,
    identity_service_client::IdentityServiceClient,
};
use safegate::config::Layers;
use safegate::pki::{CertificateAuthority, DEMO_SYSTEMS, IssuedCertificate, Validity};
use safegate::startup::Application;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

static INIT: Once = Once::new();

fn init_process() {
    INIT.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,safegate=debug")
                .with_test_writer()
                .try_init();
        }
    });
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("safegate-{label}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A dev PKI on disk whose CA stays in memory, so tests can issue odd certificates.
pub struct TestPki {
    pub dir: PathBuf,
    pub ca: CertificateAuthority,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = temp_dir("pki");
        let ca = CertificateAuthority::generate("safegate test CA").expect("CA");
        std::fs::write(dir.join("ca.pem"), ca.certificate_pem()).expect("write CA");
        ca.issue_server(&["localhost", "127.0.0.1"])
            .expect("server cert")
            .write(&dir, "server")
            .expect("write server cert");
        safegate::pki::write_checkpoint_key(&dir).expect("checkpoint key");
        for system in DEMO_SYSTEMS {
            ca.issue_client(system, Validity::days(30))
                .expect("client cert")
                .write(&dir, system)
                .expect("write client cert");
        }
        safegate::pki::ensure_officers(&dir, safegate::pki::DEMO_OFFICERS)
            .expect("officers' certificates");
        TestPki { dir, ca }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.certificate_pem()
    }

    /// The personal certificate and key `pki` wrote for a demo officer (e.g. `ig-0001`).
    pub fn officer(&self, officer: &str) -> IssuedCertificate {
        self.client(&safegate::pki::officer_stem(officer))
    }

    /// The certificate and key `pki` wrote for a demo system.
    pub fn client(&self, system: &str) -> IssuedCertificate {
        let read = |ext: &str| {
            std::fs::read_to_string(self.dir.join(format!("{system}.{ext}"))).expect("read cert")
        };
        IssuedCertificate {
            certificate_pem: read("pem"),
            key_pem: read("key"),
        }
    }
}

/// The database a test gateway uses: a SQLite file, or a fresh PostgreSQL database
/// when `SAFEGATE_TEST_DATABASE_URL` points at a server.
#[derive(Clone)]
pub enum TestDatabase {
    Sqlite { file: PathBuf },
    Postgres { server: String, name: String },
}

impl TestDatabase {
    pub async fn create(dir: &Path) -> Self {
        match std::env::var("SAFEGATE_TEST_DATABASE_URL") {
            Ok(server) if server.starts_with("postgres") => {
                let name = format!("safegate_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&server)
                    .await
                    .expect("connect to SAFEGATE_TEST_DATABASE_URL");
                admin
                    .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                    .await
                    .expect("create test database");
                TestDatabase::Postgres { server, name }
            }
            _ => TestDatabase::Sqlite {
                file: dir.join("safegate.db"),
            },
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite { file } => format!("sqlite://{}?mode=rwc", file.display()),
            TestDatabase::Postgres { server, name } => {
                let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
                format!("{base}/{name}")
            }
        }
    }

    /// Takes the database away from under the gateway.
    pub async fn make_gone(&self) {
        match self {
            TestDatabase::Sqlite { file } => {
                std::fs::remove_file(file).expect("remove SQLite file");
            }
            TestDatabase::Postgres { server, name } => {
                let mut admin = PgConnection::connect(server).await.expect("connect");
                admin
                    .execute(format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#).as_str())
                    .await
                    .expect("drop test database");
            }
        }
    }
}

/// A gateway running in-process on 127.0.0.1:0.
pub struct TestGateway {
    pub addr: SocketAddr,
    /// The IG console's address, when the gateway serves it.
    pub console_addr: Option<SocketAddr>,
    pub pki: std::sync::Arc<TestPki>,
    pub database: TestDatabase,
    store: safegate::store::Store,
    /// The gateway's contact requests, whose overdue escalation tests drive on their
    /// own clock.
    pub contacts: safegate::domain::contact::Contacts,
    data_dir: PathBuf,
    policy_dir: PathBuf,
    witness_policy: Option<PathBuf>,
    /// Settings beyond the defaults (key, value), kept across restarts.
    extra_settings: Vec<(String, String)>,
    /// Whether witness cosigning lags, when the gateway has a witness policy.
    pub witness_health: Option<Arc<safegate::domain::ledger::witnessing::WitnessHealth>>,
    /// The gateway's own append path, for planting entries at chosen times.
    pub ledger: safegate::domain::ledger::Ledger,
    /// The gateway's privacy alert evaluator.
    pub alerts: safegate::domain::alerts::AlertEvaluator,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts a gateway with the demo registry, a fresh PKI and a fresh database, with the
/// health probe every 100 ms.
pub async fn spawn_gateway() -> TestGateway {
    spawn_gateway_with_policy(&test_policies()).await
}

/// The reviewed policies, except that the out-of-hours alert rule's working hours cover
/// the whole day: what other tests see must not depend on the time of day they run at
/// (tests/api/alerts.rs tests the reviewed hours on entries planted at chosen times).
pub fn test_policies() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = temp_dir("test-policies");
        let repo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
        for file in std::fs::read_dir(repo).expect("policies dir") {
            let path = file.expect("policy file").path();
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
        let rules = std::fs::read_to_string(dir.join("alerts.toml")).expect("alerts.toml");
        let all_day = rules
            .replace("start = \"07:00\"", "start = \"00:00\"")
            .replace("end = \"20:00\"", "end = \"24:00\"")
            .replace("weekdays_only = true", "weekdays_only = false");
        assert_ne!(rules, all_day, "the out-of-hours rule's hours were found");
        std::fs::write(dir.join("alerts.toml"), all_day).expect("write alerts.toml");
        dir
    })
    .clone()
}

/// Like [`spawn_gateway`], with the sharing policy read from `policy_dir`.
pub async fn spawn_gateway_with_policy(policy_dir: &Path) -> TestGateway {
    init_process();
    let pki = TestPki::new();
    let data_dir = temp_dir("data");
    let database = TestDatabase::create(&data_dir).await;
    start(
        std::sync::Arc::new(pki),
        database,
        data_dir,
        policy_dir.to_owned(),
    )
    .await
}

/// Like [`spawn_gateway`], also serving the IG console on a free loopback port.
pub async fn spawn_gateway_with_console() -> TestGateway {
    init_process();
    let pki = TestPki::new();
    let data_dir = temp_dir("data");
    let database = TestDatabase::create(&data_dir).await;
    start_with(
        std::sync::Arc::new(pki),
        database,
        data_dir,
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies")).to_owned(),
        None,
        vec![("console_listen_addr".into(), "127.0.0.1:0".into())],
    )
    .await
}

/// Starts a gateway on `pki` (made first, so witnesses can trust its log key) and a fresh
/// database, sending its checkpoints to the witnesses of `witness_policy`.
pub async fn spawn_witnessed_gateway(pki: TestPki, witness_policy: PathBuf) -> TestGateway {
    init_process();
    let data_dir = temp_dir("data");
    let database = TestDatabase::create(&data_dir).await;
    start_with(
        std::sync::Arc::new(pki),
        database,
        data_dir,
        test_policies(),
        Some(witness_policy),
        Vec::new(),
    )
    .await
}

/// Starts a gateway on `pki` and a fresh database with `settings` over the test defaults
/// (e.g. its own copy of the registry, to edit and reload).
pub async fn spawn_gateway_with_settings(
    pki: TestPki,
    settings: Vec<(String, String)>,
) -> TestGateway {
    init_process();
    let data_dir = temp_dir("data");
    let database = TestDatabase::create(&data_dir).await;
    start_with(
        std::sync::Arc::new(pki),
        database,
        data_dir,
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies")).to_owned(),
        None,
        settings,
    )
    .await
}

/// Runs a gateway on an existing PKI and database.
async fn start(
    pki: std::sync::Arc<TestPki>,
    database: TestDatabase,
    data_dir: PathBuf,
    policy_dir: PathBuf,
) -> TestGateway {
    start_with(pki, database, data_dir, policy_dir, None, Vec::new()).await
}

async fn start_with(
    pki: std::sync::Arc<TestPki>,
    database: TestDatabase,
    data_dir: PathBuf,
    policy_dir: PathBuf,
    witness_policy: Option<PathBuf>,
    extra_settings: Vec<(String, String)>,
) -> TestGateway {
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/registry.toml");
    let mut layers = Layers::defaults()
        .flag(
            "witness_policy",
            witness_policy.as_ref().map(|p| p.display().to_string()),
        )
        .flag("listen_addr", Some("127.0.0.1:0".into()))
        .flag("data_dir", Some(data_dir.display().to_string()))
        .flag("database_url", Some(database.url()))
        .flag("registry", Some(registry.into()))
        .flag("policy_dir", Some(policy_dir.display().to_string()))
        .flag("pki_dir", Some(pki.dir.display().to_string()))
        .flag("health_interval_ms", Some("100".into()))
        .flag("shutdown_grace_secs", Some("5".into()));
    // The test's own settings win over the defaults above.
    for (key, value) in &extra_settings {
        layers = layers.flag(key, Some(value.clone()));
    }
    let settings = layers.resolve().expect("test settings resolve");
    let app = Application::build(settings).await.expect("gateway builds");
    let addr = app.local_addr();
    let console_addr = app.console_addr();
    let store = app.store().clone();
    let contacts = app.contacts().clone();
    let witness_health = app.witness_health();
    let ledger = app.ledger().clone();
    let alerts = app.alerts();
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestGateway {
        addr,
        console_addr,
        pki,
        database,
        store,
        contacts,
        data_dir,
        policy_dir,
        witness_policy,
        extra_settings,
        witness_health,
        ledger,
        alerts,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl TestGateway {
    /// A second gateway on the same database, PKI and policy, as a second process of one
    /// deployment would be (it shares nothing in memory with this one).
    pub async fn another_on_the_same_database(&self) -> TestGateway {
        start_with(
            std::sync::Arc::clone(&self.pki),
            self.database.clone(),
            self.data_dir.clone(),
            self.policy_dir.clone(),
            self.witness_policy.clone(),
            self.extra_settings.clone(),
        )
        .await
    }

    /// Stops this gateway (drained) and starts it again on the same PKI and database with
    /// `settings` added, as an operator changing its configuration would.
    pub async fn restart_with(mut self, settings: &[(&str, String)]) -> TestGateway {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
        let mut extra = self.extra_settings.clone();
        extra.extend(settings.iter().map(|(k, v)| (k.to_string(), v.clone())));
        start_with(
            std::sync::Arc::clone(&self.pki),
            self.database.clone(),
            self.data_dir.clone(),
            self.policy_dir.clone(),
            self.witness_policy.clone(),
            extra,
        )
        .await
    }

    /// The gateway's store (its own pool on the test database).
    pub fn store(&self) -> &safegate::store::Store {
        &self.store
    }

    /// Stops this gateway abruptly (no drain) and starts a new process-equivalent on the
    /// same PKI and database, as after a crash and restart.
    pub async fn crash_and_restart(mut self) -> TestGateway {
        if let Some(handle) = self.handle.take() {
            handle.abort();
            let _ = handle.await;
        }
        self.shutdown.take();
        self.store.close().await;
        let pki = std::sync::Arc::clone(&self.pki);
        let database = std::mem::replace(
            &mut self.database,
            TestDatabase::Sqlite {
                file: PathBuf::new(),
            },
        );
        start_with(
            pki,
            database,
            self.data_dir.clone(),
            self.policy_dir.clone(),
            self.witness_policy.clone(),
            self.extra_settings.clone(),
        )
        .await
    }
}

impl TestGateway {
    /// A channel presenting the given client certificate (or none).
    pub async fn channel_as(
        &self,
        client: Option<&IssuedCertificate>,
    ) -> Result<Channel, tonic::transport::Error> {
        channel_to(self.addr, &self.pki.ca_pem(), client).await
    }

    /// A channel authenticated as one of the demo systems.
    pub async fn channel(&self, system: &str) -> Channel {
        self.channel_as(Some(&self.pki.client(system)))
            .await
            .expect("connect with a registered certificate")
    }

    /// WhoAmI as `system`, optionally asserting a practitioner role.
    pub async fn who_am_i(
        &self,
        system: &str,
        context: Option<PractitionerContext>,
    ) -> Result<WhoAmIResponse, tonic::Status> {
        let mut client = IdentityServiceClient::new(self.channel(system).await);
        client
            .who_am_i(WhoAmIRequest { context })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Stops the gateway and waits for it to drain.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(handle) => handle.await.expect("gateway task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A new connection to the gateway at `addr`, trusting `ca_pem` for its certificate and
/// presenting `client` (or no certificate).
pub async fn channel_to(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&IssuedCertificate>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.certificate_pem, &client.key_pem));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

/// The certificate (DER) the server at `addr` presents in a new TLS handshake made as
/// `client`.
pub async fn presented_server_certificate(
    addr: SocketAddr,
    ca_pem: String,
    client: IssuedCertificate,
) -> Vec<u8> {
    tokio::task::spawn_blocking(move || {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA pem"))
            .expect("add root");
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![
                    CertificateDer::from_pem_slice(client.certificate_pem.as_bytes())
                        .expect("client pem"),
                ],
                PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).expect("key pem"),
            )
            .expect("client auth");
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = ServerName::try_from("localhost").expect("server name");
        let mut connection =
            rustls::ClientConnection::new(Arc::new(config), name).expect("client connection");
        let mut socket = std::net::TcpStream::connect(addr).expect("tcp connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        while connection.is_handshaking() {
            connection
                .complete_io(&mut socket)
                .expect("TLS handshake with the gateway");
        }
        connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("the server presented a certificate")
            .as_ref()
            .to_vec()
    })
    .await
    .expect("handshake task")
}

/// A practitioner context with the given role.
pub fn context(practitioner_id: &str, role: Role) -> PractitionerContext {
    PractitionerContext {
        practitioner_id: practitioner_id.into(),
        role: role.into(),
        ..Default::default()
    }
}

/// A TLS client trusting `ca_pem`, presenting `client`'s certificate when given.
fn client_tls(ca_pem: &str, client: Option<&IssuedCertificate>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA pem"))
        .expect("add root");
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    match client {
        Some(client) => builder
            .with_client_auth_cert(
                vec![
                    CertificateDer::from_pem_slice(client.certificate_pem.as_bytes())
                        .expect("client pem"),
                ],
                PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).expect("key pem"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    }
}

/// Performs a raw TLS handshake as a client (optionally with a certificate) and reports
/// how the server ended it: `Ok` if the connection stayed open, or the TLS error.
pub async fn tls_handshake(
    addr: SocketAddr,
    ca_pem: String,
    client: Option<IssuedCertificate>,
) -> Result<(), rustls::Error> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut config = client_tls(&ca_pem, client.as_ref());
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = ServerName::try_from("localhost").expect("server name");
        let mut connection =
            rustls::ClientConnection::new(Arc::new(config), name).expect("client connection");
        let mut socket = std::net::TcpStream::connect(addr).expect("tcp connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut stream = rustls::Stream::new(&mut connection, &mut socket);
        let outcome = stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .and_then(|()| stream.read(&mut [0u8; 64]).map(|_| ()));
        match outcome {
            Ok(()) => Ok(()),
            Err(error) => match error
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
            {
                Some(tls_error) => Err(tls_error.clone()),
                None => Err(rustls::Error::General(format!("io: {error}"))),
            },
        }
    })
    .await
    .expect("handshake task")
}

/// Polls `check` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The role each demo system's practitioners act in, and a practitioner id for them.
pub fn acting(system: &str) -> PractitionerContext {
    let (id, role) = match system {
        "police-iom" => ("IOM-0001", Role::IomOfficer),
        "probation" => ("OM-0001", Role::OffenderManager),
        "health-visiting" => ("HV-0001", Role::HealthVisitor),
        "gp-practice" => ("GP-0001", Role::Gp),
        "childrens-services" => ("SW-0001", Role::SocialWorker),
        "nursery" => ("DSL-0001", Role::SchoolDsl),
        "primary-school" => ("DSL-0900", Role::SchoolDsl),
        "ig-office" => ("IG-0001", Role::IgOfficer),
        "mash" => ("MASH-0001", Role::IdentitySteward),
        other => panic!("no demo system {other}"),
    };
    context(id, role)
}

impl TestGateway {
    /// A records client authenticated as one of the demo systems.
    pub async fn records(
        &self,
        system: &str,
    ) -> safegate::api::proto::records_service_client::RecordsServiceClient<Channel> {
        safegate::api::proto::records_service_client::RecordsServiceClient::new(
            self.channel(system).await,
        )
    }

    /// A direct connection to the gateway's database, for checking what was stored.
    pub async fn database_pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.database.url())
            .await
            .expect("connect to the test database")
    }

    /// Rows in a table of the gateway's database.
    pub async fn count(&self, table: &str) -> i64 {
        let pool = self.database_pool().await;
        let count = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .expect("count rows");
        pool.close().await;
        count
    }
}

impl TestGateway {
    /// An audit client authenticated as the IG office.
    pub async fn audit(
        &self,
    ) -> safegate::api::proto::audit_service_client::AuditServiceClient<Channel> {
        safegate::api::proto::audit_service_client::AuditServiceClient::new(
            self.channel("ig-office").await,
        )
    }
}

/// The IG officer's context for reading the disclosure log.
pub fn auditor() -> PractitionerContext {
    PractitionerContext {
        practitioner_id: "IG-0001".into(),
        role: Role::IgOfficer.into(),
        purpose: safegate::api::proto::Purpose::Audit.into(),
        ..Default::default()
    }
}

impl TestGateway {
    /// Closes the gateway's database pool under it: every later query fails.
    pub async fn close_database(&self) {
        self.store.close().await;
    }
}

/// The `safegate` binary built for these tests.
pub const SAFEGATE: &str = env!("CARGO_BIN_EXE_safegate");

/// `safegate serve` as a child process on 127.0.0.1:0, its own dev PKI (`safegate pki
/// init`) and a fresh database, its log in a file; killed when dropped.
pub struct GatewayProcess {
    child: std::process::Child,
    log: PathBuf,
    pub addr: SocketAddr,
    pub pki: PathBuf,
    pub database: TestDatabase,
}

impl GatewayProcess {
    /// Starts the gateway in `dir` with `registry` (the demo registry when `None`) and
    /// the environment variables `env` (no other `SAFEGATE_*` or `OTEL_*` variable is
    /// passed on), and waits until it has bound its port.
    pub async fn start(dir: &Path, registry: Option<&Path>, env: &[(&str, String)]) -> Self {
        init_process();
        let pki = dir.join("pki");
        let output = std::process::Command::new(SAFEGATE)
            .args(["pki", "init", "--dir"])
            .arg(&pki)
            .env_clear()
            .output()
            .expect("run `safegate pki init`");
        assert!(
            output.status.success(),
            "`safegate pki init` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let database = TestDatabase::create(dir).await;
        let log = dir.join("serve.log");
        let demo_registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/registry.toml");
        let mut command = std::process::Command::new(SAFEGATE);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .arg("--database-url")
            .arg(database.url())
            .arg("--registry")
            .arg(registry.unwrap_or(&demo_registry))
            .arg("--policy-dir")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
            .arg("--pki-dir")
            .arg(&pki)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(
                std::fs::File::create(&log).expect("log file"),
            ));
        for (key, _) in std::env::vars() {
            if key.starts_with("SAFEGATE_") || key.starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start `safegate serve`");
        let mut process = GatewayProcess {
            child,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pki,
            database,
        };
        let mut found = None;
        let ready = eventually(Duration::from_secs(60), || {
            found = process
                .log()
                .lines()
                .find(|l| l.contains("gateway ready"))
                .and_then(|l| l.split("local_addr=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|addr| addr.parse().ok());
            async move { found.is_some() }
        })
        .await;
        assert!(ready, "the gateway did not start: {}", process.log());
        process.addr = found.expect("address");
        process
    }

    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends the gateway a signal (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }

    /// The certificate and key `pki init` wrote for a demo system.
    pub fn client(&self, system: &str) -> IssuedCertificate {
        let read = |ext: &str| {
            std::fs::read_to_string(self.pki.join(format!("{system}.{ext}"))).expect("read cert")
        };
        IssuedCertificate {
            certificate_pem: read("pem"),
            key_pem: read("key"),
        }
    }

    /// The deployment's CA certificate.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.pki.join("ca.pem")).expect("read the CA")
    }

    /// A channel authenticated as one of the demo systems.
    pub async fn channel(&self, system: &str) -> Channel {
        channel_to(self.addr, &self.ca_pem(), Some(&self.client(system)))
            .await
            .expect("connect with a registered certificate")
    }

    /// Stops the gateway with SIGTERM and returns its exit status.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut child = std::mem::replace(
            &mut self.child,
            std::process::Command::new("true")
                .spawn()
                .expect("a stand-in child"),
        );
        tokio::task::spawn_blocking(move || child.wait().expect("wait for the gateway"))
            .await
            .expect("wait task")
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response of the IG console.
pub struct ConsolePage {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl ConsolePage {
    /// The token the page's forms carry.
    pub fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("the page has a form") + marker.len();
        let end = self.body[start..].find('"').expect("token ends") + start;
        self.body[start..end].to_owned()
    }
}

impl TestGateway {
    /// A console page as demo officer `officer` (e.g. `ig-0001`) sees it.
    pub async fn console_get(&self, officer: &str, path: &str) -> ConsolePage {
        self.console(Some(&self.pki.officer(officer)), "GET", path, None, &[])
            .await
            .expect("console answers")
    }

    /// Posts `form` to `path` as `officer`, from the console itself, with the token of
    /// the officer's own page at `page`.
    pub async fn console_post(
        &self,
        officer: &str,
        page: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> ConsolePage {
        let token = self.console_get(officer, page).await.csrf_token();
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend_from_slice(form);
        self.console(
            Some(&self.pki.officer(officer)),
            "POST",
            path,
            Some(&fields),
            &[("sec-fetch-site", "same-origin")],
        )
        .await
        .expect("console answers")
    }

    /// One HTTPS request to the IG console, presenting `client` (or no certificate), with
    /// `form` as an urlencoded body (POST) and `headers` added.
    pub async fn console(
        &self,
        client: Option<&IssuedCertificate>,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Result<ConsolePage, String> {
        use http_body_util::{BodyExt, Full};
        let addr = self.console_addr.expect("the gateway serves the console");
        let config = client_tls(&self.pki.ca_pem(), client);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(connection);
        let body = form.map(|fields| {
            fields
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        });
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("localhost:{}", addr.port()));
        if body.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
            .await
            .map_err(|_| "no response within 30 s".to_owned())?
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(ConsolePage {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
