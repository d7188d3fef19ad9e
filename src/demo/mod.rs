//! `safegate demo`: everything a newcomer needs to see the gateway answer, on the
//! embedded SQLite default with the development PKI.

use std::future::Future;

use anyhow::Context;

use crate::config::Settings;
use crate::pki;
use crate::startup::Application;

pub mod case;
pub(crate) mod walkthrough;

/// Where the demo serves the IG console unless told otherwise.
pub const CONSOLE_ADDR: &str = "127.0.0.1:8443";

/// Runs the demo: dev PKI if absent, the gateway on SQLite in the data dir, the synthetic
/// case loaded through the public API, then serves until `shutdown`.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = prepare(settings)?;
    let pki_dir = settings.pki_dir.clone();
    let app = Application::build(settings.clone()).await?;
    let addr = app.local_addr();
    let console_addr = app.console_addr();
    let server = tokio::spawn(app.run_until_stopped(shutdown));
    let loaded = case::load(addr, &pki_dir)
        .await
        .context("loading the demo case through the API")?;
    println!("{}", describe_case(&loaded));
    match walkthrough::play(addr, &pki_dir, &loaded).await {
        Ok(text) => println!("{text}"),
        Err(error) => println!("\nThe walk-through could not finish: {error:#}"),
    }
    if let Some(console) = console_addr {
        println!("{}", console_instructions(&settings, console));
    }
    println!("{}", instructions(&settings));
    server.await.context("gateway task")?
}

fn describe_case(loaded: &case::LoadedCase) -> String {
    let total: usize = loaded.published_by.iter().map(|(_, n)| n).sum();
    let by_system = loaded
        .published_by
        .iter()
        .map(|(system, n)| format!("{system} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "Loaded the synthetic case of DOMAIN.md through the API: {total} facts ({by_system}).\n\
         Amy Carter's status as Children's Services record it:\n  {}",
        loaded.amy_status.summary
    )
}

/// The demo's registry and policies, built in so the demo runs from any directory.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "registry.toml",
        include_str!("../../policies/registry.toml"),
    ),
    ("sharing.conf", include_str!("../../policies/sharing.conf")),
    ("sharing.csv", include_str!("../../policies/sharing.csv")),
    (
        crate::startup::MATCHING_RULES,
        include_str!("../../policies/matching.toml"),
    ),
    (
        crate::startup::CONTACT_RULES,
        include_str!("../../policies/contact.toml"),
    ),
    (
        crate::startup::ALERT_RULES,
        include_str!("../../policies/alerts.toml"),
    ),
];

/// Finds the registry and policies (or writes the built-in ones into the data dir when
/// the configured ones are missing, saying so), and makes the dev PKI if absent.
fn prepare(mut settings: Settings) -> anyhow::Result<Settings> {
    let policies_present = settings.registry.exists()
        && BUILT_IN
            .iter()
            .skip(1)
            .all(|(file, _)| settings.policy_dir.join(file).exists());
    if policies_present {
        println!(
            "using the agency registry {} and the policies in {}",
            settings.registry.display(),
            settings.policy_dir.display()
        );
    } else {
        let dir = settings.data_dir.join("policies");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut written = Vec::new();
        for (file, text) in BUILT_IN {
            let path = dir.join(file);
            if !path.exists() {
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                written.push(*file);
            }
        }
        let how = if written.is_empty() {
            "as an earlier demo wrote them".to_owned()
        } else {
            format!("built-in copies written now: {}", written.join(", "))
        };
        println!(
            "{} or the policies in {} are missing here: using the demo's registry and \
             policies in {} ({how}; edit them there, or set `registry` and `policy_dir`)",
            settings.registry.display(),
            settings.policy_dir.display(),
            dir.display()
        );
        settings.registry = dir.join("registry.toml");
        settings.policy_dir = dir;
    }
    let pki_dir = &settings.pki_dir;
    if !pki_dir.join("ca.pem").exists() {
        pki::init(pki_dir, pki::DEMO_SYSTEMS, false)
            .with_context(|| format!("creating the dev PKI in {}", pki_dir.display()))?;
        println!("created a development PKI in {}", pki_dir.display());
    }
    let added = pki::add_missing_clients(pki_dir, pki::DEMO_SYSTEMS)
        .with_context(|| format!("adding client certificates to {}", pki_dir.display()))?;
    if !added.is_empty() {
        println!(
            "issued client certificates from the dev CA in {} for: {}",
            pki_dir.display(),
            added.join(", ")
        );
    }
    let officers = pki::ensure_officers(pki_dir, pki::DEMO_OFFICERS)
        .with_context(|| format!("adding officers' certificates to {}", pki_dir.display()))?;
    if !officers.is_empty() {
        println!(
            "issued personal certificates for the IG console in {} for: {}",
            pki_dir.display(),
            officers.join(", ")
        );
    }
    Ok(settings)
}

fn instructions(settings: &Settings) -> String {
    let pki = settings.pki_dir.display();
    let addr = settings.listen_addr;
    let systems = pki::DEMO_SYSTEMS.join(", ");
    format!(
        r#"
safegate demo: gRPC over mutual TLS on {addr}, database {db}

Each agency system of the demo registry has a client certificate in {pki}:
  {systems}

Call it with grpcurl (reflection is on):
  grpcurl -cacert {pki}/ca.pem -cert {pki}/police-iom.pem -key {pki}/police-iom.key \
    -d '{{"context": {{"practitioner_id": "IOM-0001", "role": "ROLE_IOM_OFFICER"}}}}' \
    {addr} safegate.v1.IdentityService/WhoAmI

Or from Python (pip install grpcio grpcio-tools):
  python -m grpc_tools.protoc -I proto --python_out=. --grpc_python_out=. proto/safegate/v1/*.proto
  python - <<'PY'
import grpc
from safegate.v1 import identity_pb2, identity_pb2_grpc
read = lambda p: open(p, "rb").read()
creds = grpc.ssl_channel_credentials(read("{pki}/ca.pem"), read("{pki}/police-iom.key"), read("{pki}/police-iom.pem"))
with grpc.secure_channel("{addr}", creds) as channel:
    print(identity_pb2_grpc.IdentityServiceStub(channel).WhoAmI(identity_pb2.WhoAmIRequest()))
PY

Press Ctrl-C to stop.
"#,
        db = redact(&settings.database_url),
    )
}

/// How a new IG officer opens the console.
fn console_instructions(settings: &Settings, console: std::net::SocketAddr) -> String {
    let pki = settings.pki_dir.display();
    let port = console.port();
    let password = pki::DEMO_P12_PASSWORD;
    format!(
        r#"The IG officers' console: https://localhost:{port}/
  Sign in with a personal certificate (PKCS#12, password `{password}`):
    {pki}/officer-ig-0001.p12   Priya Shah, IG officer (IG-0001)
    {pki}/officer-ig-0002.p12   Tom Evans, IG officer (IG-0002)
    {pki}/officer-mash-0001.p12 Sam Okafor, MASH identity steward (MASH-0001): review tasks
    {pki}/officer-hv-0001.p12   Hannah Vale, health visitor: refused (neither role)
  Import one into your browser's personal certificates, and trust {pki}/ca.pem as an
  authority for websites (the console's server certificate is from the dev CA).
  Without a certificate every page is refused. See the README's "The IG console".
"#
    )
}

/// A database URL without its password, for display.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://sg:hunter2@db:5432/sg"),
            "postgres://***@db:5432/sg"
        );
        assert_eq!(redact("sqlite://data/sg.db"), "sqlite://data/sg.db");
    }
}
