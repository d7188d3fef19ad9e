//! Server reflection lets grpcurl and generated clients discover the API.

use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::helpers::spawn_gateway;

#[tokio::test]
async fn reflection_lists_the_services() {
    let gateway = spawn_gateway().await;
    let mut client = ServerReflectionClient::new(gateway.channel("police-iom").await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection stream")
        .expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!(
            "expected a service list, got {:?}",
            response.message_response
        );
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "safegate.v1.AdminService",
            "safegate.v1.AlertService",
            "safegate.v1.AuditService",
            "safegate.v1.ContactService",
            "safegate.v1.IdentityResolutionService",
            "safegate.v1.IdentityService",
            "safegate.v1.NotificationService",
            "safegate.v1.QueryService",
            "safegate.v1.RecordsService",
        ]
    );
}
