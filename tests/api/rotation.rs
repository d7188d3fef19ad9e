//! Rotation without restart: the server certificate, the registry and its authorities
//! reloaded by `AdminService.ReloadPolicy` (and by a real SIGHUP to the binary) while
//! clients keep calling.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rustls::AlertDescription;
use rustls_pki_types::{CertificateDer, pem::PemObject};
use safegate::api::proto::{
    ReloadPolicyRequest, ReloadPolicyResponse, WhoAmIRequest,
    admin_service_client::AdminServiceClient, identity_service_client::IdentityServiceClient,
};
use safegate::pki::{CertificateAuthority, IssuedCertificate, Validity};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{
    GatewayProcess, TestGateway, TestPki, acting, auditor, channel_to, context, eventually,
    presented_server_certificate, spawn_gateway_with_settings, temp_dir, tls_handshake,
};

/// Systems that stay registered throughout and call in a loop.
const STAYING: &[&str] = &[
    "police-iom",
    "probation",
    "health-visiting",
    "gp-practice",
    "childrens-services",
    "mash",
];
/// Clients per staying system.
const CLIENTS_PER_SYSTEM: usize = 2;
/// A client opens a new connection (a new handshake) every this many calls.
const CALLS_PER_CONNECTION: u64 = 4;

/// The demo registry copied where a test may edit it.
fn registry_copy(dir: &Path) -> PathBuf {
    let path = dir.join("registry.toml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/registry.toml"),
        &path,
    )
    .expect("copy the registry");
    path
}

/// The registry entries of a second authority and of one system it issues for.
fn partner_entries() -> &'static str {
    r#"
[[authority]]
id = "partner-ca"
certificate = "partner-ca.pem"

[[system]]
id = "childrens-services-north"
name = "Children's Services, northern locality"
agency = "childrens_services"
roles = ["social_worker"]
authority = "partner-ca"
san_uri = "urn:safegate:system:childrens-services-north"
contact_route = "north.front.door@council.example.test"
"#
}

/// `text` without the `[[system]]` block whose id is `id`.
fn without_system(text: &str, id: &str) -> String {
    let mut blocks: Vec<String> = Vec::new();
    for (i, block) in text.split("\n[[").enumerate() {
        blocks.push(if i == 0 {
            block.to_owned()
        } else {
            format!("[[{block}")
        });
    }
    let marker = format!("id = \"{id}\"");
    let kept: Vec<String> = blocks
        .into_iter()
        .filter(|b| !(b.starts_with("[[system]]") && b.contains(&marker)))
        .collect();
    assert!(
        kept.len() < text.split("\n[[").count(),
        "no system {id} in the registry"
    );
    kept.join("\n")
}

fn sha256_of_pem(pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("certificate pem");
    hex::encode(Sha256::digest(der.as_ref()))
}

/// WhoAmI over `channel` as `system`'s practitioner.
async fn who_am_i(channel: Channel, system: &str) -> Result<String, tonic::Status> {
    IdentityServiceClient::new(channel)
        .who_am_i(WhoAmIRequest {
            context: Some(acting(system)),
        })
        .await
        .map(|r| r.into_inner().system_id)
}

/// WhoAmI on a new connection presenting `client`.
async fn who_am_i_fresh(
    gateway: &TestGateway,
    client: &IssuedCertificate,
    system: &str,
) -> Result<String, tonic::Status> {
    let channel = channel_to(gateway.addr, &gateway.pki.ca_pem(), Some(client))
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e:?}")))?;
    who_am_i(channel, system).await
}

async fn reload(gateway: &TestGateway) -> ReloadPolicyResponse {
    AdminServiceClient::new(gateway.channel("ig-office").await)
        .reload_policy(ReloadPolicyRequest {
            context: Some(auditor()),
        })
        .await
        .expect("the reload call itself succeeds")
        .into_inner()
}

