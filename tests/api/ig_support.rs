//! Shared steps of the IG review tests: the synthetic case, the two disclosures about Dean
//! Mills the narrative needs (a police query and a school's break-glass query), the audit
//! calls and the `safegate` binary.

use std::path::Path;
use std::process::{Command, Output};

use safegate::api::proto::{
    self, ExportEntriesRequest, ExportFormat, GetEntryRequest, Identifier, IdentifierScheme,
    ListEntriesRequest, LogEntry, PersonRef, PractitionerContext, Purpose, QueryRequest,
    QueryResponse, Role, WhoAmIRequest, identity_service_client::IdentityServiceClient,
    query_service_client::QueryServiceClient,
};
use safegate::demo::case::{self, DEAN_PNC, LoadedCase};

use crate::helpers::{TestGateway, auditor, context, spawn_gateway};

/// Makes `n` refusals (a nursery asserting a police role as `DSL-<i>`), one entry each.
pub async fn refusals(gateway: &TestGateway, n: usize) {
    let mut client = IdentityServiceClient::new(gateway.channel("nursery").await);
    for i in 0..n {
        let status = client
            .who_am_i(WhoAmIRequest {
                context: Some(context(&format!("DSL-{i}"), Role::IomOfficer)),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }
}

/// A gateway with the synthetic case loaded.
pub async fn with_case() -> (TestGateway, LoadedCase) {
    let gateway = spawn_gateway().await;
    let loaded = case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case loads");
    (gateway, loaded)
}

fn dean() -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(Identifier {
            scheme: IdentifierScheme::PncId.into(),
            value: DEAN_PNC.into(),
            namespace: String::new(),
        })),
    })
}

pub async fn query_dean(
    gateway: &TestGateway,
    system: &str,
    context: PractitionerContext,
) -> Result<QueryResponse, tonic::Status> {
    QueryServiceClient::new(gateway.channel(system).await)
        .query(QueryRequest {
            context: Some(context),
            subject: dean(),
            search: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The IOM officer's query about Dean: a disclosure to police. Returns its entry id.
pub async fn police_query(gateway: &TestGateway) -> String {
    query_dean(
        gateway,
        "police-iom",
        PractitionerContext {
            practitioner_id: "IOM-0001".into(),
            role: Role::IomOfficer.into(),
            purpose: Purpose::OffenderManagement.into(),
            ..Default::default()
        },
    )
    .await
    .expect("the IOM officer is answered")
    .disclosure_entry_id
}

/// The primary school's break-glass query about Dean. Returns its entry id.
pub async fn break_glass_query(gateway: &TestGateway) -> String {
    let answer = query_dean(
        gateway,
        "primary-school",
        PractitionerContext {
            practitioner_id: "DSL-0900".into(),
            role: Role::SchoolDsl.into(),
            purpose: Purpose::ChildSafeguarding.into(),
            break_glass: true,
            justification: "Ben disclosed at breakfast club that his father visits at night".into(),
        },
    )
    .await
    .expect("break-glass is answered");
    assert!(answer.break_glass);
    answer.disclosure_entry_id
}

/// The primary school's query without break-glass: refused, and logged.
pub async fn refused_school_query(gateway: &TestGateway) {
    let status = query_dean(
        gateway,
        "primary-school",
        PractitionerContext {
            practitioner_id: "DSL-0900".into(),
            role: Role::SchoolDsl.into(),
            purpose: Purpose::ChildSafeguarding.into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("no legitimate relationship");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

/// Entries matching `request`, read as the IG officer.
pub async fn list(gateway: &TestGateway, request: ListEntriesRequest) -> Vec<LogEntry> {
    gateway
        .audit()
        .await
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            page_size: 1000,
            ..request
        })
        .await
        .expect("list entries")
        .into_inner()
        .entries
}

/// One entry, read as the IG officer.
pub async fn get(gateway: &TestGateway, entry_id: &str) -> LogEntry {
    gateway
        .audit()
        .await
        .get_entry(GetEntryRequest {
            context: Some(auditor()),
            entry_id: entry_id.into(),
        })
        .await
        .expect("get entry")
        .into_inner()
        .entry
        .expect("entry")
}

/// The whole text of an export streamed over gRPC.
pub async fn export(gateway: &TestGateway, request: ExportEntriesRequest) -> String {
    let mut stream = gateway
        .audit()
        .await
        .export_entries(ExportEntriesRequest {
            context: Some(auditor()),
            ..request
        })
        .await
        .expect("export starts")
        .into_inner();
    let mut text = String::new();
    while let Some(chunk) = stream.message().await.expect("export chunk") {
        text.push_str(&chunk.data);
    }
    text
}

/// An unfiltered export request in `format`.
pub fn everything(format: ExportFormat) -> ExportEntriesRequest {
    ExportEntriesRequest {
        format: format.into(),
        ..Default::default()
    }
}

/// Runs the `safegate` binary with `args`, without any SAFEGATE_* settings from the
/// environment of the test run.
pub fn safegate(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_safegate"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SAFEGATE_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env("USER", "test-operator")
        .output()
        .expect("the safegate binary runs")
}

/// Runs a `safegate audit` command against the gateway's database and key.
pub fn audit_cli(gateway: &TestGateway, args: &[&str]) -> Output {
    let url = gateway.database.url();
    let key = gateway.pki.dir.join("checkpoint.key");
    let key = key.to_str().expect("utf-8 path");
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--database-url", &url, "--checkpoint-key", key]);
    safegate(&all)
}

/// The public key file `pki` wrote beside the checkpoint key.
pub fn public_key(gateway: &TestGateway) -> String {
    let path = gateway.pki.dir.join("checkpoint.pub");
    assert!(Path::new(&path).exists(), "checkpoint.pub written");
    path.display().to_string()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every refusal entry of the log, oldest first.
pub async fn refusal_entries(gateway: &TestGateway) -> Vec<safegate::api::proto::LogEntry> {
    list(
        gateway,
        safegate::api::proto::ListEntriesRequest {
            kind: "refusal".into(),
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
}
