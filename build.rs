//! Generates the gRPC code for `proto/` and the descriptor set served by reflection.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/safegate/v1/common.proto",
    "proto/safegate/v1/identity.proto",
    "proto/safegate/v1/records.proto",
    "proto/safegate/v1/audit.proto",
    "proto/safegate/v1/query.proto",
    "proto/safegate/v1/notifications.proto",
    "proto/safegate/v1/resolution.proto",
    "proto/safegate/v1/contact.proto",
    "proto/safegate/v1/alerts.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    // A fresh machine has no protoc: use the vendored one unless PROTOC names another.
    match env::var_os("PROTOC") {
        Some(protoc) => config.protoc_executable(protoc),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("safegate_descriptor.bin"))
        .compile_with_config(config, PROTOS, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds migrations/ at compile time; without this a new migration
    // file is silently left out of the binary until something else triggers a rebuild.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
