//! Mutual TLS: who gets past the handshake, and who is known once past it.

use rustls::AlertDescription;
use safegate::api::proto::{WhoAmIRequest, identity_service_client::IdentityServiceClient};
use safegate::pki::{CertificateAuthority, Validity};
use tonic::Code;

use crate::helpers::{acting, spawn_gateway, tls_handshake};

#[tokio::test]
async fn a_registered_certificate_completes_the_handshake() {
    let gateway = spawn_gateway().await;
    let outcome = tls_handshake(
        gateway.addr,
        gateway.pki.ca_pem(),
        Some(gateway.pki.client("police-iom")),
    )
    .await;
    assert_eq!(outcome, Ok(()));
}

#[tokio::test]
async fn no_client_certificate_is_refused_at_the_handshake() {
    let gateway = spawn_gateway().await;
    let outcome = tls_handshake(gateway.addr, gateway.pki.ca_pem(), None).await;
    assert_eq!(
        outcome,
        Err(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
        ))
    );
    // And through a gRPC client: the call never reaches the gateway.
    // The client only learns of the refusal when it first reads, so the failure shows
    // either at connect or on the call; both carry the server's TLS alert.
    let failure = match gateway.channel_as(None).await {
        Ok(channel) => IdentityServiceClient::new(channel)
            .who_am_i(WhoAmIRequest::default())
            .await
            .map(|_| ())
            .map_err(|status| {
                assert!(matches!(status.code(), Code::Unknown | Code::Unavailable));
                format!("{status:?}")
            }),
        Err(connect_error) => Err(format!("{connect_error:?}")),
    };
    let failure = failure.expect_err("no certificate, no answer");
    assert!(failure.contains("CertificateRequired"), "{failure}");
}

#[tokio::test]
async fn a_certificate_from_a_foreign_ca_is_refused_at_the_handshake() {
    let gateway = spawn_gateway().await;
    let foreign = CertificateAuthority::generate("someone else's CA").expect("CA");
    // Same system name as a registered one: only the issuer differs.
    let impostor = foreign
        .issue_client("police-iom", Validity::days(30))
        .expect("cert");
    let outcome = tls_handshake(gateway.addr, gateway.pki.ca_pem(), Some(impostor)).await;
    assert_eq!(
        outcome,
        Err(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
    );
}

#[tokio::test]
async fn an_expired_certificate_is_refused_at_the_handshake() {
    let gateway = spawn_gateway().await;
    let expired = gateway
        .pki
        .ca
        .issue_client("police-iom", Validity::expired())
        .expect("cert");
    let outcome = tls_handshake(gateway.addr, gateway.pki.ca_pem(), Some(expired)).await;
    assert_eq!(
        outcome,
        Err(rustls::Error::AlertReceived(
            AlertDescription::CertificateExpired
        ))
    );
}

#[tokio::test]
async fn a_valid_certificate_of_an_unregistered_system_is_unauthenticated() {
    let gateway = spawn_gateway().await;
    let stranger = gateway
        .pki
        .ca
        .issue_client("pop-up-clinic", Validity::days(30))
        .expect("cert");
    let channel = gateway
        .channel_as(Some(&stranger))
        .await
        .expect("handshake succeeds: the CA is trusted");
    let mut client = IdentityServiceClient::new(channel);
    // Asked again on the same connection: a refusal is never remembered as an identity.
    for _ in 0..2 {
        let status = client
            .who_am_i(WhoAmIRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(
            status.message().contains("not registered"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn a_request_over_the_size_limit_is_resource_exhausted_on_unary_and_streaming_calls() {
    use safegate::api::proto::{
        PersonDetails, PublishRequest, SubscribeRequest, fact::Category,
        notification_service_client::NotificationServiceClient,
    };

    let gateway = spawn_gateway().await;
    // Over tonic's default 4 MiB decode limit; the client's own send limit is unbounded.
    let oversized = "x".repeat(5 * 1024 * 1024);
    let mut context = acting("police-iom");
    context.justification = oversized.clone();
    let status = gateway
        .records("police-iom")
        .await
        .publish(PublishRequest {
            context: Some(acting("police-iom")),
            client_request_id: "too-big".into(),
            fact: Some(safegate::api::proto::Fact {
                category: Some(Category::Person(PersonDetails {
                    given_name: oversized,
                    ..Default::default()
                })),
            }),
        })
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("too large"),
        "{}",
        status.message()
    );
    assert_eq!(gateway.count("record").await, 0);

    let status = NotificationServiceClient::new(gateway.channel("police-iom").await)
        .subscribe(SubscribeRequest {
            context: Some(context),
            after_cursor: 0,
        })
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // A request under the limit is answered as usual.
    let who = gateway.who_am_i("police-iom", None).await.expect("whoami");
    assert_eq!(who.system_id, "police-iom");
}