/// Clients of the staying systems calling WhoAmI in a loop until stopped, each opening a
/// new connection every few calls; every failure is kept.
struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(gateway: &TestGateway) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut clients = Vec::new();
        for system in STAYING.iter().copied() {
            for _ in 0..CLIENTS_PER_SYSTEM {
                let (stop, calls, failures) =
                    (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&failures));
                let (addr, ca, client) = (
                    gateway.addr,
                    gateway.pki.ca_pem(),
                    gateway.pki.client(system),
                );
                clients.push(tokio::spawn(async move {
                    let mut channel = None;
                    let mut made: u64 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        if made.is_multiple_of(CALLS_PER_CONNECTION) {
                            channel = None;
                        }
                        let current = match &channel {
                            Some(c) => Ok(Channel::clone(c)),
                            None => channel_to(addr, &ca, Some(&client)).await,
                        };
                        made += 1;
                        let outcome = match current {
                            Ok(c) => {
                                channel = Some(c.clone());
                                who_am_i(c, system).await.map_err(|s| format!("{s:?}"))
                            }
                            Err(e) => Err(format!("connect: {e:?}")),
                        };
                        match outcome {
                            Ok(id) if id == system => {
                                calls.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(other) => failures
                                .lock()
                                .await
                                .push(format!("{system}: answered as {other}")),
                            Err(e) => failures.lock().await.push(format!("{system}: {e}")),
                        }
                    }
                }));
            }
        }
        Load {
            stop,
            calls,
            failures,
            clients,
        }
    }

    /// Waits until every client could have made a few more calls: the load runs across
    /// whatever happens next.
    async fn progresses(&self) {
        let from = self.calls.load(Ordering::Relaxed);
        let wanted = from + (STAYING.len() * CLIENTS_PER_SYSTEM) as u64 * 3;
        assert!(
            eventually(Duration::from_secs(30), || async {
                self.calls.load(Ordering::Relaxed) >= wanted
            })
            .await,
            "the load stopped making calls"
        );
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.expect("client task");
        }
        let failures = self.failures.lock().await.clone();
        (self.calls.load(Ordering::Relaxed), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificates_and_registry_rotate_under_load_without_a_failed_call() {
    let pki = TestPki::new();
    let pki_dir = pki.dir.clone();
    let dir = temp_dir("rotation");
    let registry = registry_copy(&dir);
    let original_registry = std::fs::read_to_string(&registry).expect("read registry");
    let gateway = spawn_gateway_with_settings(
        pki,
        vec![("registry".into(), registry.display().to_string())],
    )
    .await;
    let started = reload(&gateway).await;
    assert!(started.reloaded, "{}", started.error);
    let original_server = std::fs::read_to_string(pki_dir.join("server.pem")).expect("server");
    assert_eq!(
        started.server_certificate_sha256,
        sha256_of_pem(&original_server)
    );

    // A connection the nursery opens now, kept open across its removal.
    let nursery = gateway.pki.client("nursery");
    let nursery_open = gateway.channel("nursery").await;
    assert_eq!(
        who_am_i(nursery_open.clone(), "nursery")
            .await
            .expect("the nursery is registered at first"),
        "nursery"
    );

    let load = Load::start(&gateway);
    load.progresses().await;

    // (a) Rotate the server certificate: a new key pair, the same name.
    let rotated = gateway
        .pki
        .ca
        .issue_server(&["localhost", "127.0.0.1"])
        .expect("new server certificate");
    rotated.write(&pki_dir, "server").expect("write it");
    let after_rotation = reload(&gateway).await;
    assert!(after_rotation.reloaded, "{}", after_rotation.error);
    let rotated_sha = sha256_of_pem(&rotated.certificate_pem);
    assert_eq!(after_rotation.server_certificate_sha256, rotated_sha);
    assert_ne!(rotated_sha, started.server_certificate_sha256);
    let presented = presented_server_certificate(
        gateway.addr,
        gateway.pki.ca_pem(),
        gateway.pki.client("police-iom"),
    )
    .await;
    assert_eq!(hex::encode(Sha256::digest(&presented)), rotated_sha);
    load.progresses().await;

    // (b) Add a system issued by a new authority: refused at the handshake until the
    // registry trusting its authority is reloaded, accepted from its next handshake after.
    let partner = CertificateAuthority::generate("partner agency CA").expect("partner CA");
    std::fs::write(pki_dir.join("partner-ca.pem"), partner.certificate_pem()).expect("write CA");
    let north = partner
        .issue_client("childrens-services-north", Validity::days(30))
        .expect("north certificate");
    assert_eq!(
        tls_handshake(gateway.addr, gateway.pki.ca_pem(), Some(north.clone())).await,
        Err(rustls::Error::AlertReceived(AlertDescription::UnknownCA)),
        "an authority not yet in force is not trusted"
    );
    let with_partner = format!("{original_registry}\n{}", partner_entries());
    std::fs::write(&registry, &with_partner).expect("add the partner");
    let after_adding = reload(&gateway).await;
    assert!(after_adding.reloaded, "{}", after_adding.error);
    assert_eq!(
        after_adding.registry_authorities,
        started.registry_authorities + 1,
        "the partner's authority added"
    );
    assert_eq!(
        after_adding.registry_systems,
        started.registry_systems + 1,
        "one system added"
    );
    let north_context = context("SW-0100", safegate::api::proto::Role::SocialWorker);
    let north_channel = channel_to(gateway.addr, &gateway.pki.ca_pem(), Some(&north))
        .await
        .expect("the new system's handshake succeeds");
    let north_whoami = IdentityServiceClient::new(north_channel.clone())
        .who_am_i(WhoAmIRequest {
            context: Some(north_context.clone()),
        })
        .await
        .expect("the new system is accepted")
        .into_inner();
    assert_eq!(north_whoami.system_id, "childrens-services-north");
    load.progresses().await;

    // (c) Remove the nursery: refused from its next call, on a new connection and on the
    // one it kept open.
    let without_nursery = without_system(&with_partner, "nursery");
    std::fs::write(&registry, &without_nursery).expect("remove the nursery");
    let after_removing = reload(&gateway).await;
    assert!(after_removing.reloaded, "{}", after_removing.error);
    assert_eq!(
        after_removing.registry_systems,
        after_adding.registry_systems - 1
    );
    let refused = who_am_i_fresh(&gateway, &nursery, "nursery")
        .await
        .expect_err("a removed system is refused");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("not registered"), "{refused:?}");
    let refused_open = who_am_i(nursery_open, "nursery")
        .await
        .expect_err("a removed system is refused on its open connection too");
    assert_eq!(refused_open.code(), Code::Unauthenticated);
    load.progresses().await;

    // (d) Broken files, each followed by a reload: nothing changes, and the answer says why.
    let in_force = (
        after_removing.policy_version.clone(),
        after_removing.server_certificate_sha256.clone(),
        after_removing.registry_systems,
        after_removing.registry_authorities,
    );
    let good_key = std::fs::read_to_string(pki_dir.join("server.key")).expect("key");
    let other_key = gateway
        .pki
        .ca
        .issue_server(&["localhost"])
        .expect("another key")
        .key_pem;
    let breakages: Vec<(&str, PathBuf, String, &str)> = vec![
        (
            "registry that is not TOML",
            registry.clone(),
            format!("{without_nursery}\n[[system]\nid = "),
            "agency registry",
        ),
        (
            "registry naming an unknown agency",
            registry.clone(),
            without_nursery.replace("agency = \"probation\"", "agency = \"prison\""),
            "agency `prison`",
        ),
        (
            "server certificate that is not PEM",
            pki_dir.join("server.pem"),
            "not a certificate\n".into(),
            "`tls_cert`",
        ),
        (
            "key that does not match the certificate",
            pki_dir.join("server.key"),
            other_key,
            "does not belong to `tls_cert`",
        ),
        (
            "key that is not PEM",
            pki_dir.join("server.key"),
            "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n".into(),
            "`tls_key`",
        ),
    ];
    for (what, path, broken, says) in breakages {
        let good = std::fs::read_to_string(&path).expect("read the good file");
        std::fs::write(&path, broken).expect("break the file");
        let refused = reload(&gateway).await;
        assert!(!refused.reloaded, "a {what} was put in force");
        assert!(
            refused.error.contains(says),
            "a {what}: the error `{}` does not say `{says}`",
            refused.error
        );
        assert_eq!(
            (
                refused.policy_version.clone(),
                refused.server_certificate_sha256.clone(),
                refused.registry_systems,
                refused.registry_authorities,
            ),
            in_force,
            "a {what} changed what is in force"
        );
        // Everything is as it was: the rotated certificate, the new system in, the removed
        // system out.
        let presented = presented_server_certificate(
            gateway.addr,
            gateway.pki.ca_pem(),
            gateway.pki.client("probation"),
        )
        .await;
        assert_eq!(
            hex::encode(Sha256::digest(&presented)),
            rotated_sha,
            "{what}"
        );
        let north_again = IdentityServiceClient::new(
            channel_to(gateway.addr, &gateway.pki.ca_pem(), Some(&north))
                .await
                .expect("the new system still connects"),
        )
        .who_am_i(WhoAmIRequest {
            context: Some(north_context.clone()),
        })
        .await
        .expect("the new system is still accepted");
        assert_eq!(
            north_again.into_inner().system_id,
            "childrens-services-north"
        );
        let nursery_again = who_am_i_fresh(&gateway, &nursery, "nursery")
            .await
            .expect_err("the removed system stays refused");
        assert_eq!(nursery_again.code(), Code::Unauthenticated, "{what}");
        load.progresses().await;
        std::fs::write(&path, good).expect("repair the file");
    }
    assert_eq!(
        std::fs::read_to_string(pki_dir.join("server.key")).expect("key"),
        good_key
    );

    // Removing an authority: its systems are refused at the handshake itself.
    std::fs::write(&registry, without_nursery.replace(partner_entries(), "")).expect("write");
    let without_partner = reload(&gateway).await;
    assert!(without_partner.reloaded, "{}", without_partner.error);
    assert_eq!(
        without_partner.registry_authorities,
        started.registry_authorities
    );
    assert_eq!(
        tls_handshake(gateway.addr, gateway.pki.ca_pem(), Some(north)).await,
        Err(rustls::Error::AlertReceived(AlertDescription::UnknownCA)),
        "a removed authority is not trusted at the next handshake"
    );
    load.progresses().await;

    let (calls, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} of {} calls by staying systems failed: {failures:?}",
        failures.len(),
        calls + failures.len() as u64
    );
    gateway.stop().await.expect("gateway stops cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_registry_of_the_running_binary() {
    let dir = temp_dir("sighup");
    let registry = registry_copy(&dir);
    let serve = GatewayProcess::start(&dir, Some(&registry), &[]).await;
    let (addr, ca) = (serve.addr, serve.ca_pem());

    // A new system with a certificate from the deployment's CA: unknown until SIGHUP.
    let issued = CertificateAuthority::load(&serve.pki)
        .expect("the deployment's CA")
        .issue_client("childrens-services-north", Validity::days(30))
        .expect("certificate");
    let north_context = context("SW-0100", safegate::api::proto::Role::SocialWorker);
    let ask = || {
        let (ca, issued, context) = (ca.clone(), issued.clone(), north_context.clone());
        async move {
            let channel = channel_to(addr, &ca, Some(&issued))
                .await
                .expect("a trusted CA's certificate connects");
            IdentityServiceClient::new(channel)
                .who_am_i(WhoAmIRequest {
                    context: Some(context),
                })
                .await
                .map(|r| r.into_inner().system_id)
        }
    };
    let before = ask().await.expect_err("not registered yet");
    assert_eq!(before.code(), Code::Unauthenticated);

    let original = std::fs::read_to_string(&registry).expect("registry");
    let added = format!(
        "{original}\n{}",
        partner_entries()
            .replace("authority = \"partner-ca\"", "authority = \"dev-ca\"")
            .split("[[system]]")
            .nth(1)
            .map(|s| format!("[[system]]{s}"))
            .expect("system block")
    );
    std::fs::write(&registry, &added).expect("add the system");
    serve.signal("HUP");
    let accepted = eventually(Duration::from_secs(30), || async {
        ask().await.ok().as_deref() == Some("childrens-services-north")
    })
    .await;
    assert!(
        accepted,
        "SIGHUP did not reload the registry: {}",
        serve.log()
    );
    assert!(
        serve
            .log()
            .contains("SIGHUP: reloaded the policy, registry and server certificate")
    );

    // A broken registry: SIGHUP refuses it, says why, and the system stays accepted.
    std::fs::write(&registry, format!("{added}\n[[system]\n")).expect("break it");
    serve.signal("HUP");
    let refused = eventually(Duration::from_secs(30), || async {
        serve.log().contains("SIGHUP: reload refused")
    })
    .await;
    assert!(refused, "no refusal logged: {}", serve.log());
    let log = serve.log();
    let line = log
        .lines()
        .find(|l| l.contains("SIGHUP: reload refused"))
        .expect("refusal line");
    assert!(line.contains("agency registry"), "{line}");
    assert_eq!(
        ask().await.expect("still accepted after a broken file"),
        "childrens-services-north"
    );

    // SIGTERM still stops it cleanly.
    let status = serve.stop().await;
    assert!(status.success(), "exit status {status:?}");
}
