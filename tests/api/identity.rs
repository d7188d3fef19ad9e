//! WhoAmI: a registered system's certificate resolves to its own identity; roles are
//! checked against the registry.

use safegate::api::proto::{Agency, Role};
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{context, spawn_gateway};

fn der_sha256(pem: &str) -> String {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem");
    hex::encode(Sha256::digest(der.as_ref()))
}

#[tokio::test]
async fn each_registered_system_gets_its_own_identity_back() {
    let gateway = spawn_gateway().await;
    let expectations = [
        (
            "police-iom",
            Agency::Police,
            vec![Role::IomOfficer, Role::PoliceOfficer],
        ),
        ("probation", Agency::Probation, vec![Role::OffenderManager]),
        (
            "health-visiting",
            Agency::Health,
            vec![Role::HealthVisitor, Role::SchoolNurse],
        ),
        ("gp-practice", Agency::Health, vec![Role::Gp]),
        (
            "childrens-services",
            Agency::ChildrensServices,
            vec![Role::SocialWorker, Role::TeamManager],
        ),
        ("nursery", Agency::Education, vec![Role::SchoolDsl]),
        ("primary-school", Agency::Education, vec![Role::SchoolDsl]),
        (
            "ig-office",
            Agency::InformationGovernance,
            vec![Role::IgOfficer],
        ),
    ];
    // Twice round: the second pass is answered from the registry's memory of each
    // certificate and must still tell every system apart.
    for (system, agency, roles) in expectations.iter().chain(expectations.iter()).cloned() {
        let me = gateway
            .who_am_i(system, None)
            .await
            .expect("WhoAmI succeeds");
        assert_eq!(me.system_id, system);
        assert_eq!(me.agency(), agency, "{system}");
        let assertable: Vec<Role> = me.assertable_roles().collect();
        assert_eq!(assertable, roles, "{system}");
        assert_eq!(
            me.certificate_sha256,
            der_sha256(&gateway.pki.client(system).certificate_pem),
            "{system}"
        );
        assert_eq!(
            me.certificate_identity,
            format!("uri:urn:safegate:system:{system}")
        );
        assert_eq!(me.issuer_authority, "dev-ca");
        assert!(me.context.is_none());
    }
    gateway.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_assertable_role_is_echoed_back() {
    let gateway = spawn_gateway().await;
    let me = gateway
        .who_am_i("police-iom", Some(context("IOM-0001", Role::IomOfficer)))
        .await
        .expect("WhoAmI succeeds");
    let echoed = me.context.expect("context echoed");
    assert_eq!(echoed.role(), Role::IomOfficer);
    assert_eq!(echoed.practitioner_id, "IOM-0001");
}

#[tokio::test]
async fn a_role_the_agency_may_not_assert_is_permission_denied() {
    let gateway = spawn_gateway().await;
    let status = gateway
        .who_am_i("nursery", Some(context("DSL-7", Role::IomOfficer)))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("registry.role_not_assertable"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("nursery"), "{}", status.message());
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.reason, "registry.role_not_assertable");
}

#[tokio::test]
async fn a_malformed_context_is_invalid_argument_naming_each_field() {
    let gateway = spawn_gateway().await;
    let mut bad = context("", Role::Unspecified);
    bad.justification = "x".repeat(5000);
    let status = gateway
        .who_am_i("police-iom", Some(bad))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest detail")
        .field_violations;
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "context.practitioner_id",
            "context.role",
            "context.justification"
        ]
    );

    let mut unknown_role = context("IOM-1", Role::IomOfficer);
    unknown_role.role = 99;
    let status = gateway
        .who_am_i("police-iom", Some(unknown_role))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("context.role"),
        "{}",
        status.message()
    );
}
