//! grpc.health.v1 follows the database.

use std::time::Duration;

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{eventually, spawn_gateway};

async fn status_of(channel: tonic::transport::Channel, service: &str) -> Option<ServingStatus> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status())
}

#[tokio::test]
async fn health_is_serving_then_not_serving_once_the_database_is_gone() {
    let gateway = spawn_gateway().await;
    let channel = gateway.channel("police-iom").await;
    for service in ["", "safegate.v1.IdentityService"] {
        let serving = eventually(Duration::from_secs(10), || {
            let channel = channel.clone();
            async move { status_of(channel, service).await == Some(ServingStatus::Serving) }
        })
        .await;
        assert!(serving, "`{service}` never reported SERVING");
    }

    gateway.database.make_gone().await;

    for service in ["", "safegate.v1.IdentityService"] {
        let not_serving = eventually(Duration::from_secs(15), || {
            let channel = channel.clone();
            async move { status_of(channel, service).await == Some(ServingStatus::NotServing) }
        })
        .await;
        assert!(not_serving, "`{service}` never reported NOT_SERVING");
    }
}
